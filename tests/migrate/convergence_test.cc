// ConvergencePolicy: pass 1 always runs; stop when the rest (fixed cost + dirty bytes at the
// measured rate) fits the downtime, at the pass limit, or when the dirty set stops shrinking.

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

TEST(ConvergencePolicyTest, NoMeasurementMeansNoEstimate) {
  ConvergencePolicy policy({});
  EXPECT_EQ(policy.EstimateMs(0), 0u);
  EXPECT_EQ(policy.EstimateMs(1), UINT64_MAX);
  EXPECT_EQ(StopReasonName(StopReason::kStalled), "stalled");
}

}  // namespace
}  // namespace gmem::migrate
