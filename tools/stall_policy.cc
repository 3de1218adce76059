#include "tools/stall_policy.h"

#include <cstdio>

#include "tools/cancel_signals.h"

namespace gmem::tools {

void AddStallFlags(CLI::App* cmd, StallFlags& flags) {
  cmd->add_option("--stall-timeout", flags.timeout_s,
                  "seconds without progress that make a stall (default 0: never); waiting for the peer counts")
      ->check(CLI::Range(0, 86400));
  cmd->add_option("--on-stall", flags.on_stall,
                  "warn (a 'stall' event or a warning line) or abort (cancel as SIGINT does: exit 7, the source VM "
                  "runs on)")
      ->check(CLI::IsMember({"warn", "abort"}));
}

migrate::ProgressMonitorOptions StallMonitorOptions(const std::string& role, const std::string& vmm_socket,
                                                    const StallFlags& flags, migrate::MigrationEvents* next,
                                                    std::function<void(const migrate::StallInfo&)> report,
                                                    std::atomic<bool>& stalled) {
  migrate::ProgressMonitorOptions options;
  options.role = role;
  options.vmm_socket = vmm_socket;
  options.stall_timeout_ms = flags.timeout_s * 1000;
  options.next = next;
  options.on_stall = [flags, report = std::move(report), &stalled](const migrate::StallInfo& info) {
    report(info);
    if (!flags.abort()) return;
    stalled.store(true);
    RequestCancel();
  };
  return options;
}

Status StallAware(const Status& status, const StallFlags& flags, const std::atomic<bool>& stalled) {
  if (status.code() != Code::kCancelled || !stalled.load()) return status;
  return Status(Code::kCancelled, "stalled: no progress for " + std::to_string(flags.timeout_s) +
                                      " s (--on-stall abort): " + status.ToString());
}

nlohmann::json StallEvent(const migrate::StallInfo& info, const StallFlags& flags) {
  return {{"event", "stall"},           {"idle_ms", info.idle_ms}, {"timeout_s", flags.timeout_s},
          {"action", flags.on_stall},   {"phase", info.at.phase},  {"pass", info.at.pass},
          {"bytes_sent", info.at.bytes_sent}};
}

std::string StallWarning(std::string_view tool, std::string_view what, const migrate::StallInfo& info,
                         const StallFlags& flags) {
  char idle[32];
  std::snprintf(idle, sizeof idle, "%.1f", static_cast<double>(info.idle_ms) / 1000.0);
  return std::string(tool) + ": " + std::string(what) + ": warning: no progress for " + idle + " s (phase " +
         info.at.phase + ")" + (flags.abort() ? "; aborting (--on-stall abort)" : "") + "\n";
}

}  // namespace gmem::tools
