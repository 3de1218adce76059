#pragma once
// ConvergencePolicy: decides when precopy stops (DESIGN.md, "Live migration"): when the pages
// still dirty could be sent within the downtime limit at the throughput measured so far, or
// when the pass limit is reached.

#include <cstdint>

namespace gmem::migrate {

struct ConvergenceOptions {
  uint64_t downtime_ms = 300;
  uint32_t max_passes = 30;  // precopy passes, the first included
};

class ConvergencePolicy {
 public:
  explicit ConvergencePolicy(const ConvergenceOptions& options) : options_(options) {}

  // Records that a pass moved `bytes` of page data in `elapsed_us`.
  void RecordPass(uint64_t bytes, uint64_t elapsed_us);
  // The estimated time to send `dirty_bytes`, in ms (0 before any pass was recorded).
  uint64_t EstimateMs(uint64_t dirty_bytes) const;
  // Whether precopy should stop now, before pass `next_pass`, with `dirty_bytes` left to send.
  bool ShouldStop(uint32_t next_pass, uint64_t dirty_bytes) const;
  // Whether the stop was forced by the pass limit (call after ShouldStop said yes).
  bool HitPassLimit(uint32_t next_pass) const { return next_pass > options_.max_passes; }
  // Bytes per second over the passes so far (0 before any).
  uint64_t bytes_per_second() const;

 private:
  ConvergenceOptions options_;
  uint64_t bytes_ = 0;
  uint64_t elapsed_us_ = 0;
};

}  // namespace gmem::migrate
