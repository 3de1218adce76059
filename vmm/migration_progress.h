#pragma once
// MigrationProgress: what the migration tool driving this VM last reported about the migration in
// flight (docs/control-protocol.md, `migration-progress` and `query-migration`). The engine runs
// in the tool's process, not in the VMM: the tool pushes its progress here so that anyone with
// the control socket can ask, and the VMM keeps only the last report and when it came.
// Thread-safety: MigrationProgressBoard may be used from any thread.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace gmem::vmm {

enum class MigrationState : uint8_t { kNone = 1, kActive, kCompleted, kFailed };
std::string_view MigrationStateName(MigrationState state);
// "none", "active", "completed" or "failed"; nullopt for anything else.
std::optional<MigrationState> ParseMigrationState(std::string_view name);

struct MigrationProgress {
  MigrationState state = MigrationState::kNone;
  std::string role;   // "send" or "save" (source), "recv" or "restore" (target)
  std::string phase;  // e.g. attach, precopy, stop-and-copy, switchover, receive, done
  uint64_t pass = 0;
  uint64_t bytes_sent = 0;       // stream bytes so far (received, on a target)
  uint64_t bytes_remaining = 0;  // of the current pass's dirty set, not yet sent
  uint64_t dirty_pages = 0;      // the current pass's dirty set
  uint64_t rate_bytes_per_second = 0;
  uint64_t expected_downtime_ms = 0;  // the convergence policy's latest estimate (0: none yet)
  std::string error;                  // state failed: the tool's one-line error
};

class MigrationProgressBoard {
 public:
  void Set(MigrationProgress progress);
  struct Report {
    MigrationProgress progress;
    uint64_t age_ms = 0;  // since the tool sent it
  };
  // The last report; nullopt when no tool reported since the VMM started.
  std::optional<Report> Get() const;

 private:
  mutable std::mutex mu_;
  std::optional<MigrationProgress> last_;
  std::chrono::steady_clock::time_point at_;
};

}  // namespace gmem::vmm
