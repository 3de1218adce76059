#pragma once
// Vmm: the reference VMM (DESIGN.md, "The reference VMM"). A KVM VM whose RAM is one guest_memfd
// per region, vCPUs in 64-bit mode running the embedded guest program (vmm/guest/), emulated
// CoCo, and the operations the control socket offers (docs/control-protocol.md).
//
// Life cycle:   Create -> [incoming: PrepareIncoming -> (memory written) -> SetAttributes ->
//               SetState] -> Resume <-> Pause -> finished | quit.
// A fresh VM (not incoming) is built completely by Create and starts running in Start(). An
// incoming VM with --mem (config.mem_bytes != 0) creates and populates its guest memory in Create,
// as a target VM started before the migration has its RAM; PrepareIncoming then only accepts that
// layout and adds the memslots.
//
// Thread-safety: every public method may be called from any thread (the control socket thread,
// the main thread in Run). Methods that need the vCPUs stopped say "REQUIRES paused" and fail
// with kInvalidArgument otherwise.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/expected.h"
#include "base/unique_fd.h"
#include "memory/attribute_map.h"
#include "memory/kvm_dirty_bitmap_source.h"
#include "memory/kvm_system.h"
#include "memory/layout.h"
#include "memory/page_bitmap.h"
#include "memory/vm.h"
#include "vmm/emulated_agent.h"
#include "vmm/emulated_coco.h"
#include "vmm/guest_memory.h"
#include "vmm/memory_digest.h"
#include "vmm/migration_progress.h"
#include "vmm/vcpu_runner.h"
#include "vmm/vm_state.h"
#include "vmm/vmm_config.h"

namespace gmem::vmm {

enum class VmmState : uint8_t {
  kIncoming = 1,  // waiting for prepare-incoming / set-state
  kPaused = 2,
  kRunning = 3,
  kFinished = 4,  // every vCPU ran its steps
};
std::string_view VmmStateName(VmmState state);

struct VcpuInfo {
  uint32_t id = 0;
  uint64_t step = 0;
  uint64_t steps_target = 0;
  bool finished = false;
};

struct VmmInfo {
  VmmState state = VmmState::kIncoming;
  bool incoming = false;       // started with --incoming
  bool memory_ready = false;   // regions exist (incoming: prepare-incoming done)
  // Incoming with --mem: the bytes of guest memory created and populated at start, the only layout
  // prepare-incoming accepts (GuestMemory::MakeLayout of --mem, --regions). 0 otherwise.
  uint64_t prepared_bytes = 0;
  memory::Layout layout;
  SlotMode slot = SlotMode::kGmem;
  CocoMode coco = CocoMode::kNone;
  memory::ConversionContent contents = memory::ConversionContent::kPreserve;
  WorkloadSpec workload;
  uint64_t seed = 0;
  uint64_t steps = 0;
  uint64_t conversions = 0;
  std::vector<VcpuInfo> vcpus;
  bool agent_available = false;  // the doorbell works: emulated CoCo and guest memory
  AgentInfo agent;
};

// Duplicates of the regions' guest_memfd fds (layout order), for get-memfds / prepare-incoming.
struct MemfdSet {
  memory::Layout layout;
  std::vector<UniqueFd> fds;
};

struct SlotDirtyLog {
  uint32_t slot = 0;
  uint32_t region_id = 0;
  uint64_t gpa = 0;
  memory::PageBitmap dirty;  // slot-relative pages
};

class Vmm {
 public:
  // Builds the VM. Fresh: memory laid down (seed or image), boot area written, memslots, vCPUs in
  // long mode, all paused until Start(). Incoming: only the KVM VM, plus with --mem its guest
  // memory (guest_memfds, mappings, every page populated for writing; no memslots yet); the rest
  // arrives over the control socket. kUnsupported without /dev/kvm.
  static Expected<std::unique_ptr<Vmm>> Create(const VmmConfig& config);
  ~Vmm();

  // Starts the vCPU threads; a fresh VM runs right away.
  Status Start();

  // Blocks until every vCPU finished (returns the checksum) or quit was requested (nullopt), or a
  // vCPU failed (its error). The vCPU threads are parked, not joined: Shutdown() ends them.
  Expected<std::optional<uint64_t>> Run();
  // Blocks until quit is requested.
  void WaitForQuit();
  // Stops and joins all vCPU threads. Idempotent.
  void Shutdown();

  Status Pause();
  Status Resume();
  // Changes the workload's rate limit (steps per second per vCPU, 0: unlimited) from now on, running
  // or paused; the checksum does not depend on it. get-state carries the new rate.
  Status SetRate(uint64_t rate);
  void RequestQuit();

  VmmInfo Query() const;
  Expected<MemfdSet> GetMemfds() const;
  Expected<std::vector<RegionAttributes>> GetAttributes() const;
  // REQUIRES paused (or incoming, before the first resume).
  Status SetAttributes(const std::vector<RegionAttributes>& attrs);
  // hva slots only: each slot's dirty pages since the last call; clears them.
  Expected<std::vector<SlotDirtyLog>> FetchDirtyLog();
  // REQUIRES paused.
  Expected<Bytes> GetState() const;
  // REQUIRES paused, or incoming with memory prepared.
  Status SetState(ByteSpan blob);
  // The memory digest (vmm/memory_digest.h) and the checksum the VM would end with if the vCPUs
  // stopped here.
  Expected<std::pair<uint64_t, uint64_t>> Digest() const;
  // REQUIRES incoming and no memory yet. `slot` overrides --slot (default gmem). A VM started with
  // --mem takes only the layout it prepared (kInvalidArgument naming both layouts otherwise, and
  // it stays incoming with its memory); without --mem, `layout` must pass GuestMemory::CheckLayout.
  // A failed prepare leaves the VM as it was, so it may be retried.
  Expected<MemfdSet> PrepareIncoming(const memory::Layout& layout, std::optional<SlotMode> slot);
  // REQUIRES paused. The gfns each vCPU logged (workload option log=1) since the last call.
  Expected<std::vector<std::vector<uint64_t>>> TakeGuestWriteLog();
  // The emulated guest agent's doorbell (docs/agent-protocol.md §3.4): serves the request in the
  // agent mailbox. Any state with guest memory; the vCPUs may run.
  Status AgentDoorbell();
  // What the migration tool last reported (`migration-progress`, `query-migration`). Its own lock:
  // a report never waits for a long request on the VM.
  MigrationProgressBoard& migration_progress() { return migration_progress_; }

 private:
  Vmm(memory::KvmSystem kvm, memory::Vm vm, const VmmConfig& config)
      : kvm_(std::move(kvm)), vm_(std::move(vm)), config_(config) {}
  Status BuildFresh();
  // `--private`: makes the seed's choice of data pages private (vmm/initial_contents.h,
  // BootPrivateRuns) in the CoCo table and in the guest's record. REQUIRES: memory laid down, boot
  // area written, no vCPU yet.
  Status MakePrivateAtBoot();
  // Incoming with --mem: creates the layout of --mem/--regions and populates it into prepared_.
  Status PrepareMemory();
  // Takes `ram` as the VM's (memory_) and adds the memslots, dirty logs (hva) and CoCo table.
  // On failure memory_ keeps it; the caller undoes the rest.
  Status SetUpMemory(std::unique_ptr<GuestMemory> ram, SlotMode slot);
  // Creates the vCPUs (from `states`, or fresh in long mode at the guest entry when null) and
  // starts their threads, parked.
  Status CreateVcpus(const std::vector<VcpuState>* states);
  Expected<MemfdSet> MemfdsLocked() const;
  Status RequirePausedLocked() const;
  bool AllStoppedLocked() const;  // REQUIRES control_.mu
  std::vector<VcpuResult> VcpuResultsLocked() const;
  VmmState StateLocked() const;
  uint64_t ChecksumLocked() const;

  memory::KvmSystem kvm_;
  memory::Vm vm_;
  mutable std::mutex mu_;  // guards everything below; taken before control_.mu
  VmmConfig config_;
  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<GuestMemory> prepared_;  // incoming with --mem, until prepare-incoming takes it
  std::unique_ptr<EmulatedCoco> coco_;
  std::unique_ptr<EmulatedAgent> agent_;
  std::vector<std::unique_ptr<memory::KvmDirtyBitmapSource>> dirty_logs_;
  std::vector<std::unique_ptr<VcpuRunner>> runners_;
  mutable RunControl control_;
  MigrationProgressBoard migration_progress_;
};

}  // namespace gmem::vmm
