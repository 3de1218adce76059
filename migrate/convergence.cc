#include "migrate/convergence.h"

#include <algorithm>

namespace gmem::migrate {

std::string_view StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kContinue: return "continue";
    case StopReason::kConverged: return "converged";
    case StopReason::kFixedCost: return "fixed-cost";
    case StopReason::kPassLimit: return "pass-limit";
    case StopReason::kStalled: return "stalled";
  }
  return "?";
}

namespace {

uint64_t PerSecond(uint64_t bytes, uint64_t elapsed_us) {
  if (elapsed_us == 0) return 0;
  return static_cast<uint64_t>(static_cast<double>(bytes) * 1e6 / static_cast<double>(elapsed_us));
}

}  // namespace

void ConvergencePolicy::RecordPass(uint64_t content_bytes, uint64_t elapsed_us) {
  bytes_ += content_bytes;
  elapsed_us_ += elapsed_us;
  last_bytes_ = content_bytes;
  last_us_ = elapsed_us;
}

void ConvergencePolicy::RecordWindows(uint64_t windows, uint64_t elapsed_us) {
  windows_ += windows;
  windows_us_ += elapsed_us;
}

void ConvergencePolicy::RecordRoundTrip(uint64_t elapsed_us) {
  ++round_trips_;
  round_trips_us_ += elapsed_us;
}

uint64_t ConvergencePolicy::bytes_per_second() const {
  uint64_t average = PerSecond(bytes_, elapsed_us_);
  uint64_t last = PerSecond(last_bytes_, last_us_);
  return last == 0 ? average : std::min(average, last);  // a pass without contents tells nothing
}

uint64_t ConvergencePolicy::EstimateMs(uint64_t dirty_bytes, uint64_t dirty_windows) const {
  uint64_t us = fixed_us_;
  if (round_trips_ != 0) us += kSwitchoverRoundTrips * round_trips_us_ / round_trips_;
  if (windows_ != 0) us += dirty_windows * windows_us_ / windows_;
  if (dirty_bytes != 0) {
    uint64_t rate = bytes_per_second();
    if (rate == 0) return UINT64_MAX;
    us += static_cast<uint64_t>(static_cast<double>(dirty_bytes) * 1e6 / static_cast<double>(rate));
  }
  return us / 1000;
}

StopReason ConvergencePolicy::Decide(uint32_t next_pass, uint64_t dirty_bytes, uint64_t dirty_windows) {
  if (next_pass <= 1) return StopReason::kContinue;  // pass 1 always runs
  if (next_pass > options_.max_passes) return StopReason::kPassLimit;
  uint64_t estimate = EstimateMs(dirty_bytes, dirty_windows);
  if (estimate <= options_.downtime_ms) return StopReason::kConverged;
  uint64_t fixed_ms = fixed_us_ / 1000;
  if (fixed_ms > options_.downtime_ms && estimate - fixed_ms <= options_.downtime_ms / 4) return StopReason::kFixedCost;
  // Pass 2 is the first with a dirty set to compare: the history starts there.
  if (best_dirty_ != UINT64_MAX && dirty_bytes >= best_dirty_ - best_dirty_ / 10) {
    if (++not_shrinking_ >= options_.stall_passes) return StopReason::kStalled;
  } else {
    not_shrinking_ = 0;
  }
  if (dirty_bytes < best_dirty_) best_dirty_ = dirty_bytes;
  return StopReason::kContinue;
}

}  // namespace gmem::migrate
