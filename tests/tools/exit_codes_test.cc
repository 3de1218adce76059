#include "tools/exit_codes.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testutil/testutil.h"

namespace gmem::tools {
namespace {

TEST(ExitCodesTest, EachCodeHasItsDocumentedExit) {
  EXPECT_EQ(ExitCodeFor(Code::kOk), kExitOk);
  EXPECT_EQ(ExitCodeFor(Code::kInvalidArgument), kExitUsage);
  EXPECT_EQ(ExitCodeFor(Code::kCorrupt), kExitBadInput);
  EXPECT_EQ(ExitCodeFor(Code::kIncompatible), kExitBadInput);
  EXPECT_EQ(ExitCodeFor(Code::kAuth), kExitKey);
  EXPECT_EQ(ExitCodeFor(Code::kIo), kExitIo);
  EXPECT_EQ(ExitCodeFor(Code::kProtocol), kExitPeer);
  EXPECT_EQ(ExitCodeFor(Code::kPeerAborted), kExitPeer);
  EXPECT_EQ(ExitCodeFor(Code::kKvm), kExitPlatform);
  EXPECT_EQ(ExitCodeFor(Code::kUnsupported), kExitPlatform);
  EXPECT_EQ(ExitCodeFor(Code::kCancelled), kExitCancelled);
}

TEST(ExitCodesTest, DifferAndAnomaliesAreToolOutcomesNoStatusMapsTo) {
  EXPECT_EQ(kExitDiffer, 10);     // documented: gmem-snapshot diff, "the images differ"
  EXPECT_EQ(kExitAnomalies, 11);  // documented: gmem-soak, "the soak saw anomalies"
  for (Code code : {Code::kOk, Code::kInvalidArgument, Code::kCorrupt, Code::kIncompatible, Code::kAuth, Code::kIo,
                    Code::kProtocol, Code::kPeerAborted, Code::kKvm, Code::kUnsupported, Code::kCancelled}) {
    EXPECT_NE(ExitCodeFor(code), kExitDiffer);
    EXPECT_NE(ExitCodeFor(code), kExitAnomalies);
  }
}

TEST(ExitCodesTest, EveryCodeIsDocumentedOnceInOrderWithTheToolThatAloneUsesIt) {
  std::vector<int> codes;
  for (const ExitCodeDoc& doc : ExitCodeDocs()) {
    codes.push_back(doc.code);
    EXPECT_FALSE(doc.meaning.empty()) << doc.code;
    EXPECT_EQ(doc.tool, doc.code == kExitDiffer ? "gmem-snapshot" : doc.code == kExitAnomalies ? "gmem-soak" : "")
        << doc.code;
  }
  EXPECT_EQ(codes, (std::vector<int>{kExitOk, kExitUsage, kExitBadInput, kExitKey, kExitIo, kExitPeer, kExitPlatform,
                                     kExitCancelled, kExitDiffer, kExitAnomalies}));
}

TEST(ExitCodesTest, FailPrintsOneLine) {
  ::testing::internal::CaptureStderr();
  int code = Fail("gmem-snapshot", "restore 'vm.img'", CorruptError("record 17 (PAGES)\nat 0x41a000: bad"));
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, kExitBadInput);
  EXPECT_EQ(err, "gmem-snapshot: restore 'vm.img': record 17 (PAGES) at 0x41a000: bad\n");
}

// README.md, "Exit codes", is the one table of exit codes: it lists each code of exit_codes.h
// exactly once and nothing else, so a code added to the enum (or the table) without the other
// fails here.
TEST(ExitCodesTest, TheReadmeTableListsEveryExitCodeOnce) {
  const char* data = std::getenv("GMEM_TEST_DATA");  // <source>/tests/data
  ASSERT_NE(data, nullptr) << "run through ctest";
  std::ifstream in(std::string(data) + "/../../README.md");
  ASSERT_TRUE(in.is_open());
  std::multiset<int> listed;
  bool in_section = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("## ")) in_section = line == "## Exit codes";
    if (!in_section || !line.starts_with("| ")) continue;
    std::istringstream cells(line.substr(2));
    int code = -1;
    if (cells >> code) listed.insert(code);  // the header and |---| rows have no number
  }
  std::multiset<int> documented;  // ExitCodeDocs: the manual pages' EXIT STATUS
  for (const ExitCodeDoc& doc : ExitCodeDocs()) documented.insert(doc.code);
  EXPECT_EQ(listed, documented);
}

}  // namespace
}  // namespace gmem::tools
