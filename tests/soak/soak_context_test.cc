#include "soak/soak_context.h"

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace gmem::soak {
namespace {

TEST(SoakContextTest, AFailureMustBeOneLineNamingTheTool) {
  EXPECT_EQ(CheckOneLineError("gmem-migrate: send to 'tcp:x': connection reset\n", "gmem-migrate"), "");
  EXPECT_NE(CheckOneLineError("", "gmem-migrate"), "");
  EXPECT_NE(CheckOneLineError("gmem-migrate: a\ngmem-migrate: b\n", "gmem-migrate"), "");
  EXPECT_NE(CheckOneLineError("gmem-migrate: no newline", "gmem-migrate"), "");
  EXPECT_NE(CheckOneLineError("terminate called after throwing\n", "gmem-migrate"), "");
}

TEST(SoakContextTest, FaultExitCodesAreTheDocumentedFailureCodes) {
  for (int code : {2, 3, 4, 5, 7}) EXPECT_TRUE(IsFaultExitCode(code)) << code;
  for (int code : {0, 1, 6, 8, 127, -1}) EXPECT_FALSE(IsFaultExitCode(code)) << code;
}

ToolRun Start(const std::vector<std::string>& argv, const gmem::testing::TempDir& dir, const std::string& name) {
  ToolRun run;
  run.name = name;
  run.out_path = dir.File(name + ".out");
  run.err_path = dir.File(name + ".err");
  auto child = ChildProcess::Spawn({argv, -1, run.out_path, run.err_path});
  EXPECT_TRUE(child.ok());
  if (child.ok()) run.process = std::move(child).value();
  return run;
}

TEST(SoakContextTest, SuperviseFiresActionsInOrderAndWaitsForEveryProcess) {
  gmem::testing::TempDir dir;
  ToolRun quick = Start({"sh", "-c", "echo '{\"event\":\"complete\",\"n\":1}'"}, dir, "quick");
  ToolRun slow = Start({"sleep", "30"}, dir, "slow");
  std::vector<int> order;
  std::vector<TimedAction> actions = {{100, [&] { order.push_back(2); slow.process.Signal(SIGKILL); }},
                                      {10, [&] { order.push_back(1); }}};
  EXPECT_TRUE(Supervise({&quick, &slow}, actions, 10000));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(slow.Exit().signal, SIGKILL);
  EXPECT_EQ(quick.Event("complete").value("n", 0), 1);
  EXPECT_TRUE(quick.Event("error").is_null());
}

// A fault due after the processes ended is dropped (it would hit whatever runs now); a clean-up
// still runs. Before, both ran: a kill of the target VMM meant for a restore killed the restored
// guest (soak seed 1, round 7).
TEST(SoakContextTest, SuperviseDropsLateFaultsButRunsLateCleanups) {
  gmem::testing::TempDir dir;
  ToolRun quick = Start({"true"}, dir, "quick");
  bool fault = false, cleanup = false;
  std::vector<TimedAction> actions = {{5000, [&] { fault = true; }}, {6000, [&] { cleanup = true; }, true}};
  EXPECT_TRUE(Supervise({&quick}, actions, 10000));
  EXPECT_FALSE(fault);
  EXPECT_TRUE(cleanup);
}

TEST(SoakContextTest, SuperviseStopsALoneWaiterAndTimesOut) {
  gmem::testing::TempDir dir;
  ToolRun done = Start({"true"}, dir, "done");
  ToolRun waiter = Start({"sleep", "30"}, dir, "waiter");
  std::vector<TimedAction> none;
  EXPECT_TRUE(Supervise({&done, &waiter}, none, 10000, {&waiter}, 100));
  EXPECT_EQ(waiter.Exit().signal, SIGTERM);
  ToolRun stuck = Start({"sleep", "30"}, dir, "stuck");
  EXPECT_FALSE(Supervise({&stuck}, none, 200));
}

}  // namespace
}  // namespace gmem::soak
