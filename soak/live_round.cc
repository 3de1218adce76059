// A live-migration round: the guest's VMM on host S sends to an incoming VMM on host T over TCP
// (across the test network, or loopback), through the fault relay when the fault needs it; then
// the runner decides where the guest is and checks that nothing broke (docs/soak.md, "Rounds").

#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "soak/fault_relay.h"
#include "soak/soak_context.h"
#include "transport/uri.h"

namespace gmem::soak {
namespace {

constexpr int kRoundTimeoutMs = 240000;

struct LiveRound : RoundState {
  using RoundState::RoundState;
  std::unique_ptr<SoakVmm> target;
  std::optional<FaultRelay> relay;
  std::optional<ToolRun> send, recv;

  Status Start();
  void InjectNetFaults(std::vector<TimedAction>& actions, int64_t fault_ms);
  void ClearNetFaults();
  void Evaluate();
  void CheckToolErrors();
  void TakeOver(const std::string& digest, const std::string& checksum, const std::string& outcome);
  void KeepSource(const std::string& outcome);
  std::string FailureDetail() const;
};

bool WaitListening(int netns_fd, uint16_t port, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = RunCommand({"ss", "-Hltn", "sport", "=", ":" + std::to_string(port)}, netns_fd, 5000);
    if (r.ok() && r->ok() && !r->output.empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool NeedsRelay(Fault f) {
  return f == Fault::kLatency || f == Fault::kStall || f == Fault::kReset || f == Fault::kSwitchoverReset;
}

// True `delay_ms` after send reported the switchover (its final pass began): from then on a lost
// connection hits the final pass, READY or COMMIT — the "in doubt" window.
std::function<bool()> AfterSwitchover(const ToolRun& send, uint32_t delay_ms) {
  auto seen = std::make_shared<std::optional<std::chrono::steady_clock::time_point>>();
  return [&send, delay_ms, seen] {
    auto now = std::chrono::steady_clock::now();
    if (!seen->has_value() && send.Out().find("\"switchover\"") != std::string::npos) *seen = now;
    return seen->has_value() && now - **seen >= std::chrono::milliseconds(delay_ms);
  };
}

Status LiveRound::Start() {
  GMEM_ASSIGN_OR_RETURN(target, ctx.StartIncoming(t, plan.target_slot));
  uint16_t port = static_cast<uint16_t>(20000 + plan.round % 30000);
  std::string listen = "tcp:" + ctx.hosts[t].address + ":" + std::to_string(port);
  GMEM_ASSIGN_OR_RETURN(recv, ctx.StartTool("gmem-migrate", "recv", plan.round,
                                            {"recv", "--vmm", target->socket, "--from", listen, "--key-file",
                                             ctx.key_file, "--paused", "--json", "--timeout", "120"},
                                            t));
  if (!WaitListening(ctx.hosts[t].netns_fd, port, 20000)) return Status(Code::kIo, "recv never listened on " + listen);
  std::string to = listen;
  if (NeedsRelay(plan.fault)) {
    RelayFaults faults;
    faults.seed = ctx.config.seed ^ plan.round;
    faults.latency_ms = static_cast<int>(plan.latency_ms);
    faults.jitter_ms = static_cast<int>(plan.jitter_ms);
    if (plan.fault == Fault::kReset) {
      uint64_t expected_bytes = ctx.config.mem_bytes / 2;
      faults.reset_after_bytes = static_cast<int64_t>(expected_bytes * plan.reset_fraction_ppm / 1000000);
    }
    bool netns = ctx.network.has_value();
    std::string relay_host = netns ? TestNetwork::RouterAddress(t) : "127.0.0.1";
    GMEM_ASSIGN_OR_RETURN(transport::Uri from, transport::ParseUri("tcp:" + relay_host + ":0"));
    GMEM_ASSIGN_OR_RETURN(transport::Uri dest, transport::ParseUri(listen));
    GMEM_ASSIGN_OR_RETURN(relay, FaultRelay::Create(from, dest, faults, netns ? ctx.network->RouterNetns() : -1));
    to = relay->uri();
  }
  GMEM_ASSIGN_OR_RETURN(send, ctx.StartTool("gmem-migrate", "send", plan.round,
                                            {"send", "--vmm", ctx.guest->socket, "--to", to, "--key-file",
                                             ctx.key_file, "--channels", std::to_string(plan.channels), "--compress",
                                             plan.compress, "--downtime-ms", std::to_string(plan.downtime_ms),
                                             "--verify-memory", "--json"},
                                            s));
  return Status::Ok();
}

void LiveRound::InjectNetFaults(std::vector<TimedAction>& actions, int64_t fault_ms) {
  auto note = [this](const Status& st) {
    if (!st.ok()) ctx.Anomaly(plan.round, "fault-injection", st.ToString());
  };
  switch (plan.fault) {
    case Fault::kBandwidth: note(ctx.network->CapBandwidth(t, plan.bandwidth_bits)); break;
    case Fault::kLoss: note(ctx.network->SetLoss(t, plan.loss_percent)); break;
    case Fault::kLinkCut:
      actions.push_back({fault_ms, [this, note] { note(ctx.network->CutLink(t)); }});
      actions.push_back({fault_ms + plan.duration_ms, [this, note] { note(ctx.network->RestoreLink(t)); }, true});
      break;
    case Fault::kStall: actions.push_back({fault_ms, [this] { relay->Stall(static_cast<int>(plan.duration_ms)); }}); break;
    case Fault::kSwitchoverReset:
      if (plan.reply_reset == 0) {
        actions.push_back({0, [this] { relay->ResetNow(); }, false, AfterSwitchover(*send, plan.duration_ms)});
      } else {
        // The target's next reply after the switchover began is READY.
        auto when = plan.reply_reset == 1   ? FaultRelay::ReplyReset::kBeforeForwarding
                    : plan.reply_reset == 2 ? FaultRelay::ReplyReset::kAfterForwarding
                                            : FaultRelay::ReplyReset::kAfterAnswer;
        actions.push_back({0, [this, when] { relay->ResetOnNextReply(when); }, false, AfterSwitchover(*send, 0)});
      }
      break;
    default: break;
  }
}

void LiveRound::ClearNetFaults() {
  if (ctx.network && IsNetFault(plan.fault)) {
    Status st = ctx.network->ClearAll();
    if (!st.ok()) ctx.Anomaly(plan.round, "fault-injection", "clearing: " + st.ToString());
  }
  relay.reset();
}

std::string LiveRound::FailureDetail() const {
  std::string detail;
  for (const ToolRun* run : {&*send, &*recv}) {
    std::string err = run->Err();
    if (!err.empty() && err.back() == '\n') err.pop_back();
    if (run->Exit().code != 0 && !err.empty()) detail += (detail.empty() ? "" : " | ") + err;
  }
  return detail;
}

// A tool that failed on its own (not killed by us) must say why in one line, with a documented
// exit code.
void LiveRound::CheckToolErrors() {
  for (const ToolRun* run : {&*send, &*recv}) {
    ExitStatus e = run->Exit();
    if (e.code == 0 || run->killed) continue;
    if (!e.exited()) {
      if (e.signal != SIGTERM) ctx.Anomaly(plan.round, "crash", run->name + " " + e.Describe());
      continue;
    }
    std::string why = CheckOneLineError(run->Err(), "gmem-migrate");
    if (!why.empty()) ctx.Anomaly(plan.round, "unclear-error", run->name + ": " + why);
    if (!IsFaultExitCode(e.code)) ctx.Anomaly(plan.round, "unexpected-exit-code", run->name + " " + e.Describe() + ": " + run->Err());
  }
}

// The target holds the guest (committed): its digest must be the source's at switchover.
void LiveRound::TakeOver(const std::string& digest, const std::string& checksum, const std::string& outcome) {
  auto d = target->Digest();
  if (!d.ok()) {
    ctx.Anomaly(plan.round, "lost-guest", "the committed target does not answer: " + d.status().ToString());
  } else if (d->digest != digest || d->checksum != checksum) {
    ctx.Anomaly(plan.round, "digest-mismatch", "target " + d->digest + "/" + d->checksum + ", source at switchover " +
                                                   digest + "/" + checksum);
  }
  if (ctx.guest->process.Running()) {
    Status st = ctx.Resolve(*ctx.guest, /*resume=*/false);
    if (!st.ok()) ctx.Anomaly(plan.round, "resolve", st.ToString());
  }
  Status st = target->Command("resume");
  if (!st.ok()) ctx.Anomaly(plan.round, "resume", "target: " + st.ToString());
  ctx.guest = std::move(target);
  rec.guest_moved = true;
  rec.outcome = outcome;
}

// The source keeps the guest: the target must never have run; discard it, resume the source.
void LiveRound::KeepSource(const std::string& outcome) {
  std::string ts = target->State();
  if (ts == "running" || ts == "finished") {
    ctx.Anomaly(plan.round, "split-brain", "the target is " + ts + " while the source keeps the guest");
  }
  if (ts != "gone") target->Quit();
  std::string ss = ctx.guest->State();
  if (ss == "paused") {
    Status st = ctx.Resolve(*ctx.guest, /*resume=*/true);
    if (!st.ok()) ctx.Anomaly(plan.round, "resolve", st.ToString());
  }
  rec.outcome = outcome;
}

void LiveRound::Evaluate() {
  ExitStatus se = send->Exit(), re = recv->Exit();
  nlohmann::json sent = send->Event("complete"), got = recv->Event("complete");
  if (se.code == 0 && re.code == 0) {
    rec.bytes = sent.value("wire_bytes", uint64_t{0});
    rec.migration_ms = sent.value("total_ms", uint64_t{0});
    rec.downtime_ms = sent.value("downtime_ms", uint64_t{0});
    ctx.live_ms.push_back(*rec.migration_ms);
    if (!ctx.guest->process.Wait(10000).has_value()) {
      ctx.Anomaly(plan.round, "source-alive", "the source VMM did not quit after COMMIT");
    }
    TakeOver(sent.value("digest", ""), sent.value("checksum", ""), "migrated");
    return;
  }
  CheckToolErrors();
  rec.detail = FailureDetail();
  std::string ss = ctx.guest->State();
  if (ss == "running" || ss == "finished") return KeepSource(se.code == 7 ? "cancelled, source kept" : "failed, source kept");
  if (ss == "paused") {
    // In doubt, or the sender died after pausing. The target owns the guest only if it committed.
    if (re.code == 0 && target->State() == "paused") {
      auto d = ctx.guest->Digest();
      if (!d.ok()) return ctx.Anomaly(plan.round, "lost-guest", "the paused source does not answer");
      return TakeOver(d->digest, d->checksum, "in doubt, resolved to the target");
    }
    return KeepSource(send->killed ? "sender killed, source resumed" : "in doubt, resolved to the source");
  }
  // The source VMM is gone: only a committed target may hold the guest.
  if (re.code == 0 && target->State() == "paused") {
    std::string digest = se.code == 0 ? sent.value("digest", "") : got.value("digest", "");
    std::string checksum = se.code == 0 ? sent.value("checksum", "") : got.value("checksum", "");
    return TakeOver(digest, checksum, "migrated, receiver lost after commit");
  }
  if (se.code == 0 && target->State() == "paused") {
    return TakeOver(sent.value("digest", ""), sent.value("checksum", ""), "migrated, receiver lost after commit");
  }
  ctx.Anomaly(plan.round, "lost-guest", "neither VMM holds the guest (source " + ss + ", target " + target->State() +
                                            "; send " + se.Describe() + ", recv " + re.Describe() + ")");
  rec.outcome = "guest lost";
}

}  // namespace

RoundRecord RunLiveRound(SoakContext& ctx, const RoundPlan& plan) {
  LiveRound r(ctx, plan);
  auto start = std::chrono::steady_clock::now();
  int64_t fault_ms = static_cast<int64_t>(plan.fault_at * static_cast<double>(ctx.ExpectedMs(ctx.live_ms, 1500)));
  std::vector<TimedAction> actions;
  Status started = r.Start();
  if (started.ok() && IsNetFault(plan.fault)) r.InjectNetFaults(actions, fault_ms);
  if (!started.ok()) {
    ctx.Anomaly(plan.round, "setup", started.ToString());
    r.ClearNetFaults();
    if (r.send) r.send->process.Kill();
    if (r.recv) r.recv->process.Kill();
    if (r.target) r.target->Quit();
    r.rec.outcome = "not started";
    return r.rec;
  }
  auto kill = [](ToolRun& run, int sig) {
    run.killed = run.killed || sig == SIGKILL;
    run.process.Signal(sig);
  };
  switch (plan.fault) {
    case Fault::kKillSender: actions.push_back({fault_ms, [&] { kill(*r.send, SIGKILL); }}); break;
    case Fault::kCancelSender: actions.push_back({fault_ms, [&] { kill(*r.send, SIGINT); }}); break;
    case Fault::kKillReceiver: actions.push_back({fault_ms, [&] { kill(*r.recv, SIGKILL); }}); break;
    case Fault::kKillTargetVmm:
      // Only while the VMM is still incoming (recv has not set its state, so nothing is committed).
      // A running recv is not enough: between COMMIT and recv's exit the VMM holds the committed
      // guest, and killing it then loses the guest by the fault's own hand (round 12 of a clean
      // run did that).
      actions.push_back({fault_ms, [&] {
                           if (r.recv->process.Running() && r.target->State() == "incoming") r.target->process.Kill();
                         }});
      break;
    default: break;
  }
  if (!Supervise({&*r.send, &*r.recv}, actions, kRoundTimeoutMs, {&*r.recv})) {
    ctx.Anomaly(plan.round, "hang", "send or recv still running after " + std::to_string(kRoundTimeoutMs / 1000) + " s");
    r.send->process.Kill();
    r.recv->process.Kill();
  }
  r.ClearNetFaults();
  r.Evaluate();
  if (r.target && !r.rec.guest_moved && r.target->process.Running()) r.target->Quit();
  r.rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r.rec;
}

}  // namespace gmem::soak
