#include "migrate/convergence.h"

namespace gmem::migrate {

void ConvergencePolicy::RecordPass(uint64_t bytes, uint64_t elapsed_us) {
  bytes_ += bytes;
  elapsed_us_ += elapsed_us;
}

uint64_t ConvergencePolicy::bytes_per_second() const {
  if (elapsed_us_ == 0) return 0;
  return static_cast<uint64_t>(static_cast<double>(bytes_) * 1e6 / static_cast<double>(elapsed_us_));
}

uint64_t ConvergencePolicy::EstimateMs(uint64_t dirty_bytes) const {
  uint64_t rate = bytes_per_second();
  if (rate == 0) return dirty_bytes == 0 ? 0 : UINT64_MAX;
  return static_cast<uint64_t>(static_cast<double>(dirty_bytes) * 1e3 / static_cast<double>(rate));
}

bool ConvergencePolicy::ShouldStop(uint32_t next_pass, uint64_t dirty_bytes) const {
  if (next_pass <= 1) return false;  // pass 1 always runs
  if (HitPassLimit(next_pass)) return true;
  return EstimateMs(dirty_bytes) <= options_.downtime_ms;
}

}  // namespace gmem::migrate
