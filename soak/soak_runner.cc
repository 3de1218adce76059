#include "soak/soak_runner.h"

#include <sched.h>
#include <sys/mount.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "soak/soak_context.h"

namespace gmem::soak {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The guest's gmem-vmm arguments (without control socket and slot); `rate` 0: unthrottled.
std::vector<std::string> GuestArgs(const SoakConfig& c, const std::string& platform_key, uint64_t steps,
                                   uint64_t rate) {
  std::string workload = c.workload == WorkloadChoice::kDirty ? "dirty" : "convert";
  if (rate != 0) workload += ":rate=" + std::to_string(rate);
  std::vector<std::string> args = {"run", "--mem", std::to_string(c.mem_bytes >> 20) + "M", "--regions",
                                   std::to_string(c.regions), "--vcpus", std::to_string(c.vcpus), "--workload",
                                   workload, "--seed", std::to_string(c.seed), "--steps", std::to_string(steps)};
  if (c.workload != WorkloadChoice::kDirty) {
    args.insert(args.end(), {"--coco", "emulated", "--convert-contents", "scramble", "--platform-key", platform_key,
                             "--guest-id", "gmem-soak"});
  }
  if (c.workload == WorkloadChoice::kMixed) args.insert(args.end(), {"--private", "25"});
  return args;
}

// Steps enough that the guest still runs when the last round ends (at the rounds' rate), with
// room to spare; it then finishes at full speed.
uint64_t GuestSteps(const SoakConfig& c) {
  double seconds = c.duration_s > 0 ? static_cast<double>(c.duration_s) : 4.0 * c.rounds;
  return static_cast<uint64_t>((seconds * 1.5 + 30) * static_cast<double>(c.guest_rate)) * c.vcpus;
}

Expected<std::string> BaselineChecksum(SoakContext& ctx) {
  std::vector<std::string> argv = {ctx.Tool("gmem-vmm")};
  argv.insert(argv.end(), ctx.baseline_args.begin(), ctx.baseline_args.end());
  GMEM_ASSIGN_OR_RETURN(CommandResult r, RunCommand(argv, -1, 1800000));
  size_t at = r.output.rfind("checksum=");
  if (!r.ok() || at == std::string::npos) {
    return Status(Code::kIo, "the uninterrupted run failed (" + r.status.Describe() + "): " + r.output);
  }
  return r.output.substr(at + 9, 16);
}

Status StartGuest(SoakContext& ctx, const std::string& slot) {
  auto vmm = std::make_unique<SoakVmm>();
  uint32_t n = ++ctx.vmm_count;
  vmm->socket = ctx.config.work_dir + "/vmm-" + std::to_string(n) + ".sock";
  vmm->log = ctx.logs_dir + "/vmm-" + std::to_string(n) + "-" + ctx.hosts[0].name + ".log";
  std::vector<std::string> argv = {ctx.Tool("gmem-vmm")};
  argv.insert(argv.end(), ctx.guest_args.begin(), ctx.guest_args.end());
  argv.insert(argv.end(), {"--control", vmm->socket, "--linger", "--slot", slot});
  GMEM_ASSIGN_OR_RETURN(vmm->process, ChildProcess::Spawn({argv, ctx.hosts[0].netns_fd, vmm->log, vmm->log}));
  GMEM_RETURN_IF_ERROR(migrate::VmmClient::Connect(vmm->socket, 60000).status().WithContext("the guest's gmem-vmm"));
  ctx.guest = std::move(vmm);
  return Status::Ok();
}

Status SetUpHosts(SoakContext& ctx) {
  if (ctx.config.netns) {
    auto network = TestNetwork::Create(2);
    if (network.ok()) {
      ctx.network = std::move(network).value();
      for (int i = 0; i < 2; ++i) {
        ctx.hosts.push_back({std::string(1, static_cast<char>('a' + i)), ctx.network->HostNetns(i), TestNetwork::HostAddress(i)});
      }
      ctx.Say("hosts: a (" + TestNetwork::HostAddress(0) + ") and b (" + TestNetwork::HostAddress(1) +
              "), each in its own network namespace, joined through a router namespace by veth pairs");
      return Status::Ok();
    }
    ctx.Say("hosts: network namespaces unavailable (" + network.status().ToString() +
            "): falling back to loopback; the faults that need them (bandwidth cap, packet loss, link cut) are off");
    ctx.config.netns = false;
  }
  ctx.hosts = {{"a", -1, "127.0.0.1"}, {"b", -1, "127.0.0.1"}};
  ctx.Say("hosts: a and b on loopback (127.0.0.1)");
  return Status::Ok();
}

Status SetUp(SoakContext& ctx) {
  const SoakConfig& c = ctx.config;
  for (const char* tool : {"gmem-vmm", "gmem-migrate", "gmem-snapshot"}) {
    if (access(ctx.Tool(tool).c_str(), X_OK) != 0) return InvalidArgument("no executable " + ctx.Tool(tool));
  }
  if (access("/dev/kvm", R_OK | W_OK) != 0) return Unsupported("gmem-soak runs real KVM guests and needs /dev/kvm");
  std::error_code ec;
  ctx.logs_dir = c.work_dir + "/logs";
  ctx.snapshot_dir = c.work_dir + "/snapshots";
  fs::create_directories(ctx.logs_dir, ec);
  fs::create_directories(ctx.snapshot_dir, ec);
  if (ec) return Status(Code::kIo, "cannot create " + c.work_dir + ": " + ec.message());
  ctx.key_file = c.work_dir + "/migration.key";
  GMEM_RETURN_IF_ERROR(RunChecked({ctx.Tool("gmem-migrate"), "-q", "keygen", "--out", ctx.key_file, "--force"}));
  if (c.workload != WorkloadChoice::kDirty) {
    ctx.platform_key = c.work_dir + "/platform.key";
    GMEM_RETURN_IF_ERROR(RunChecked({ctx.Tool("gmem-vmm"), "platform-keygen", "--out", ctx.platform_key, "--force"}));
  }
  return SetUpHosts(ctx);
}

// Lets the guest finish at full speed and returns its checksum ("" and an anomaly if it cannot).
std::string FinishGuest(SoakContext& ctx) {
  SoakVmm& vmm = *ctx.guest;
  auto client = migrate::VmmClient::Connect(vmm.socket, 5000);
  if (!client.ok() || !client->Ok({{"cmd", "set-rate"}, {"rate", 0}}).ok()) {
    ctx.Anomaly(0, "lost-guest", "the guest's VMM does not answer at the end");
    return "";
  }
  auto deadline = Clock::now() + std::chrono::minutes(30);
  for (;;) {
    auto state = client->State();
    if (!state.ok()) {
      ctx.Anomaly(0, "lost-guest", "the guest's VMM ended before the guest finished: " + state.status().ToString());
      return "";
    }
    if (*state == "finished") break;
    if (Clock::now() > deadline) {
      ctx.Anomaly(0, "hang", "the guest did not finish");
      return "";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto digest = client->Digest();
  vmm.Quit();
  if (!digest.ok()) {
    ctx.Anomaly(0, "lost-guest", digest.status().ToString());
    return "";
  }
  return digest->checksum;
}

bool MoreRounds(const SoakConfig& c, uint32_t done, Clock::time_point start) {
  if (c.stop != nullptr && c.stop->load()) return false;
  if (c.duration_s > 0) return SecondsSince(start) < static_cast<double>(c.duration_s);
  return done < c.rounds;
}

void RunRounds(SoakContext& ctx, Clock::time_point start) {
  SoakPlanOptions plan_options{ctx.config.seed, ctx.config.faults, ctx.config.slot, ctx.network.has_value(),
                               ctx.config.snapshot_fs_bytes > 0};
  for (uint32_t round = 1; MoreRounds(ctx.config, round - 1, start); ++round) {
    RoundPlan plan = PlanRound(plan_options, round);
    size_t anomalies_before = ctx.report->anomalies().size();
    RoundRecord rec = plan.kind == RoundKind::kLive ? RunLiveRound(ctx, plan) : RunSnapshotRound(ctx, plan);
    char line[512];
    std::snprintf(line, sizeof(line), "round %4u  %s -> %s  %-56s  %-36s %6.2f s", round, rec.from.c_str(),
                  rec.to.c_str(), plan.Describe().c_str(), rec.outcome.c_str(), rec.seconds);
    ctx.Say(line);
    if (ctx.events->event) ctx.events->event(RoundToJson(rec));
    ctx.report->AddRound(std::move(rec));
    bool lost = false;
    for (size_t i = anomalies_before; i < ctx.report->anomalies().size(); ++i) {
      lost = lost || ctx.report->anomalies()[i].kind == "lost-guest";
    }
    if (lost || ctx.guest == nullptr || !ctx.guest->process.Running()) {
      if (!lost) ctx.Anomaly(round, "lost-guest", "the guest's VMM is gone");
      ctx.Say("the guest is lost: the soak stops here");
      return;
    }
  }
}

}  // namespace

Expected<SoakReport> RunSoak(const SoakConfig& config, const SoakEvents& events) {
  SoakReport report(config.seed, config.replay_command);
  SoakContext ctx;
  ctx.config = config;
  ctx.events = &events;
  ctx.report = &report;
  GMEM_RETURN_IF_ERROR(SetUp(ctx));
  const SoakConfig& c = ctx.config;
  report.SetSetting("hosts", c.netns ? "netns" : "loopback");
  report.SetSetting("mem_bytes", c.mem_bytes);
  report.SetSetting("regions", c.regions);
  report.SetSetting("vcpus", c.vcpus);
  report.SetSetting("guest_rate", c.guest_rate);
  report.SetSetting("snapshot_tmpfs_bytes", c.snapshot_fs_bytes);
  uint64_t steps = GuestSteps(c);
  report.SetSetting("guest_steps", steps);
  ctx.baseline_args = GuestArgs(c, ctx.platform_key, steps, 0);
  ctx.guest_args = GuestArgs(c, ctx.platform_key, steps, c.guest_rate);
  ctx.Say("uninterrupted run of the guest (" + std::to_string(steps) + " steps) for the reference checksum ...");
  auto t0 = Clock::now();
  GMEM_ASSIGN_OR_RETURN(std::string baseline, BaselineChecksum(ctx));
  char line[160];
  std::snprintf(line, sizeof(line), "reference checksum %s (%.1f s)", baseline.c_str(), SecondsSince(t0));
  ctx.Say(line);
  auto start = Clock::now();
  GMEM_RETURN_IF_ERROR(StartGuest(ctx, c.slot == SlotChoice::kGmem ? "gmem" : "hva"));
  RunRounds(ctx, start);
  std::string checksum;
  if (ctx.guest != nullptr && ctx.guest->process.Running()) {
    ctx.Say("letting the guest finish at full speed ...");
    checksum = FinishGuest(ctx);
    if (!checksum.empty() && checksum != baseline) {
      ctx.Anomaly(0, "checksum-mismatch", "the guest ended with " + checksum + ", the uninterrupted run with " + baseline);
    }
  }
  report.SetFinal(checksum, baseline, SecondsSince(start));
  return report;
}

Status MountPrivateTmpfs(const std::string& dir, uint64_t size_bytes) {
  if (unshare(CLONE_NEWNS) != 0) return ErrnoStatus(Code::kUnsupported, "unshare(CLONE_NEWNS)");
  // Nothing mounted from here on propagates back to the host's namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return ErrnoStatus(Code::kUnsupported, "making mounts private");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string options = "size=" + std::to_string(size_bytes) + ",mode=0700";
  if (mount("gmem-soak", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    return ErrnoStatus(Code::kUnsupported, "mounting a tmpfs on " + dir);
  }
  return Status::Ok();
}

}  // namespace gmem::soak
