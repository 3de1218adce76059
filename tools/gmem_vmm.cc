// gmem-vmm: the reference VMM front end. Subcommands: run, platform-keygen. The VMM lives in
// vmm/; this file only parses flags, wires the control socket and reports.

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "agent/platform_key.h"
#include "base/bytes.h"
#include "tools/cli_parse.h"
#include "tools/exit_codes.h"
#include "vmm/control_server.h"
#include "vmm/memory_digest.h"
#include "vmm/vmm.h"
#include "vmm/vmm_config.h"
#include "vmm/vmm_control.h"

namespace gmem::tools {
namespace {

constexpr std::string_view kTool = "gmem-vmm";

struct RunFlags {
  std::string mem;
  uint32_t regions = 1;
  uint32_t vcpus = 1;
  std::string slot;
  std::string coco = "none";
  std::string contents = "preserve";
  uint32_t private_percent = 0;
  std::string workload = "dirty";
  uint64_t seed = 0;
  uint64_t steps = 0;
  std::string init_from;
  std::string control;
  bool incoming = false;
  bool json = false;
  bool linger = false;
  bool verbose = false;
  std::string platform_key;
  int platform_key_fd = -1;
  std::string guest_id;
  std::string agent_dirty = "hash";
};

Expected<vmm::VmmConfig> MakeConfig(const RunFlags& f) {
  vmm::VmmConfig c;
  c.incoming = f.incoming;
  if (f.incoming && f.control.empty()) return InvalidArgument("--incoming needs --control PATH");
  if (!f.incoming && f.mem.empty()) return InvalidArgument("--mem SIZE is required (unless --incoming)");
  if (!f.mem.empty()) {
    GMEM_ASSIGN_OR_RETURN(c.mem_bytes, vmm::ParseSize(f.mem));
    // ValidateConfig reads mem_bytes 0 on an incoming VM as "no --mem": refuse "--mem 0" here.
    if (f.incoming && c.mem_bytes == 0) GMEM_RETURN_IF_ERROR(vmm::ValidateMemorySize(c.mem_bytes, f.regions));
  }
  c.regions = f.regions;
  c.vcpus = f.vcpus;
  if (!f.slot.empty()) {
    GMEM_ASSIGN_OR_RETURN(c.slot, vmm::ParseSlotMode(f.slot));
    c.slot_given = true;
  }
  GMEM_ASSIGN_OR_RETURN(c.coco, vmm::ParseCocoMode(f.coco));
  GMEM_ASSIGN_OR_RETURN(c.contents, vmm::ParseConversionContent(f.contents));
  c.private_percent = f.private_percent;
  GMEM_ASSIGN_OR_RETURN(c.workload, vmm::ParseWorkload(f.workload));
  c.seed = f.seed;
  c.steps = f.steps;
  c.init_from = f.init_from;
  if (!f.platform_key.empty() && f.platform_key_fd >= 0) {
    return InvalidArgument("--platform-key and --platform-key-fd are mutually exclusive");
  }
  if (!f.platform_key.empty() || f.platform_key_fd >= 0) {
    UniqueFd owned(f.platform_key_fd);  // an inherited fd is read to its end and closed
    auto key = owned.valid() ? agent::PlatformKey::LoadFd(owned.get()) : agent::PlatformKey::LoadFile(f.platform_key);
    if (!key.ok()) return key.status().WithContext("platform key");
    c.platform_key = std::make_shared<const agent::PlatformKey>(std::move(key).value());
  }
  c.guest_id = f.guest_id;
  GMEM_ASSIGN_OR_RETURN(c.agent_dirty, vmm::ParseAgentDirtyMode(f.agent_dirty));
  GMEM_RETURN_IF_ERROR(vmm::ValidateConfig(c));
  if (!c.incoming && c.steps != 0 && c.steps < c.vcpus) return InvalidArgument("--steps must be at least --vcpus");
  return c;
}

void PrintResult(const RunFlags& f, uint64_t checksum, const vmm::VmmInfo& info, double seconds) {
  uint64_t steps = 0;
  for (const auto& v : info.vcpus) steps += v.step;
  if (f.json) {
    std::printf("{\"event\":\"done\",\"checksum\":\"%s\",\"steps\":%llu,\"seconds\":%.3f}\n",
                vmm::DigestHex(checksum).c_str(), static_cast<unsigned long long>(steps), seconds);
  } else {
    std::printf("checksum=%s\n", vmm::DigestHex(checksum).c_str());
  }
  std::fflush(stdout);
  if (f.verbose) {
    std::fprintf(stderr, "%s: %llu steps in %.3f s (%.0f steps/s)\n", std::string(kTool).c_str(),
                 static_cast<unsigned long long>(steps), seconds, seconds > 0 ? steps / seconds : 0.0);
  }
}

// platform-keygen: a new emulated platform key (docs/agent-protocol.md §5.1), mode 0600. Only its
// public half is printed.
int PlatformKeygen(const std::string& out, bool force) {
  auto key = agent::PlatformKey::Generate();
  if (!key.ok()) return Fail(kTool, "platform-keygen", key.status());
  Status st = key->WriteFile(out, force);
  if (!st.ok()) return Fail(kTool, "platform-keygen", st);
  std::printf("wrote platform key '%s' (mode 0600, public key %s)\n", out.c_str(), ToHex(key->public_key()).c_str());
  return kExitOk;
}

int Run(const RunFlags& flags) {
  auto config = MakeConfig(flags);
  if (!config.ok()) return Fail(kTool, "run", config.status());
  auto created = vmm::Vmm::Create(*config);
  if (!created.ok()) return Fail(kTool, "run", created.status());
  std::unique_ptr<vmm::Vmm> machine = std::move(created).value();
  std::unique_ptr<vmm::ControlServer> server;
  if (!flags.control.empty()) {
    vmm::Vmm* raw = machine.get();
    auto listening =
        vmm::ControlServer::Listen(flags.control, [raw](std::string_view line) { return HandleControlLine(*raw, line); });
    if (!listening.ok()) return Fail(kTool, "run", listening.status());
    server = std::move(listening).value();
    server->Start();
  }
  auto start = std::chrono::steady_clock::now();
  Status started = machine->Start();
  if (!started.ok()) return Fail(kTool, "run", started);
  auto result = machine->Run();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (result.ok() && result->has_value()) {
    PrintResult(flags, **result, machine->Query(), seconds);
    if (flags.linger && server) machine->WaitForQuit();
  }
  if (server) server->Stop();
  machine->Shutdown();
  if (!result.ok()) return Fail(kTool, "run", result.status());
  return kExitOk;
}

}  // namespace
}  // namespace gmem::tools

int main(int argc, char** argv) {
  using namespace gmem::tools;
  CLI::App app{"gmem-vmm: the reference VMM — a KVM guest on guest_memfd memory (see docs/control-protocol.md)"};
  app.require_subcommand(1);
  RunFlags f;
  // CLI11 would wrap "-5" into a huge unsigned value.
  const CLI::Validator kUnsigned(
      [](std::string& v) { return v.find('-') == std::string::npos ? std::string() : "must not be negative"; },
      "UINT");
  CLI::App* run = app.add_subcommand("run", "run a VM until its workload ends (or `quit` on the control socket)");
  run->add_option("--mem", f.mem,
                  "guest RAM, e.g. 256M (multiple of 2 MiB, 4 MiB..8 GiB). With --incoming: create and pre-allocate "
                  "it (every page populated) before --control listens, so the migration or restore need not; the "
                  "stream's layout must then be this --mem and --regions");
  run->add_option("--regions", f.regions, "guest_memfd regions the RAM is split into (1..16; --incoming: with --mem)")
      ->default_val(1)
      ->check(kUnsigned);
  run->add_option("--vcpus", f.vcpus, "vCPUs (1..16); each runs its share of the steps")
      ->default_val(1)
      ->check(kUnsigned);
  run->add_option("--slot", f.slot, "memslots: gmem (KVM_MEM_GUEST_MEMFD) or hva (classic, dirty-logged)");
  run->add_option("--coco", f.coco, "none (all shared) or emulated (private pages in the VMM's table)");
  run->add_option("--convert-contents", f.contents, "what a conversion does to contents: preserve, zero, scramble");
  run->add_option("--private", f.private_percent,
                  "percent (0..100) of the data pages (guest-physical 2 MiB and up) that start private, as an SNP "
                  "guest's memory does: 64 KiB runs chosen from --seed, contents kept; not counted as conversions. "
                  "Needs --coco emulated")
      ->default_val(0)
      ->check(kUnsigned);
  run->add_option("--workload", f.workload, "dirty|convert|idle[:rate=N,pages=N,words=N,every=N,log=0|1]");
  run->add_option("--seed", f.seed, "seed of the initial contents and the workload")->check(kUnsigned);
  run->add_option("--steps", f.steps, "total steps, then print checksum=<hex> and exit (0: run until quit)")
      ->check(kUnsigned);
  run->add_option("--init-from", f.init_from, "raw image of guest memory instead of seeded contents");
  run->add_option("--control", f.control, "Unix socket path of the control protocol");
  run->add_flag("--incoming", f.incoming,
                "wait for prepare-incoming, memory, set-state and resume on --control (see --mem to pre-allocate RAM)");
  run->add_flag("--json", f.json, "print the result as a JSON object");
  run->add_flag("--linger", f.linger, "after the workload ends, keep serving --control until quit");
  run->add_flag("-v,--verbose", f.verbose, "print steps and time on stderr");
  run->add_option("--platform-key", f.platform_key,
                  "emulated platform key file of the guest agent (mode 0600; see platform-keygen); the same file on "
                  "every VMM of the platform")
      ->check(CLI::ExistingFile);
  run->add_option("--platform-key-fd", f.platform_key_fd, "read the platform key from this inherited fd")
      ->check(kUnsigned);
  run->add_option("--guest-id", f.guest_id,
                  "identity field mixed into the guest's measurement (like SNP's IMAGE_ID; default empty)");
  run->add_option("--agent-dirty", f.agent_dirty,
                  "how the emulated agent answers DIRTY: hash (changed since export) or all (cannot track)");
  std::string keygen_out;
  bool keygen_force = false;
  CLI::App* keygen = app.add_subcommand("platform-keygen", "write a new emulated platform key file (mode 0600)");
  keygen->add_option("--out", keygen_out, "the key file to create")->required();
  keygen->add_flag("--force", keygen_force, "replace an existing file");
  if (auto code = ParseArgs(app, argc, argv, kTool)) return *code;
  if (run->parsed()) return Run(f);
  if (keygen->parsed()) return PlatformKeygen(keygen_out, keygen_force);
  return kExitUsage;
}
