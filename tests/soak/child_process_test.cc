#include "soak/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "tests/testutil/testutil.h"

namespace gmem::soak {
namespace {

using gmem::testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ChildProcessTest, CapturesOutputAndExitCode) {
  TempDir dir;
  auto child = ChildProcess::Spawn({{"sh", "-c", "echo out; echo err >&2; exit 3"}, -1, dir.File("o"), dir.File("e")});
  ASSERT_OK(child);
  auto done = child->Wait(10000);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->code, 3);
  EXPECT_EQ(done->Describe(), "exit 3");
  EXPECT_EQ(Slurp(dir.File("o")), "out\n");
  EXPECT_EQ(Slurp(dir.File("e")), "err\n");
}

TEST(ChildProcessTest, WaitTimesOutThenSignalEndsIt) {
  auto child = ChildProcess::Spawn({{"sleep", "30"}});
  ASSERT_OK(child);
  EXPECT_FALSE(child->Wait(50).has_value());
  EXPECT_TRUE(child->Running());
  child->Signal(SIGINT);
  auto done = child->Wait(5000);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->signal, SIGINT);
  EXPECT_EQ(done->Describe(), "killed by SIGINT");
  EXPECT_FALSE(child->Running());
}

TEST(ChildProcessTest, DestructorKillsARunningChild) {
  pid_t pid;
  {
    auto child = ChildProcess::Spawn({{"sleep", "30"}});
    ASSERT_OK(child);
    pid = child->pid();
  }
  EXPECT_NE(kill(pid, 0), 0) << "the child outlived its owner";
}

TEST(ChildProcessTest, AProgramThatDoesNotExistEndsWith127) {
  auto r = RunCommand({"/nonexistent/gmem-soak-no-such-program"});
  ASSERT_OK(r);
  EXPECT_EQ(r->status.code, 127);
  EXPECT_NE(r->output.find("cannot execute"), std::string::npos);
}

TEST(ChildProcessTest, RunCommandCapturesBothStreamsAndTimesOut) {
  auto r = RunCommand({"sh", "-c", "echo one; echo two >&2"});
  ASSERT_OK(r);
  EXPECT_TRUE(r->ok());
  EXPECT_EQ(r->output, "one\ntwo\n");
  auto start = std::chrono::steady_clock::now();
  auto slow = RunCommand({"sleep", "30"}, -1, 100);
  ASSERT_OK(slow);
  EXPECT_EQ(slow->status.signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ChildProcessTest, RunCheckedNamesTheCommandAndItsFirstLine) {
  Status st = RunChecked({"sh", "-c", "echo 'no such device' >&2; echo more >&2; exit 2"});
  EXPECT_THAT(st, gmem::testing::StatusIs(Code::kIo, "'sh -c echo 'no such device' >&2; echo more >&2; exit 2' failed "
                                                     "(exit 2): no such device"));
  EXPECT_OK(RunChecked({"true"}));
}

}  // namespace
}  // namespace gmem::soak
