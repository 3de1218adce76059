// gmem-snapshot inspect and verify on synthetic images (no KVM needed): the parent of an
// incremental image is shown, key material never is, and each kind of damage has its exit code.

#include "tests/format/image_fixture.h"
#include "tests/snapshot/snapshot_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::snapshot {
namespace {

using format::testing::FixedKey;
using format::testing::FixedKeySource;
using ::gmem::testing::RunTool;
using ::gmem::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr char kTool[] = "gmem-snapshot";

// A key file holding FixedKey() (bytes 0..31), and that key's hex.
std::string WriteFixedKey(const TempDir& dir) {
  std::string path = dir.File("fixed.key");
  SecretBytes text = format::FormatKeyFile(FixedKey());
  EXPECT_OK(WriteSecretFile(path, text.span(), true));
  return path;
}

testing::ImageSpec WithPages() {
  testing::ImageSpec spec;
  for (uint64_t i = 0; i < 3; ++i) {
    spec.batches.push_back(testing::Batch{0, 1, {{i * 4, 2, format::RunKind::kData}},
                                          {Bytes(testing::kPage, std::byte{static_cast<uint8_t>(i + 1)}),
                                           Bytes(testing::kPage, std::byte{0x5a})}});
  }
  return spec;
}

TEST(InspectTest, ShowsTheParentOfAnIncrementalImage) {
  TempDir dir;
  testing::ImageSpec spec = WithPages();
  format::StreamId parent{};
  format::Digest digest{};
  for (size_t i = 0; i < parent.size(); ++i) parent[i] = static_cast<std::byte>(0xc0 + i);
  for (size_t i = 0; i < digest.size(); ++i) digest[i] = static_cast<std::byte>(0x10 + i);
  spec.params.parent = std::make_pair(parent, digest);
  std::string image = testing::WriteFileBytes(dir.File("child.img"), testing::WriteImage(spec, FixedKeySource()));
  auto text = RunTool(kTool, {"inspect", image});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("parent       c0c1c2c3c4c5c6c7c8c9cacbcccdcecf\n"));
  EXPECT_THAT(text.out, HasSubstr("parent digest 101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\n"));
  auto json = RunTool(kTool, {"inspect", image, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  nlohmann::json j = testing::LastJsonLine(json.out);
  EXPECT_EQ(j.value("parent", ""), "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf");
  EXPECT_EQ(j.value("parent_digest", ""), "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f");
  // Without a parent: "none" and null.
  std::string full = testing::WriteFileBytes(dir.File("full.img"), testing::WriteImage(WithPages(), FixedKeySource()));
  auto plain = RunTool(kTool, {"inspect", full});
  EXPECT_THAT(plain.out, HasSubstr("parent       none\n"));
  EXPECT_THAT(plain.out, Not(HasSubstr("parent digest")));
  EXPECT_TRUE(testing::LastJsonLine(RunTool(kTool, {"inspect", full, "--json"}).out)["parent"].is_null());
}

TEST(InspectTest, NoOutputCarriesKeyMaterial) {
  TempDir dir;
  std::string key = WriteFixedKey(dir);
  std::string key_hex = ToHex(FixedKey().span());  // 000102...1f
  std::string image = testing::WriteFileBytes(dir.File("vm.img"), testing::WriteImage(WithPages(), FixedKeySource()));
  std::vector<gmem::testing::ToolResult> results = {
      RunTool(kTool, {"inspect", image}), RunTool(kTool, {"inspect", image, "--json"}),
      RunTool(kTool, {"verify", image, "--key-file", key}), RunTool(kTool, {"verify", image, "--key-file", key, "--json"}),
      RunTool(kTool, {"diff", image, image, "--key-file", key}), RunTool(kTool, {"diff", image, image, "--key-file", key, "--json"})};
  for (const auto& r : results) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (size_t at = 0; at + 16 <= key_hex.size(); at += 8) {
      EXPECT_THAT(r.out + r.err, Not(HasSubstr(key_hex.substr(at, 16))));
    }
  }
}

TEST(InspectTest, ReorderedRecordsAreBadInputNotAPeerError) {
  TempDir dir;
  std::string key = WriteFixedKey(dir);
  Bytes image = testing::WriteImage(WithPages(), FixedKeySource());
  std::string swapped = testing::WriteFileBytes(dir.File("swapped.img"), testing::SwapRecords(image, 1, 2));
  auto inspect = RunTool(kTool, {"inspect", swapped});
  EXPECT_EQ(inspect.exit_code, 2) << inspect.err;
  EXPECT_THAT(inspect.err, HasSubstr("out of sequence: expected record 1, got 2"));
  auto verify = RunTool(kTool, {"verify", swapped, "--key-file", key});
  EXPECT_EQ(verify.exit_code, 2) << verify.err;
  EXPECT_THAT(verify.err, MatchesRegex("gmem-snapshot: verify '.*swapped.img': record 1 \\(PAGES\\) at 0x[0-9a-f]+: "
                                       "out of sequence: expected record 1, got 2 .*\n"));
  auto diff = RunTool(kTool, {"diff", swapped, swapped, "--key-file", key});
  EXPECT_EQ(diff.exit_code, 2) << diff.err;
}

TEST(InspectTest, DiffUsageAndExitCodes) {
  TempDir dir;
  std::string key = WriteFixedKey(dir);
  testing::ImageSpec a = WithPages();
  testing::ImageSpec b = WithPages();
  b.batches[1].pages[0][100] = std::byte{0xff};
  std::string pa = testing::WriteFileBytes(dir.File("a.img"), testing::WriteImage(a, FixedKeySource()));
  std::string pb = testing::WriteFileBytes(dir.File("b.img"), testing::WriteImage(b, FixedKeySource()));
  auto same = RunTool(kTool, {"diff", pa, pa, "--key-file", key});
  EXPECT_EQ(same.exit_code, 0) << same.err;
  auto differ = RunTool(kTool, {"diff", pa, pb, "--key-file", key});
  EXPECT_EQ(differ.exit_code, 10) << differ.err;
  EXPECT_THAT(differ.out, HasSubstr("region 0     1 of 64 pages differ (1 shared, 0 private)"));
  EXPECT_THAT(differ.out, HasSubstr("result       differ: 1 pages"));
  auto missing = RunTool(kTool, {"diff", pa, dir.File("nope.img"), "--key-file", key});
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_THAT(missing.err, MatchesRegex("gmem-snapshot: diff: cannot open '.*nope.img': No such file or directory\n"));
  auto one = RunTool(kTool, {"diff", pa, "--key-file", key});
  EXPECT_EQ(one.exit_code, 1);
  auto no_key = RunTool(kTool, {"diff", pa, pb});
  EXPECT_EQ(no_key.exit_code, 1);
  EXPECT_THAT(no_key.err, HasSubstr("a key is needed"));
}

}  // namespace
}  // namespace gmem::snapshot
