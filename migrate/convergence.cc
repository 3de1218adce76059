#include "migrate/convergence.h"

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

void ConvergencePolicy::RecordPass(uint64_t page_bytes, uint64_t elapsed_us) {
  bytes_ += page_bytes;
  elapsed_us_ += elapsed_us;
}

uint64_t ConvergencePolicy::bytes_per_second() const {
  if (elapsed_us_ == 0) return 0;
  return static_cast<uint64_t>(static_cast<double>(bytes_) * 1e6 / static_cast<double>(elapsed_us_));
}

uint64_t ConvergencePolicy::EstimateMs(uint64_t dirty_bytes) const {
  uint64_t fixed_ms = fixed_us_ / 1000;
  if (dirty_bytes == 0) return fixed_ms;
  uint64_t rate = bytes_per_second();
  if (rate == 0) return UINT64_MAX;
  return fixed_ms + static_cast<uint64_t>(static_cast<double>(dirty_bytes) * 1e3 / static_cast<double>(rate));
}

StopReason ConvergencePolicy::Decide(uint32_t next_pass, uint64_t dirty_bytes) {
  if (next_pass <= 1) return StopReason::kContinue;  // pass 1 always runs
  if (next_pass > options_.max_passes) return StopReason::kPassLimit;
  uint64_t estimate = EstimateMs(dirty_bytes);
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
