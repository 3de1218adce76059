#include "soak/soak_context.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace gmem::soak {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t ElapsedMs(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

std::string SoakVmm::State() {
  if (!process.Running()) return "gone";
  auto client = migrate::VmmClient::Connect(socket, 2000);
  if (!client.ok()) return "gone";
  auto state = client->State();
  return state.ok() ? *state : "gone";
}

Expected<migrate::VmmDigest> SoakVmm::Digest() {
  GMEM_ASSIGN_OR_RETURN(migrate::VmmClient client, migrate::VmmClient::Connect(socket, 2000));
  return client.Digest();
}

Status SoakVmm::Command(const std::string& cmd) {
  GMEM_ASSIGN_OR_RETURN(migrate::VmmClient client, migrate::VmmClient::Connect(socket, 2000));
  return client.Ok({{"cmd", cmd}}).status();
}

void SoakVmm::Quit(int timeout_ms) {
  if (process.Running()) Command("quit").IgnoreError();
  if (!process.Wait(timeout_ms).has_value()) process.Kill();
}

std::string ToolRun::Out() const { return Slurp(out_path); }
std::string ToolRun::Err() const { return Slurp(err_path); }

nlohmann::json ToolRun::Event(const std::string& event) const {
  nlohmann::json found;
  std::istringstream lines(Out());
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("event", "") == event) found = j;
  }
  return found;
}

Expected<std::unique_ptr<SoakVmm>> SoakContext::StartIncoming(int host, const std::string& slot) {
  auto vmm = std::make_unique<SoakVmm>();
  uint32_t n = ++vmm_count;
  vmm->host = host;
  vmm->socket = config.work_dir + "/vmm-" + std::to_string(n) + ".sock";
  vmm->log = logs_dir + "/vmm-" + std::to_string(n) + "-" + hosts[host].name + ".log";
  std::vector<std::string> argv = {Tool("gmem-vmm"), "run", "--incoming", "--linger", "--control", vmm->socket,
                                   "--slot", slot};
  if (!platform_key.empty()) argv.insert(argv.end(), {"--platform-key", platform_key, "--guest-id", "gmem-soak"});
  GMEM_ASSIGN_OR_RETURN(vmm->process, ChildProcess::Spawn({argv, hosts[host].netns_fd, vmm->log, vmm->log}));
  // Ready once its control socket answers.
  auto client = migrate::VmmClient::Connect(vmm->socket, 10000);
  if (!client.ok()) return client.status().WithContext("incoming gmem-vmm on host " + hosts[host].name);
  return vmm;
}

Expected<ToolRun> SoakContext::StartTool(const std::string& tool, const std::string& name, uint32_t round,
                                         const std::vector<std::string>& args, int host) {
  ToolRun run;
  run.name = name;
  char base[64];
  std::snprintf(base, sizeof(base), "/r%04u-%s", round, name.c_str());
  run.out_path = logs_dir + base + ".out";
  run.err_path = logs_dir + base + ".err";
  std::vector<std::string> argv = {Tool(tool)};
  argv.insert(argv.end(), args.begin(), args.end());
  GMEM_ASSIGN_OR_RETURN(run.process, ChildProcess::Spawn({argv, hosts[host].netns_fd, run.out_path, run.err_path}));
  return run;
}

Status SoakContext::Resolve(SoakVmm& vmm, bool resume) {
  GMEM_ASSIGN_OR_RETURN(CommandResult r, RunCommand({Tool("gmem-migrate"), "resolve", "--vmm", vmm.socket,
                                                     resume ? "--resume" : "--discard"},
                                                    -1, 20000));
  if (!r.ok()) {
    return Status(Code::kIo, "gmem-migrate resolve " + std::string(resume ? "--resume" : "--discard") + " failed (" +
                                 r.status.Describe() + "): " + r.output.substr(0, r.output.find('\n')));
  }
  if (!resume && !vmm.process.Wait(10000).has_value()) vmm.process.Kill();
  return Status::Ok();
}

RoundRecord SoakContext::BeginRound(const RoundPlan& plan, int* source, int* target) const {
  *source = guest->host;
  *target = (*source + 1) % static_cast<int>(hosts.size());
  RoundRecord rec;
  rec.plan = plan;
  rec.from = hosts[*source].name;
  rec.to = hosts[*target].name;
  return rec;
}

void SoakContext::Anomaly(uint32_t round, const std::string& kind, const std::string& detail) {
  report->AddAnomaly({round, kind, detail});
  Say("  ANOMALY round " + std::to_string(round) + ": " + kind + ": " + detail);
  if (events->event) {
    events->event({{"event", "anomaly"}, {"round", round}, {"kind", kind}, {"detail", detail}, {"seed", config.seed}});
  }
}

void SoakContext::Say(const std::string& line) const {
  if (events->text) events->text(line);
}

uint64_t SoakContext::ExpectedMs(const std::vector<uint64_t>& measured, uint64_t fallback) const {
  if (measured.empty()) return fallback;
  return Summarize(measured).median;
}

bool Supervise(const std::vector<ToolRun*>& wait, std::vector<TimedAction>& actions, int timeout_ms,
               const std::vector<ToolRun*>& stop_when_alone, int grace_ms) {
  auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> alone_since;
  bool stopped_alone = false;
  for (;;) {
    int64_t now = ElapsedMs(start);
    for (TimedAction& a : actions) {
      if (!a.done && now >= a.at_ms && (!a.ready || a.ready())) {
        a.done = true;
        a.run();
      }
    }
    bool all_done = std::none_of(wait.begin(), wait.end(), [](ToolRun* t) { return t->process.Running(); });
    if (all_done) {
      for (TimedAction& a : actions) {
        if (!a.done && a.cleanup) a.run();
        a.done = true;
      }
      return true;
    }
    bool others_done = std::all_of(wait.begin(), wait.end(), [&](ToolRun* t) {
      return !t->process.Running() || std::find(stop_when_alone.begin(), stop_when_alone.end(), t) != stop_when_alone.end();
    });
    if (others_done && !stop_when_alone.empty() && !stopped_alone) {
      if (!alone_since) alone_since = std::chrono::steady_clock::now();
      if (ElapsedMs(*alone_since) >= grace_ms) {
        for (ToolRun* t : stop_when_alone) t->process.Signal(SIGTERM);
        stopped_alone = true;
      }
    }
    if (now >= timeout_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string CheckOneLineError(const std::string& err, const std::string& tool) {
  if (err.empty()) return "failed without a message";
  size_t newline = err.find('\n');
  if (newline == std::string::npos) return "its message does not end in a newline: '" + err + "'";
  if (newline + 1 != err.size()) return "more than one line on stderr: '" + err + "'";
  if (err.rfind(tool + ": ", 0) != 0) return "the message does not start with '" + tool + ": ': '" + err + "'";
  return "";
}

bool IsFaultExitCode(int code) { return code >= 2 && code <= 7 && code != 6; }

}  // namespace gmem::soak
