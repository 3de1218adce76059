#pragma once
// ConvergencePolicy: decides when precopy stops (DESIGN.md, "Live migration"): when the pages
// still dirty could be sent within the downtime limit — the fixed cost of a pass (harvesting the
// dirty log, reading attributes, hashing memory in gmem slot mode) plus the dirty bytes at the
// page rate measured so far — or when the pass limit is reached, or when precopy stalls: the
// dirty set stops shrinking for `stall_passes` passes in a row (the guest dirties memory as
// fast as it is sent, and more passes only burn bandwidth), or when the fixed cost alone is over
// the limit and the dirty part is small (see StopReason::kFixedCost).

#include <cstdint>
#include <string_view>

namespace gmem::migrate {

struct ConvergenceOptions {
  uint64_t downtime_ms = 300;
  uint32_t max_passes = 30;   // precopy passes, the first included
  uint32_t stall_passes = 3;  // passes in a row without the dirty set shrinking by 10 %
};

// kFixedCost: the fixed part of a pass alone exceeds the limit (e.g. hashing a large guest in
// gmem slot mode) and what is still dirty adds less than a quarter of the limit: no further pass
// can bring the downtime closer to it.
enum class StopReason { kContinue, kConverged, kFixedCost, kPassLimit, kStalled };

// "continue", "converged", "fixed-cost", "pass-limit", "stalled"
std::string_view StopReasonName(StopReason reason);

class ConvergencePolicy {
 public:
  explicit ConvergencePolicy(const ConvergenceOptions& options) : options_(options) {}

  // Records that a pass handled `page_bytes` of dirty pages (read, compressed, sent) in
  // `elapsed_us`.
  void RecordPass(uint64_t page_bytes, uint64_t elapsed_us);
  // Records what the fixed part of a pass cost (the latest measurement counts).
  void RecordFixedCost(uint64_t elapsed_us) { fixed_us_ = elapsed_us; }
  // The estimated final pass with `dirty_bytes` to send, in ms (UINT64_MAX before any pass was
  // recorded, unless there is nothing to send).
  uint64_t EstimateMs(uint64_t dirty_bytes) const;
  // Whether precopy stops now, before pass `next_pass`, with `dirty_bytes` left to send. Call once
  // per pass, in order: it keeps the history the stall detection needs.
  StopReason Decide(uint32_t next_pass, uint64_t dirty_bytes);
  // Page bytes per second over the passes so far (0 before any).
  uint64_t bytes_per_second() const;

 private:
  ConvergenceOptions options_;
  uint64_t bytes_ = 0;
  uint64_t elapsed_us_ = 0;
  uint64_t fixed_us_ = 0;
  uint64_t best_dirty_ = UINT64_MAX;  // the smallest dirty set seen at a decision
  uint32_t not_shrinking_ = 0;        // decisions in a row without a 10 % improvement on it
};

}  // namespace gmem::migrate
