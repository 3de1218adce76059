#pragma once
// ConvergencePolicy: decides when precopy stops (DESIGN.md, "Live migration"): when the estimated
// downtime (EstimateMs: the final pass with the guest paused, then the switchover) fits the limit,
// or when the pass limit is reached, or when precopy stalls: the dirty set stops shrinking for
// `stall_passes` passes in a row (the guest dirties memory as fast as it is sent, and more passes
// only burn bandwidth), or when the fixed cost alone is over the limit and the dirty part is small
// (see StopReason::kFixedCost).

#include <cstdint>
#include <string_view>

namespace gmem::migrate {

struct ConvergenceOptions {
  uint64_t downtime_ms = 300;
  uint32_t max_passes = 30;   // precopy passes, the first included
  uint32_t stall_passes = 3;  // passes in a row without the dirty set shrinking by 10 %
};

// The control round trips of the downtime after the final pass (docs/migration.md, the sequence
// diagram): get-state on the source's VMM; set-attributes, set-state and resume on the target's;
// END reaching the target, then READY, COMMIT and RESUMED between the engines (two round trips).
inline constexpr uint64_t kSwitchoverRoundTrips = 6;

// kFixedCost: the fixed part of a pass alone exceeds the limit (e.g. hashing a large guest in
// gmem slot mode) and what is still dirty adds less than a quarter of the limit: no further pass
// can bring the downtime closer to it.
enum class StopReason { kContinue, kConverged, kFixedCost, kPassLimit, kStalled };

// "continue", "converged", "fixed-cost", "pass-limit", "stalled"
std::string_view StopReasonName(StopReason reason);

// The estimate is built from what this migration measured, in four parts:
//   fixed part     the last precopy pass's (the dirty log, the attributes, in gmem slot mode
//                  hashing all memory), which the final pass repeats;
//   windows        the page sender reads the residency of each window of pages (kWindowPages)
//                  holding a dirty page: a cost per window, not per page, that a sparse dirty set
//                  pays for a few pages;
//   page contents  every dirty byte at bytes_per_second();
//   switchover     kSwitchoverRoundTrips round trips, each as long as a VMM round trip was.
class ConvergencePolicy {
 public:
  explicit ConvergencePolicy(const ConvergenceOptions& options) : options_(options) {}

  // Records that a pass sent `content_bytes` of page contents (pages read and sent whole: data
  // pages, private pages; not zero pages, which pass 1 skips almost for free) in `elapsed_us`
  // (its windows' time left out).
  void RecordPass(uint64_t content_bytes, uint64_t elapsed_us);
  // Records that a pass read the residency of `windows` windows in `elapsed_us`.
  void RecordWindows(uint64_t windows, uint64_t elapsed_us);
  // Records what the fixed part of a pass cost (the latest measurement counts).
  void RecordFixedCost(uint64_t elapsed_us) { fixed_us_ = elapsed_us; }
  // Records what one control round trip to the VMM cost (the mean of all measurements counts).
  void RecordRoundTrip(uint64_t elapsed_us);
  // The estimated downtime, in ms, with `dirty_bytes` still to send in `dirty_windows` windows.
  // UINT64_MAX before any page contents were timed, unless there is nothing to send.
  uint64_t EstimateMs(uint64_t dirty_bytes, uint64_t dirty_windows = 0) const;
  // Whether precopy stops now, before pass `next_pass`, with `dirty_bytes` left to send (in
  // `dirty_windows`). Call once per pass, in order: it keeps the history the stall detection needs.
  StopReason Decide(uint32_t next_pass, uint64_t dirty_bytes, uint64_t dirty_windows = 0);
  // The rate the estimate sends page contents at, in bytes per second (0 before any was timed):
  // the lower of the average over all passes and the last pass's. Passes after the first are
  // sparse, like the final one: their scattered pages cost more each (a fault per page where the
  // dense pass 1 maps a run at once).
  uint64_t bytes_per_second() const;

 private:
  ConvergenceOptions options_;
  uint64_t bytes_ = 0;  // page contents over all passes, and their time
  uint64_t elapsed_us_ = 0;
  uint64_t last_bytes_ = 0;  // the last pass's
  uint64_t last_us_ = 0;
  uint64_t windows_ = 0;  // over all passes, and their time
  uint64_t windows_us_ = 0;
  uint64_t fixed_us_ = 0;
  uint64_t round_trips_ = 0;  // measured, and their time
  uint64_t round_trips_us_ = 0;
  uint64_t best_dirty_ = UINT64_MAX;  // the smallest dirty set seen at a decision
  uint32_t not_shrinking_ = 0;        // decisions in a row without a 10 % improvement on it
};

}  // namespace gmem::migrate
