// ConvergencePolicy: pass 1 always runs; stop when the rest fits the downtime or at the limit.

#include "migrate/convergence.h"

#include <gtest/gtest.h>

namespace gmem::migrate {
namespace {

TEST(ConvergencePolicyTest, StopsWhenTheRestFitsTheDowntime) {
  ConvergencePolicy policy({.downtime_ms = 300, .max_passes = 10});
  EXPECT_FALSE(policy.ShouldStop(1, 0));  // pass 1 always runs
  policy.RecordPass(100 << 20, 1000000);  // 100 MiB/s
  EXPECT_EQ(policy.bytes_per_second(), uint64_t{100} << 20);
  EXPECT_EQ(policy.EstimateMs(50 << 20), 500u);
  EXPECT_FALSE(policy.ShouldStop(2, 50 << 20));
  EXPECT_TRUE(policy.ShouldStop(2, 20 << 20));
  EXPECT_FALSE(policy.HitPassLimit(2));
}

TEST(ConvergencePolicyTest, ThePassLimitStopsAnUnconvergingGuest) {
  ConvergencePolicy policy({.downtime_ms = 1, .max_passes = 3});
  policy.RecordPass(1 << 20, 1000000);
  EXPECT_FALSE(policy.ShouldStop(3, 100 << 20));
  EXPECT_TRUE(policy.ShouldStop(4, 100 << 20));
  EXPECT_TRUE(policy.HitPassLimit(4));
}

TEST(ConvergencePolicyTest, NoMeasurementMeansNoEstimate) {
  ConvergencePolicy policy({});
  EXPECT_EQ(policy.EstimateMs(0), 0u);
  EXPECT_EQ(policy.EstimateMs(1), UINT64_MAX);
}

}  // namespace
}  // namespace gmem::migrate
