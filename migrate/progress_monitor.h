#pragma once
// ProgressMonitor: watches a long-running engine (send, recv, save, restore) from threads of its
// own. It publishes the engine's progress to the VMM (`migration-progress`, docs/control-protocol.md)
// at every pass and every `publish_interval_ms`, so that `query-migration` (gmem-migrate status)
// can show a migration whose engine runs in another process, and it reports a stall: no progress
// for `stall_timeout_ms`. What to do about a stall (warn, cancel) is the caller's: libraries never
// print or exit.
//
// Progress is any movement of the engine: a MigrationEvents callback that advanced the pass, the
// pages done or the stream bytes (the source), or a change of `activity` (the target counts
// records). Waiting for the peer with nothing moving — a stopped or stalled peer, or a READY that
// takes long — is a stall once it lasts the timeout.
// Thread-safety: the MigrationEvents callbacks come from the engine's thread; Finish() from the
// thread that ran the engine, after it returned.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/status.h"
#include "migrate/migration_types.h"
#include "migrate/vmm_client.h"

namespace gmem::migrate {

// What the monitor publishes: the fields of `migration-progress`.
struct ProgressSnapshot {
  std::string state = "active";  // active, completed, failed
  std::string role;              // send, save, recv, restore
  std::string phase = "attach";
  uint32_t pass = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_remaining = 0;
  uint64_t dirty_pages = 0;
  uint64_t rate_bytes_per_second = 0;
  uint64_t expected_downtime_ms = 0;
  std::string error;
};

struct StallInfo {
  uint64_t idle_ms = 0;  // since the last progress
  ProgressSnapshot at;   // where the engine was
};

struct ProgressMonitorOptions {
  std::string role;
  // The VMM to publish to (empty: publish nothing). Its own connection: the engine's is busy.
  std::string vmm_socket;
  int publish_interval_ms = 500;
  int stall_timeout_ms = 0;  // 0: no stall detection
  // Called on the monitor's thread once per stall (again only after progress resumed).
  std::function<void(const StallInfo&)> on_stall;
  MigrationEvents* next = nullptr;                    // receives every event too
  const std::atomic<uint64_t>* activity = nullptr;    // a counter the engine raises as it works
  // The stall clock starts when `activity` first moves: a live target waiting for its source to
  // connect is not stalled (accepting has its own timeout).
  bool clock_starts_with_activity = false;
};

// Builds the `migration-progress` request for `snapshot`.
nlohmann::json ProgressRequest(const ProgressSnapshot& snapshot);

class ProgressMonitor final : public MigrationEvents {
 public:
  explicit ProgressMonitor(ProgressMonitorOptions options);
  ~ProgressMonitor() override;  // stops the threads (no final report: call Finish)
  ProgressMonitor(const ProgressMonitor&) = delete;
  ProgressMonitor& operator=(const ProgressMonitor&) = delete;

  // Starts watching (and publishing, if a VMM socket was given).
  void Start();
  // Stops the threads and publishes the outcome: completed, or failed with `status`'s one line.
  // Best effort: a VMM that is gone (it quit after a migration) is not an error.
  void Finish(const Status& status);

  void OnStart(uint64_t total_pages) override;
  void OnProgress(uint32_t pass, uint64_t done, uint64_t total, uint64_t wire_bytes) override;
  void OnPass(const PassStats& pass) override;
  void OnSwitchover(uint64_t dirty_pages, uint64_t estimate_ms, const std::string& reason) override;

  ProgressSnapshot Snapshot() const;

 private:
  using Clock = std::chrono::steady_clock;
  // REQUIRES mu_. Notes progress now.
  void MovedLocked();
  void StallLoop();
  void PublishLoop();
  void Publish(const ProgressSnapshot& snapshot, int connect_timeout_ms);
  void Stop();

  ProgressMonitorOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool publish_now_ = false;  // a pass ended: publish without waiting for the interval
  ProgressSnapshot snapshot_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_progress_ = Clock::now();
  uint64_t last_activity_ = 0;
  bool stalled_ = false;
  // Rate: stream bytes over the last few seconds.
  Clock::time_point rate_at_ = Clock::now();
  uint64_t rate_bytes_ = 0;
  uint64_t passes_wire_bytes_ = 0;  // the stream bytes of the passes done
  std::mutex publish_mu_;  // the client below
  std::optional<VmmClient> client_;  // connected on the first report
  std::thread stall_thread_;
  std::thread publish_thread_;
};

}  // namespace gmem::migrate
