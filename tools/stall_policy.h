#pragma once
// The stall policy every long-running command shares (send, recv, save, restore): the flags
// --stall-timeout and --on-stall, a ProgressMonitor set up to report stalls and, with abort, to
// cancel through the cancel flag (tools/cancel_signals.h) exactly as SIGINT does, and the error
// line that says a cancel came from the policy. docs/migration.md, "Watching a migration".

#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "migrate/progress_monitor.h"

namespace gmem::tools {

struct StallFlags {
  int timeout_s = 0;  // 0: never a stall
  std::string on_stall = "warn";
  bool abort() const { return on_stall == "abort"; }
};

void AddStallFlags(CLI::App* cmd, StallFlags& flags);

// A monitor for `role` that publishes to `vmm_socket` (empty: not), forwards events to `next`,
// and on a stall calls `report` (an event or a warning line) and then, with abort, sets `stalled`
// and cancels. REQUIRES: `stalled` outlives the monitor.
migrate::ProgressMonitorOptions StallMonitorOptions(const std::string& role, const std::string& vmm_socket,
                                                    const StallFlags& flags, migrate::MigrationEvents* next,
                                                    std::function<void(const migrate::StallInfo&)> report,
                                                    std::atomic<bool>& stalled);

// StallMonitorOptions for a tool's reporter: the events go to `reporter`, and a stall to
// `reporter.Stall(role, info, flags)`.
template <typename Reporter>
migrate::ProgressMonitorOptions ReporterMonitorOptions(const std::string& role, const std::string& vmm_socket,
                                                       const StallFlags& flags, Reporter& reporter,
                                                       std::atomic<bool>& stalled) {
  return StallMonitorOptions(
      role, vmm_socket, flags, &reporter,
      [role, flags, &reporter](const migrate::StallInfo& info) { reporter.Stall(role, info, flags); }, stalled);
}

// `status`, or, when it is the cancel a stall caused, a status that says so.
Status StallAware(const Status& status, const StallFlags& flags, const std::atomic<bool>& stalled);

// The `stall` event's fields (docs/events.md).
nlohmann::json StallEvent(const migrate::StallInfo& info, const StallFlags& flags);

// The text-mode warning for a stall, one line with its newline:
// "<tool>: <what>: warning: no progress for 2.0 s (phase precopy)[; aborting (--on-stall abort)]".
std::string StallWarning(std::string_view tool, std::string_view what, const migrate::StallInfo& info,
                         const StallFlags& flags);

}  // namespace gmem::tools
