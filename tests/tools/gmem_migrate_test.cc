// CLI tests of gmem-migrate: exit codes and the one-line stderr messages.

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "base/secret.h"
#include "base/version.h"
#include "format/keys.h"
#include "tests/testutil/testutil.h"

namespace gmem {
namespace {

using ::gmem::testing::RunTool;
using ::gmem::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(GmemMigrateKeygenTest, WritesAPrivateKeyFileThatParses) {
  TempDir dir;
  auto r = RunTool("gmem-migrate", {"keygen", "--out", dir.File("k")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("wrote key file '.*/k' \\(mode 0600, key id [0-9a-f]{16}\\)\n"));
  struct stat st {};
  ASSERT_EQ(stat(dir.File("k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto text = ReadSecretFile(dir.File("k"), 128);
  ASSERT_OK(text);
  ASSERT_OK(format::ParseKeyFile(text->span()));
  // The key itself is never printed.
  std::string hex(reinterpret_cast<const char*>(text->data()) + 15, 64);
  EXPECT_EQ(r.out.find(hex), std::string::npos);
  EXPECT_EQ(r.err.find(hex), std::string::npos);
}

TEST(GmemMigrateKeygenTest, TwoKeysDiffer) {
  TempDir dir;
  ASSERT_EQ(RunTool("gmem-migrate", {"-q", "keygen", "--out", dir.File("a")}).exit_code, 0);
  ASSERT_EQ(RunTool("gmem-migrate", {"-q", "keygen", "--out", dir.File("b")}).exit_code, 0);
  auto a = ReadSecretFile(dir.File("a"), 128);
  auto b = ReadSecretFile(dir.File("b"), 128);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_FALSE(std::equal(a->data(), a->data() + a->size(), b->data()));
}

TEST(GmemMigrateKeygenTest, RefusesToOverwriteUnlessForced) {
  TempDir dir;
  ASSERT_EQ(RunTool("gmem-migrate", {"-q", "keygen", "--out", dir.File("k")}).exit_code, 0);
  auto before = ReadSecretFile(dir.File("k"), 128);
  ASSERT_OK(before);
  auto r = RunTool("gmem-migrate", {"keygen", "--out", dir.File("k")});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.err, MatchesRegex("gmem-migrate: keygen: '.*/k' already exists \\(use --force to replace it\\)\n"));
  auto after = ReadSecretFile(dir.File("k"), 128);
  ASSERT_OK(after);
  EXPECT_TRUE(std::equal(before->data(), before->data() + before->size(), after->data()));
  EXPECT_EQ(RunTool("gmem-migrate", {"-q", "keygen", "--force", "--out", dir.File("k")}).exit_code, 0);
  auto forced = ReadSecretFile(dir.File("k"), 128);
  ASSERT_OK(forced);
  EXPECT_FALSE(std::equal(before->data(), before->data() + before->size(), forced->data()));
}

TEST(GmemMigrateKeygenTest, UnwritableDirectoryIsAnIoError) {
  auto r = RunTool("gmem-migrate", {"keygen", "--out", "/nonexistent-dir/k"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "gmem-migrate: keygen: cannot create a file in '/nonexistent-dir': No such file or directory\n");
}

TEST(GmemMigrateCliTest, BadFlagsAreUsageErrors) {
  auto missing = RunTool("gmem-migrate", {"keygen"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "gmem-migrate: --out is required (see --help)\n");
  auto none = RunTool("gmem-migrate", {});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("subcommand is required"));
  auto unknown = RunTool("gmem-migrate", {"keygen", "--out", "/tmp/x", "--bogus"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("--bogus"));
  auto help = RunTool("gmem-migrate", {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("keygen"));
}

// Every tool answers --version (added by ParseArgs) with the library it was built with.
TEST(ToolVersionTest, EveryToolPrintsTheGmemkitVersion) {
  for (const char* tool : {"gmem-migrate", "gmem-snapshot", "gmem-soak", "gmem-vmm"}) {
    auto r = RunTool(tool, {"--version"});
    EXPECT_EQ(r.exit_code, 0) << tool;
    EXPECT_EQ(r.out, std::string(tool) + " (gmemkit) " + std::string(LibraryVersionString()) + "\n");
    EXPECT_EQ(r.err, "") << tool;
  }
}

}  // namespace
}  // namespace gmem
