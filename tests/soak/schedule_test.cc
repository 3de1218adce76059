#include "soak/schedule.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/testutil/testutil.h"

namespace gmem::soak {
namespace {

using gmem::testing::StatusIs;

std::string Schedule(const SoakPlanOptions& options, uint32_t rounds) {
  std::string all;
  for (uint32_t r = 1; r <= rounds; ++r) all += PlanRound(options, r).Describe() + "\n";
  return all;
}

TEST(ScheduleTest, TheSeedAloneDecidesTheSchedule) {
  SoakPlanOptions a;
  a.seed = 7;
  EXPECT_EQ(Schedule(a, 200), Schedule(a, 200));
  SoakPlanOptions b = a;
  b.seed = 8;
  EXPECT_NE(Schedule(a, 200), Schedule(b, 200));
  // A round's plan does not depend on the rounds before it: a run can be replayed up to any round.
  EXPECT_EQ(PlanRound(a, 150).Describe(), PlanRound(a, 150).Describe());
}

TEST(ScheduleTest, EveryFaultKindAppearsInALongRunWithAllFaults) {
  SoakPlanOptions o;
  std::set<Fault> seen;
  uint32_t live = 0, snapshot = 0, clean = 0;
  for (uint32_t r = 1; r <= 400; ++r) {
    RoundPlan p = PlanRound(o, r);
    seen.insert(p.fault);
    (p.kind == RoundKind::kLive ? live : snapshot)++;
    clean += p.fault == Fault::kNone ? 1 : 0;
    EXPECT_GE(p.channels, 1u);
    EXPECT_LE(p.channels, 4u);
    EXPECT_TRUE(p.target_slot == "hva" || p.target_slot == "gmem");
    EXPECT_GE(p.fault_at, 0.0);
    EXPECT_LE(p.fault_at, 1.3);
  }
  EXPECT_EQ(seen.size(), 17u) << "some fault kind never comes up";
  EXPECT_GT(live, snapshot);
  EXPECT_GT(snapshot, 80u);
  EXPECT_GT(clean, 60u) << "clean rounds keep the guest moving";
}

TEST(ScheduleTest, FaultsFollowTheChosenSetAndWhatTheHostAllows) {
  SoakPlanOptions none;
  none.faults = FaultSet::kNone;
  SoakPlanOptions net;
  net.faults = FaultSet::kNet;
  SoakPlanOptions proc;
  proc.faults = FaultSet::kProc;
  SoakPlanOptions loopback;
  loopback.netns = false;
  loopback.tmpfs = false;
  for (uint32_t r = 1; r <= 300; ++r) {
    EXPECT_EQ(PlanRound(none, r).fault, Fault::kNone);
    RoundPlan n = PlanRound(net, r);
    EXPECT_TRUE(n.fault == Fault::kNone || IsNetFault(n.fault)) << n.Describe();
    if (n.kind == RoundKind::kSnapshot) {
      EXPECT_EQ(n.fault, Fault::kNone);
    }
    RoundPlan p = PlanRound(proc, r);
    EXPECT_FALSE(IsNetFault(p.fault)) << p.Describe();
    Fault l = PlanRound(loopback, r).fault;
    EXPECT_TRUE(l != Fault::kBandwidth && l != Fault::kLoss && l != Fault::kLinkCut && l != Fault::kDiskFull)
        << FaultName(l);
  }
}

TEST(ScheduleTest, ASlotChoiceOtherThanMixedIsKept) {
  SoakPlanOptions o;
  o.slot = SlotChoice::kGmem;
  for (uint32_t r = 1; r <= 50; ++r) EXPECT_EQ(PlanRound(o, r).target_slot, "gmem");
}

TEST(ScheduleTest, ParsersNameTheFlagAndTheBadValue) {
  EXPECT_THAT(ParseFaultSet("network"), StatusIs(Code::kInvalidArgument, "--faults must be none, net, proc or all, not 'network'"));
  EXPECT_THAT(ParseSlotChoice("both"), StatusIs(Code::kInvalidArgument, "--slot must be hva, gmem or mixed"));
  EXPECT_THAT(ParseWorkloadChoice("idle"), StatusIs(Code::kInvalidArgument, "--workload must be dirty, convert or mixed"));
  EXPECT_EQ(*ParseFaultSet("all"), FaultSet::kAll);
  EXPECT_EQ(*ParseSlotChoice("hva"), SlotChoice::kHva);
  EXPECT_EQ(*ParseWorkloadChoice("convert"), WorkloadChoice::kConvert);
}

TEST(ScheduleTest, DescribeNamesSettingsAndFault) {
  RoundPlan p;
  p.kind = RoundKind::kLive;
  p.channels = 3;
  p.compress = "zstd:3";
  p.downtime_ms = 150;
  p.target_slot = "hva";
  p.fault = Fault::kKillReceiver;
  p.fault_at = 0.42;
  EXPECT_EQ(p.Describe(), "live 3ch zstd:3 150ms -> hva, kill-receiver at 0.42");
  p.kind = RoundKind::kSnapshot;
  p.fault = Fault::kNone;
  EXPECT_EQ(p.Describe(), "snapshot increment zstd:3 -> hva");
}

}  // namespace
}  // namespace gmem::soak
