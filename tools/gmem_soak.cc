// gmem-soak: the migration soak and fault-injection runner (docs/soak.md). The runner lives in
// soak/; this file parses flags, prepares the snapshot filesystem and reports.

#include <CLI/CLI.hpp>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "soak/soak_runner.h"
#include "tools/cli_parse.h"
#include "tools/exit_codes.h"
#include "vmm/vmm_config.h"

namespace gmem::tools {
namespace {

constexpr std::string_view kTool = "gmem-soak";

std::atomic<bool> g_stop{false};

void OnInterrupt(int) {
  g_stop.store(true);
  signal(SIGINT, SIG_DFL);  // a second ^C ends the runner (and, with it, every child)
  signal(SIGTERM, SIG_DFL);
}

// "90", "90s", "30m", "2h" -> seconds.
Expected<uint64_t> ParseDuration(const std::string& text) {
  size_t used = 0;
  uint64_t value = 0;
  try {
    value = std::stoull(text, &used);
  } catch (const std::exception&) {
    return InvalidArgument("--duration: '" + text + "' is not a duration (e.g. 90s, 30m, 2h)");
  }
  std::string unit = text.substr(used);
  uint64_t scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (scale == 0 || value == 0 || text[0] == '-') {
    return InvalidArgument("--duration: '" + text + "' is not a duration (e.g. 90s, 30m, 2h)");
  }
  return value * scale;
}

struct Flags {
  uint32_t rounds = 20;
  std::string duration, mem = "128M", slot = "mixed", workload = "mixed", faults = "all", hosts = "netns";
  std::string report, work_dir, tools_dir;
  uint32_t regions = 2, vcpus = 2;
  uint64_t seed = 1, rate = 200;
  bool json = false, keep = false, plan = false;
};

Expected<soak::SoakConfig> MakeConfig(const Flags& f, const std::string& replay) {
  soak::SoakConfig c;
  c.rounds = f.rounds;
  if (!f.duration.empty()) {
    GMEM_ASSIGN_OR_RETURN(c.duration_s, ParseDuration(f.duration));
  }
  if (c.duration_s == 0 && c.rounds == 0) return InvalidArgument("--rounds must be at least 1");
  GMEM_ASSIGN_OR_RETURN(c.mem_bytes, vmm::ParseSize(f.mem));
  c.regions = f.regions;
  c.vcpus = f.vcpus;
  GMEM_ASSIGN_OR_RETURN(c.slot, soak::ParseSlotChoice(f.slot));
  GMEM_ASSIGN_OR_RETURN(c.workload, soak::ParseWorkloadChoice(f.workload));
  GMEM_ASSIGN_OR_RETURN(c.faults, soak::ParseFaultSet(f.faults));
  if (f.hosts != "netns" && f.hosts != "loopback") return InvalidArgument("--hosts must be netns or loopback");
  c.netns = f.hosts == "netns";
  c.seed = f.seed;
  c.guest_rate = f.rate;
  if (c.guest_rate == 0) return InvalidArgument("--rate must be at least 1 step per second");
  c.bin_dir = f.tools_dir.empty() ? std::filesystem::read_symlink("/proc/self/exe").parent_path().string()
                                  : std::filesystem::absolute(f.tools_dir).string();
  c.replay_command = replay;
  c.stop = &g_stop;
  return c;
}

std::string ReplayCommand(const Flags& f) {
  std::string cmd = "gmem-soak --seed " + std::to_string(f.seed);
  cmd += f.duration.empty() ? " --rounds " + std::to_string(f.rounds) : " --duration " + f.duration;
  cmd += " --mem " + f.mem + " --regions " + std::to_string(f.regions) + " --vcpus " + std::to_string(f.vcpus) +
         " --slot " + f.slot + " --workload " + f.workload + " --faults " + f.faults + " --hosts " + f.hosts +
         " --rate " + std::to_string(f.rate);
  return cmd;
}

// Where the snapshots go: a tmpfs of our own (root; disk-full faults) or a plain directory.
uint64_t PrepareSnapshotFs(soak::SoakConfig& c, bool json) {
  std::string dir = c.work_dir + "/snapshots";
  uint64_t size = 3 * c.mem_bytes + (64ull << 20);
  if (geteuid() == 0) {
    Status st = soak::MountPrivateTmpfs(dir, size);
    if (st.ok()) return size;
    if (!json) std::printf("snapshots: no tmpfs of our own (%s): disk-full faults are off\n", st.ToString().c_str());
    return 0;
  }
  if (!json) std::printf("snapshots: not root, no tmpfs of our own: disk-full faults are off\n");
  return 0;
}

// --plan: the schedule --seed gives (as if namespaces and a tmpfs of our own are available).
int PrintPlan(const soak::SoakConfig& c) {
  if (c.duration_s > 0) return Fail(kTool, "plan", InvalidArgument("--plan needs --rounds (a duration has no round count)"));
  soak::SoakPlanOptions options{c.seed, c.faults, c.slot, c.netns, geteuid() == 0};
  for (uint32_t round = 1; round <= c.rounds; ++round) {
    std::printf("round %4u  %s\n", round, soak::PlanRound(options, round).Describe().c_str());
  }
  return kExitOk;
}

int Run(const Flags& flags) {
  auto config = MakeConfig(flags, ReplayCommand(flags));
  if (!config.ok()) return Fail(kTool, "run", config.status());
  soak::SoakConfig& c = *config;
  if (flags.plan) return PrintPlan(c);
  bool made_work_dir = flags.work_dir.empty();
  if (made_work_dir) {
    char tmpl[] = "/tmp/gmem-soak-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Fail(kTool, "run", ErrnoStatus(Code::kIo, "mkdtemp"));
    c.work_dir = tmpl;
  } else {
    c.work_dir = std::filesystem::absolute(flags.work_dir).string();
  }
  // Before any thread exists: unshare(CLONE_NEWNS) needs a single-threaded process.
  c.snapshot_fs_bytes = PrepareSnapshotFs(c, flags.json);
  signal(SIGINT, OnInterrupt);
  signal(SIGTERM, OnInterrupt);
  signal(SIGPIPE, SIG_IGN);
  soak::SoakEvents events;
  if (flags.json) {
    events.event = [](const nlohmann::json& e) {
      std::printf("%s\n", e.dump().c_str());
      std::fflush(stdout);
    };
  } else {
    events.text = [](const std::string& line) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    };
  }
  auto report = soak::RunSoak(c, events);
  if (!report.ok()) return Fail(kTool, "run", report.status());
  nlohmann::json summary = report->ToJson();
  if (!flags.report.empty()) {
    std::ofstream out(flags.report);
    out << summary.dump(2) << "\n";
    if (!out) return Fail(kTool, "run", Status(Code::kIo, "cannot write the report '" + flags.report + "'"));
  }
  bool clean = report->anomalies().empty();
  if (flags.json) {
    events.event(summary);
  } else {
    std::printf("\n%s", report->SummaryText().c_str());
  }
  if (clean && made_work_dir && !flags.keep) {
    std::error_code ec;
    std::filesystem::remove_all(c.work_dir, ec);
  } else if (!flags.json) {
    std::printf("logs and snapshots kept in %s\n", c.work_dir.c_str());
  }
  return clean ? kExitOk : kExitAnomalies;
}

}  // namespace
}  // namespace gmem::tools

int main(int argc, char** argv) {
  using namespace gmem::tools;
  CLI::App app{"gmem-soak: migrate one running, converting guest back and forth between two gmem-vmm hosts "
               "(live and through snapshots) while injecting faults; every round checked (see docs/soak.md)"};
  Flags f;
  const CLI::Validator kUnsigned(
      [](std::string& v) { return v.find('-') == std::string::npos ? std::string() : "must not be negative"; }, "UINT");
  auto* rounds = app.add_option("--rounds", f.rounds, "rounds to run (default 20)")->check(kUnsigned);
  app.add_option("--duration", f.duration, "run rounds for this long instead (90s, 30m, 2h)")->excludes(rounds);
  app.add_option("--mem", f.mem, "guest RAM (default 128M)");
  app.add_option("--regions", f.regions, "guest_memfd regions (default 2)")->check(kUnsigned);
  app.add_option("--vcpus", f.vcpus, "guest vCPUs (default 2)")->check(kUnsigned);
  app.add_option("--slot", f.slot, "memslots of each VMM: hva, gmem or mixed (chosen per round; default)");
  app.add_option("--workload", f.workload,
                 "dirty (all shared), convert (shared/private conversions through the agent) or mixed (convert with "
                 "a quarter of memory private from boot; default)");
  app.add_option("--faults", f.faults, "none, net, proc or all (default)");
  app.add_option("--seed", f.seed, "seed of the guest and of the fault schedule (default 1)")->check(kUnsigned);
  app.add_option("--hosts", f.hosts, "netns (each host in its own network namespace; default) or loopback");
  app.add_option("--rate", f.rate, "guest steps per second per vCPU during the rounds (default 200)")->check(kUnsigned);
  app.add_option("--report", f.report, "write the summary as JSON to this file");
  app.add_flag("--json", f.json, "NDJSON events on stdout (round, anomaly, summary) instead of text");
  app.add_option("--work-dir", f.work_dir, "keys, logs and snapshots here (default: a new /tmp/gmem-soak-*)");
  app.add_flag("--keep", f.keep, "keep the work directory after a clean run");
  app.add_flag("--plan", f.plan, "print the rounds and faults this seed schedules, and exit");
  app.add_option("--tools", f.tools_dir,
                 "where gmem-vmm, gmem-migrate and gmem-snapshot are (default: beside gmem-soak)");
  if (auto code = ParseArgs(app, argc, argv, kTool)) return *code;
  return Run(f);
}
