#pragma once
// What the soak's rounds share (internal to soak/): the hosts, the guest's VMM, keys, the
// snapshot chain, measured round lengths, and the helpers that start tools and watch them.

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "migrate/vmm_client.h"
#include "soak/child_process.h"
#include "soak/network.h"
#include "soak/soak_report.h"
#include "soak/soak_runner.h"

namespace gmem::soak {

struct SoakHost {
  std::string name;     // "a", "b"
  int netns_fd = -1;    // -1: the runner's own namespace (loopback)
  std::string address;  // where its recv listens
};

// A gmem-vmm process of the soak (the guest's, or an incoming one) and its control socket.
struct SoakVmm {
  ChildProcess process;
  std::string socket;
  std::string log;  // stdout and stderr
  int host = 0;

  // The VMM's state ("running", "paused", "incoming", "finished"), or "gone" when the process
  // ended or does not answer.
  std::string State();
  Expected<migrate::VmmDigest> Digest();
  Status Command(const std::string& cmd);
  // Asks it to quit and waits for it to end (killed after `timeout_ms`).
  void Quit(int timeout_ms = 10000);
};

// A tool run of one round, its output in files.
struct ToolRun {
  std::string name;  // "send", "recv", "save", "restore"
  ChildProcess process;
  std::string out_path, err_path;
  bool killed = false;  // the runner SIGKILLed it

  std::string Out() const;
  std::string Err() const;
  ExitStatus Exit() const { return process.exit_status().value_or(ExitStatus{}); }
  // The last NDJSON event named `event` on stdout, or null.
  nlohmann::json Event(const std::string& event) const;
};

// Something the runner does at a moment of a round (a fault, a link restored).
struct TimedAction {
  int64_t at_ms = 0;
  std::function<void()> run;
  // A clean-up (a cut link restored) runs even when the round ended before its time; a fault
  // that comes too late is dropped: the processes it was meant for are done.
  bool cleanup = false;
  // When set, the action also waits for this to say yes (polled every few milliseconds).
  std::function<bool()> ready = nullptr;
  bool done = false;
};

struct SoakContext {
  SoakConfig config;
  const SoakEvents* events = nullptr;
  SoakReport* report = nullptr;
  std::optional<TestNetwork> network;
  std::vector<SoakHost> hosts;
  std::string key_file, platform_key, logs_dir, snapshot_dir;
  std::vector<std::string> guest_args;     // gmem-vmm run arguments of the guest (with its rate)
  std::vector<std::string> baseline_args;  // the same guest unthrottled: the uninterrupted run
  std::unique_ptr<SoakVmm> guest;       // the one VMM the guest runs in
  std::vector<std::string> chain;       // the snapshot chain, oldest first
  uint32_t vmm_count = 0;
  // Measured lengths (ms) that place the faults: the median of completed rounds so far.
  std::vector<uint64_t> live_ms, save_ms, restore_ms;

  std::string Tool(const std::string& name) const { return config.bin_dir + "/" + name; }
  // Starts an incoming gmem-vmm on `host` (slot "hva"|"gmem").
  Expected<std::unique_ptr<SoakVmm>> StartIncoming(int host, const std::string& slot);
  // Starts a tool (argv without the program) in `host`'s namespace, output under logs_dir.
  Expected<ToolRun> StartTool(const std::string& tool, const std::string& name, uint32_t round,
                              const std::vector<std::string>& args, int host);
  // Runs `gmem-migrate resolve --vmm SOCK --resume|--discard` (the documented recovery).
  Status Resolve(SoakVmm& vmm, bool resume);
  // A round's record, from the guest's host (`*source`) to the next host (`*target`).
  RoundRecord BeginRound(const RoundPlan& plan, int* source, int* target) const;
  void Anomaly(uint32_t round, const std::string& kind, const std::string& detail);
  void Say(const std::string& line) const;
  uint64_t ExpectedMs(const std::vector<uint64_t>& measured, uint64_t fallback) const;
};

// What every kind of round holds: the context, its plan, its record, and the hosts it moves the
// guest between (`s`, the guest's, to `t`).
struct RoundState {
  RoundState(SoakContext& c, const RoundPlan& p) : ctx(c), plan(p) { rec = ctx.BeginRound(plan, &s, &t); }
  SoakContext& ctx;
  const RoundPlan& plan;
  RoundRecord rec;
  int s = 0, t = 0;
};

// Runs until every process in `wait` ended, or `timeout_ms`; fires `actions` at their times
// (clean-ups that are still due run at the end).
// Processes in `stop_when_alone` are sent SIGTERM once every other process of `wait` ended and
// `grace_ms` passed (a recv whose sender died before connecting). False at the timeout.
bool Supervise(const std::vector<ToolRun*>& wait, std::vector<TimedAction>& actions, int timeout_ms,
               const std::vector<ToolRun*>& stop_when_alone = {}, int grace_ms = 3000);

// Empty when `err` is one line "<tool>: ...\n" (what every failing tool must print); else why not.
std::string CheckOneLineError(const std::string& err, const std::string& tool);

// The exit codes a tool may end with after an injected fault (README.md, "Exit codes").
bool IsFaultExitCode(int code);

RoundRecord RunLiveRound(SoakContext& ctx, const RoundPlan& plan);
RoundRecord RunSnapshotRound(SoakContext& ctx, const RoundPlan& plan);

}  // namespace gmem::soak
