#include "snapshot/atomic_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/snapshot/snapshot_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::snapshot {
namespace {

using ::gmem::testing::StatusIs;
using ::gmem::testing::TempDir;
using testing::ListDir;
using testing::ReadFileBytes;
using testing::WriteFileBytes;
using ::testing::ElementsAre;
using ::testing::MatchesRegex;

void WriteAll(const AtomicFile& file, std::string_view text) {
  ASSERT_EQ(write(file.fd(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

std::string ReadText(const std::string& path) {
  Bytes b = ReadFileBytes(path);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

class AtomicFileTest : public ::testing::TestWithParam<bool> {
 protected:
  AtomicFileOptions Options() const {
    AtomicFileOptions options;
    options.allow_unnamed = GetParam();
    return options;
  }
};

TEST_P(AtomicFileTest, TheFileAppearsOnlyOnCommit) {
  TempDir dir;
  auto file = AtomicFile::Create(dir.File("vm.img"), Options());
  ASSERT_OK(file);
  WriteAll(*file, "complete");
  if (GetParam()) {
    // Unnamed: nothing in the directory at all until the commit.
    EXPECT_THAT(ListDir(dir.path()), ElementsAre());
    EXPECT_EQ(file->temp_path(), "");
  } else {
    // Named: a hidden temporary that no one would take for the image.
    EXPECT_THAT(ListDir(dir.path()), ElementsAre(MatchesRegex("\\.vm\\.img\\.tmp-[A-Za-z0-9]{6}")));
    EXPECT_EQ(file->temp_path(), dir.path() + "/" + ListDir(dir.path())[0]);
  }
  ASSERT_OK(file->Commit());
  EXPECT_TRUE(file->committed());
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("vm.img"));
  EXPECT_EQ(ReadText(dir.File("vm.img")), "complete");
  struct stat st {};
  ASSERT_EQ(stat(dir.File("vm.img").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_THAT(file->Commit(), StatusIs(Code::kInvalidArgument, "already committed"));
}

TEST_P(AtomicFileTest, CommitReplacesAnExistingFile) {
  TempDir dir;
  WriteFileBytes(dir.File("vm.img"), AsBytes("old"));
  auto file = AtomicFile::Create(dir.File("vm.img"), Options());
  ASSERT_OK(file);
  WriteAll(*file, "new contents");
  EXPECT_EQ(ReadText(dir.File("vm.img")), "old");  // untouched until the commit
  ASSERT_OK(file->Commit());
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("vm.img"));
  EXPECT_EQ(ReadText(dir.File("vm.img")), "new contents");
}

TEST_P(AtomicFileTest, AnUncommittedFileLeavesNothingAndTheOldFileIntact) {
  TempDir dir;
  WriteFileBytes(dir.File("vm.img"), AsBytes("old"));
  {
    auto file = AtomicFile::Create(dir.File("vm.img"), Options());
    ASSERT_OK(file);
    WriteAll(*file, "half");
  }  // destroyed without Commit()
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("vm.img"));
  EXPECT_EQ(ReadText(dir.File("vm.img")), "old");
  auto file = AtomicFile::Create(dir.File("vm.img"), Options());
  ASSERT_OK(file);
  WriteAll(*file, "half");
  file->Abandon();
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("vm.img"));
  EXPECT_THAT(file->Commit(), StatusIs(Code::kInvalidArgument, "abandoned"));
  EXPECT_EQ(ReadText(dir.File("vm.img")), "old");
}

TEST_P(AtomicFileTest, MovedFromFilesDoNotRemoveTheTemporary) {
  TempDir dir;
  auto file = AtomicFile::Create(dir.File("vm.img"), Options());
  ASSERT_OK(file);
  AtomicFile moved = std::move(file).value();
  WriteAll(moved, "x");
  ASSERT_OK(moved.Commit());
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("vm.img"));
}

INSTANTIATE_TEST_SUITE_P(Temporaries, AtomicFileTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Unnamed" : "Named"; });

TEST(AtomicFileErrorsTest, BadPathsAreRefusedBeforeAnythingIsCreated) {
  TempDir dir;
  EXPECT_THAT(AtomicFile::Create(dir.File("missing/vm.img")),
              StatusIs(Code::kIo, "cannot open the directory '" + dir.File("missing") + "'"));
  ASSERT_EQ(mkdir(dir.File("sub").c_str(), 0700), 0);
  EXPECT_THAT(AtomicFile::Create(dir.File("sub")), StatusIs(Code::kInvalidArgument, "is a directory"));
  EXPECT_THAT(AtomicFile::Create(dir.path() + "/"), StatusIs(Code::kInvalidArgument, "is not a file name"));
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("sub"));
}

TEST(AtomicFileErrorsTest, ARelativePathLandsInTheWorkingDirectory) {
  TempDir dir;
  char old_cwd[4096];
  ASSERT_NE(getcwd(old_cwd, sizeof old_cwd), nullptr);
  ASSERT_EQ(chdir(dir.path().c_str()), 0);
  auto file = AtomicFile::Create("rel.img");
  Status st = file.ok() ? file->Commit() : file.status();
  ASSERT_EQ(chdir(old_cwd), 0);
  ASSERT_OK(st);
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("rel.img"));
}

}  // namespace
}  // namespace gmem::snapshot
