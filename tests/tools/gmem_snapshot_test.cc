// CLI tests of gmem-snapshot inspect/verify: exit codes and the one-line stderr messages.

#include <sys/stat.h>

#include <fstream>

#include "base/secret.h"
#include "format/keys.h"
#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem {
namespace {

using ::gmem::testing::RunTool;
using ::gmem::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

std::string Golden(const char* name) { return std::string(std::getenv("GMEM_TEST_DATA")) + "/" + name; }

// The key of the golden key-file images (bytes 0..31), as a key file.
std::string WriteGoldenKey(const TempDir& dir, mode_t mode = 0600) {
  std::string path = dir.File("golden.key");
  SecretBytes text = format::FormatKeyFile(format::testing::FixedKey());
  EXPECT_OK(WriteSecretFile(path, text.span(), true));
  chmod(path.c_str(), mode);
  return path;
}

std::string WriteFile(const TempDir& dir, const std::string& name, const Bytes& bytes) {
  std::string path = dir.File(name);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                               static_cast<std::streamsize>(bytes.size()));
  return path;
}

Bytes ReadGolden(const char* name) {
  std::ifstream in(Golden(name), std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

TEST(GmemSnapshotInspectTest, ShowsHeaderLayoutAndCountsWithoutAKey) {
  auto r = RunTool("gmem-snapshot", {"inspect", Golden("v1_small_keyfile.img")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("stream id    a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"));
  EXPECT_THAT(r.out, HasSubstr("encryption   aes-256-gcm, key file (key id "));
  EXPECT_THAT(r.out, HasSubstr("region 7: gpa 0x100000000, 16 pages of 4096 bytes"));
  EXPECT_THAT(r.out, HasSubstr("records      7: LAYOUT 1 ATTRS 1 PAGES 1 PRIVATE 1 PASS 1 STATE 1 END 1"));
  EXPECT_THAT(r.out, HasSubstr("pages        3 data, 5 zero, 2 private"));
  auto j = RunTool("gmem-snapshot", {"inspect", Golden("v1_small_keyfile.img"), "--json"});
  EXPECT_EQ(j.exit_code, 0);
  EXPECT_THAT(j.out, HasSubstr("\"key_wrap\":\"key-file\""));
  EXPECT_THAT(j.out, HasSubstr("\"verified\":false"));
}

TEST(GmemSnapshotInspectTest, BrokenFilesFailWithOneLine) {
  TempDir dir;
  Bytes image = ReadGolden("v1_small_keyfile.img");
  auto missing = RunTool("gmem-snapshot", {"inspect", dir.File("nope.img")});
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_THAT(missing.err, MatchesRegex("gmem-snapshot: inspect: cannot open '.*nope.img': No such file or directory\n"));
  auto truncated = RunTool("gmem-snapshot", {"inspect", WriteFile(dir, "cut.img", ::gmem::testing::Truncate(image, 1000))});
  EXPECT_EQ(truncated.exit_code, 2);
  EXPECT_THAT(truncated.err, MatchesRegex("gmem-snapshot: inspect '.*cut.img': record 2: truncated: .*\n"));
  auto not_image = RunTool("gmem-snapshot", {"inspect", WriteFile(dir, "junk.img", Bytes(300, std::byte{'x'}))});
  EXPECT_EQ(not_image.exit_code, 2);
  EXPECT_THAT(not_image.err, HasSubstr("not a gmemkit image (bad magic)"));
}

TEST(GmemSnapshotVerifyTest, VerifiesWithKeyFilePassphraseOrInsecureFlag) {
  TempDir dir;
  std::string key = WriteGoldenKey(dir);
  auto r = RunTool("gmem-snapshot", {"verify", Golden("v1_small_keyfile.img"), "--key-file", key});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("verified"));
  auto pass = RunTool("gmem-snapshot", {"-q", "verify", Golden("v1_small_passphrase.img"), "--passphrase-fd", "0"},
                      "gmemkit golden\n");
  EXPECT_EQ(pass.exit_code, 0) << pass.err;
  EXPECT_EQ(pass.out, "");
  auto insecure = RunTool("gmem-snapshot", {"verify", Golden("v1_small_insecure.img"), "--insecure-no-encryption"});
  EXPECT_EQ(insecure.exit_code, 0) << insecure.err;
}

TEST(GmemSnapshotVerifyTest, KeyProblemsAreKeyErrors) {
  TempDir dir;
  auto none = RunTool("gmem-snapshot", {"verify", Golden("v1_small_keyfile.img")});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("gmem-snapshot: verify: a key is needed"));
  auto other = RunTool("gmem-migrate", {"-q", "keygen", "--out", dir.File("other.key")});
  ASSERT_EQ(other.exit_code, 0);
  auto wrong = RunTool("gmem-snapshot", {"verify", Golden("v1_small_keyfile.img"), "--key-file", dir.File("other.key")});
  EXPECT_EQ(wrong.exit_code, 3);
  EXPECT_THAT(wrong.err, MatchesRegex("gmem-snapshot: verify '.*v1_small_keyfile.img': wrong key: .*\n"));
  auto bad_pass = RunTool("gmem-snapshot", {"verify", Golden("v1_small_passphrase.img"), "--passphrase-fd", "0"}, "nope");
  EXPECT_EQ(bad_pass.exit_code, 3);
  EXPECT_THAT(bad_pass.err, HasSubstr("wrong passphrase or damaged header"));
  auto unencrypted = RunTool("gmem-snapshot", {"verify", Golden("v1_small_insecure.img"), "--key-file", WriteGoldenKey(dir)});
  EXPECT_EQ(unencrypted.exit_code, 2);
  EXPECT_THAT(unencrypted.err, HasSubstr("not encrypted"));
  std::string loose = WriteGoldenKey(dir, 0644);
  auto readable = RunTool("gmem-snapshot", {"verify", Golden("v1_small_keyfile.img"), "--key-file", loose});
  EXPECT_EQ(readable.exit_code, 1);
  EXPECT_THAT(readable.err, HasSubstr("has mode 0644: group or others may read it"));
}

TEST(GmemSnapshotVerifyTest, OneKeyFlagAtATimeAndThePassphraseNeverFromArgv) {
  TempDir dir;
  std::string key = WriteGoldenKey(dir);
  for (std::string cmd : {"verify", "diff"}) {
    std::vector<std::string> args = {cmd, Golden("v1_small_passphrase.img")};
    if (cmd == "diff") args.push_back(Golden("v1_small_passphrase.img"));
    args.insert(args.end(), {"--passphrase-fd", "0", "--key-file", key});
    auto both = RunTool("gmem-snapshot", args, "gmemkit golden\n");
    EXPECT_EQ(both.exit_code, 1) << both.err;
    EXPECT_THAT(both.err, HasSubstr("give only one of --key-file, --key-fd and --passphrase-fd"));
  }
  auto insecure = RunTool("gmem-snapshot", {"verify", Golden("v1_small_passphrase.img"), "--passphrase-fd", "0",
                                            "--insecure-no-encryption"},
                          "gmemkit golden\n");
  EXPECT_EQ(insecure.exit_code, 1);
  EXPECT_THAT(insecure.err, HasSubstr("cannot be combined with a key"));
  // There is no flag that takes the passphrase itself.
  auto argv = RunTool("gmem-snapshot", {"verify", Golden("v1_small_passphrase.img"), "--passphrase", "gmemkit golden"});
  EXPECT_EQ(argv.exit_code, 1);
  auto diff_pass = RunTool("gmem-snapshot", {"-q", "diff", Golden("v1_small_passphrase.img"),
                                             Golden("v1_small_passphrase.img"), "--passphrase-fd", "0"},
                           "gmemkit golden\n");
  EXPECT_EQ(diff_pass.exit_code, 0) << diff_pass.err;
}

TEST(GmemSnapshotVerifyTest, TamperedImageNamesTheRecord) {
  TempDir dir;
  std::string key = WriteGoldenKey(dir);
  Bytes image = ReadGolden("v1_small_keyfile.img");
  std::string bad = WriteFile(dir, "bad.img", ::gmem::testing::FlipByte(image, image.size() / 2));
  auto r = RunTool("gmem-snapshot", {"verify", bad, "--key-file", key});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, MatchesRegex("gmem-snapshot: verify '.*bad.img': record 2 \\(PAGES\\) at 0x[0-9a-f]+: "
                                  "authentication failed\n"));
}

}  // namespace
}  // namespace gmem
