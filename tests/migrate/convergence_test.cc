// ConvergencePolicy: pass 1 always runs; stop when the estimated downtime (fixed cost, the dirty
// set's windows and bytes at the measured costs, the switchover's round trips) fits the limit, at
// the pass limit, or when the dirty set stops shrinking.

#include "migrate/convergence.h"

#include <gtest/gtest.h>

namespace gmem::migrate {
namespace {

TEST(ConvergencePolicyTest, StopsWhenTheRestFitsTheDowntime) {
  ConvergencePolicy policy({.downtime_ms = 300, .max_passes = 10});
  EXPECT_EQ(policy.Decide(1, 0), StopReason::kContinue);  // pass 1 always runs
  policy.RecordPass(100 << 20, 1000000);                  // 100 MiB/s
  EXPECT_EQ(policy.bytes_per_second(), uint64_t{100} << 20);
  EXPECT_EQ(policy.EstimateMs(50 << 20), 500u);
  EXPECT_EQ(policy.Decide(2, 50 << 20), StopReason::kContinue);
  EXPECT_EQ(policy.Decide(3, 20 << 20), StopReason::kConverged);
}

TEST(ConvergencePolicyTest, TheFixedCostOfAPassCountsInTheEstimate) {
  ConvergencePolicy policy({.downtime_ms = 300, .max_passes = 10});
  policy.RecordPass(100 << 20, 1000000);
  policy.RecordFixedCost(250000);  // e.g. hashing all memory in gmem slot mode
  EXPECT_EQ(policy.EstimateMs(0), 250u);
  EXPECT_EQ(policy.EstimateMs(10 << 20), 350u);
  EXPECT_EQ(policy.Decide(2, 10 << 20), StopReason::kContinue);
  EXPECT_EQ(policy.Decide(3, 4 << 20), StopReason::kConverged);  // 250 + 40 ms
}

TEST(ConvergencePolicyTest, AFixedCostOverTheLimitStopsOnceTheDirtyPartIsSmall) {
  ConvergencePolicy policy({.downtime_ms = 300, .max_passes = 10});
  policy.RecordPass(100 << 20, 1000000);
  policy.RecordFixedCost(400000);  // hashing all memory takes longer than the limit
  EXPECT_EQ(policy.Decide(2, 20 << 20), StopReason::kContinue);  // 200 ms of dirty pages: worth a pass
  EXPECT_EQ(policy.Decide(3, 5 << 20), StopReason::kFixedCost);   // 50 ms: another pass cannot help
  EXPECT_EQ(StopReasonName(StopReason::kFixedCost), "fixed-cost");
}

TEST(ConvergencePolicyTest, ThePassLimitStopsAnUnconvergingGuest) {
  ConvergencePolicy policy({.downtime_ms = 1, .max_passes = 3, .stall_passes = 100});
  policy.RecordPass(1 << 20, 1000000);
  EXPECT_EQ(policy.Decide(2, 100 << 20), StopReason::kContinue);
  EXPECT_EQ(policy.Decide(3, 100 << 20), StopReason::kContinue);
  EXPECT_EQ(policy.Decide(4, 100 << 20), StopReason::kPassLimit);
}

TEST(ConvergencePolicyTest, ADirtySetThatStopsShrinkingStalls) {
  ConvergencePolicy policy({.downtime_ms = 1, .max_passes = 30, .stall_passes = 3});
  policy.RecordPass(1 << 20, 1000000);
  EXPECT_EQ(policy.Decide(2, 100 << 20), StopReason::kContinue);
  EXPECT_EQ(policy.Decide(3, 80 << 20), StopReason::kContinue);  // shrinking: fine
  EXPECT_EQ(policy.Decide(4, 60 << 20), StopReason::kContinue);
  EXPECT_EQ(policy.Decide(5, 58 << 20), StopReason::kContinue);  // under 10 % better: 1
  EXPECT_EQ(policy.Decide(6, 70 << 20), StopReason::kContinue);  // 2
  EXPECT_EQ(policy.Decide(7, 20 << 20), StopReason::kContinue);  // progress resets the count
  EXPECT_EQ(policy.Decide(8, 19 << 20), StopReason::kContinue);
  EXPECT_EQ(policy.Decide(9, 25 << 20), StopReason::kContinue);
  EXPECT_EQ(policy.Decide(10, 20 << 20), StopReason::kStalled);
}

// A sparse pass costs more per page than the dense pass 1 (a fault per page instead of one
// populate per run): the estimate takes the slower of the average and the last pass. The average
// alone (pass 1's bytes outweigh the rest) would promise 10 ms here.
TEST(ConvergencePolicyTest, TheSlowerOfTheAverageAndTheLastPassCounts) {
  ConvergencePolicy policy({.downtime_ms = 15, .max_passes = 10});
  policy.RecordPass(1000 << 20, 1000000);  // pass 1: 1000 MiB/s
  policy.RecordPass(10 << 20, 20000);      // pass 2: 500 MiB/s
  EXPECT_EQ(policy.bytes_per_second(), uint64_t{500} << 20);
  EXPECT_EQ(policy.EstimateMs(10 << 20), 20u);
  EXPECT_EQ(policy.Decide(3, 10 << 20), StopReason::kContinue);
  policy.RecordPass(5 << 20, 4000);  // faster than the average again: the average counts
  EXPECT_EQ(policy.EstimateMs(10 << 20), 10u);
  EXPECT_EQ(policy.Decide(4, 10 << 20), StopReason::kConverged);
}

TEST(ConvergencePolicyTest, APassWithoutContentsKeepsTheRate) {
  ConvergencePolicy policy({});
  policy.RecordPass(100 << 20, 1000000);
  policy.RecordPass(0, 3000);  // only zero pages (or nothing): no rate to learn from
  EXPECT_EQ(policy.EstimateMs(10 << 20), 100u);
}

// Each window holding a dirty page costs the sender a residency read whatever the number of its
// pages: the same bytes cost more scattered than together.
TEST(ConvergencePolicyTest, EachDirtyWindowCounts) {
  ConvergencePolicy policy({.downtime_ms = 50, .max_passes = 10});
  policy.RecordPass(100 << 20, 1000000);
  policy.RecordWindows(1024, 20480);  // pass 1: 20 us each
  policy.RecordWindows(256, 5120);
  EXPECT_EQ(policy.EstimateMs(4 << 20, 2), 40u);     // 1024 pages together
  EXPECT_EQ(policy.EstimateMs(4 << 20, 1024), 60u);  // one in each window
  EXPECT_EQ(policy.Decide(2, 4 << 20, 1024), StopReason::kContinue);
  EXPECT_EQ(policy.Decide(3, 4 << 20, 2), StopReason::kConverged);
}

// After the final pass the downtime holds the switchover: kSwitchoverRoundTrips round trips, each
// as long as the VMM's round trips measured on average.
TEST(ConvergencePolicyTest, TheSwitchoverCountsItsRoundTrips) {
  ConvergencePolicy policy({.downtime_ms = 10, .max_passes = 10});
  policy.RecordPass(100 << 20, 1000000);
  policy.RecordFixedCost(2000);
  policy.RecordRoundTrip(1000);
  policy.RecordRoundTrip(3000);
  EXPECT_EQ(policy.EstimateMs(0), 2 + kSwitchoverRoundTrips * 2);
  EXPECT_EQ(policy.EstimateMs(1 << 20), 12 + kSwitchoverRoundTrips * 2);
  EXPECT_EQ(policy.Decide(2, 0), StopReason::kContinue);  // nothing dirty, yet over 10 ms
}

TEST(ConvergencePolicyTest, NoMeasurementMeansNoEstimate) {
  ConvergencePolicy policy({});
  EXPECT_EQ(policy.EstimateMs(0), 0u);
  EXPECT_EQ(policy.EstimateMs(1), UINT64_MAX);
  EXPECT_EQ(StopReasonName(StopReason::kStalled), "stalled");
}

}  // namespace
}  // namespace gmem::migrate
