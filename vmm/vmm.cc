#include "vmm/vmm.h"

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "memory/kvm_uapi.h"
#include "vmm/guest/guest_abi.h"
#include "vmm/initial_contents.h"
#include "vmm/vm_state.h"
#include "vmm/x86_boot.h"

namespace gmem::vmm {
namespace {

// How long a pause waits for the vCPUs to reach a step boundary before kicking them.
constexpr std::chrono::milliseconds kPauseAtStepBoundaryTimeout{20};

}  // namespace

std::string_view VmmStateName(VmmState state) {
  switch (state) {
    case VmmState::kIncoming: return "incoming";
    case VmmState::kPaused: return "paused";
    case VmmState::kRunning: return "running";
    case VmmState::kFinished: return "finished";
  }
  return "invalid";
}

Expected<std::unique_ptr<Vmm>> Vmm::Create(const VmmConfig& config) {
  GMEM_RETURN_IF_ERROR(ValidateConfig(config));
  GMEM_ASSIGN_OR_RETURN(memory::KvmSystem kvm, memory::KvmSystem::Open());
  GMEM_ASSIGN_OR_RETURN(memory::Vm vm, memory::Vm::Create(kvm));
  InstallKickHandler();
  std::unique_ptr<Vmm> vmm(new Vmm(std::move(kvm), std::move(vm), config));
  vmm->agent_ = std::make_unique<EmulatedAgent>(config.platform_key, config.guest_id, config.agent_dirty);
  {
    std::lock_guard<std::mutex> lock(vmm->mu_);
    if (!config.incoming) {
      GMEM_RETURN_IF_ERROR(vmm->BuildFresh());
    } else if (config.mem_bytes != 0) {
      GMEM_RETURN_IF_ERROR(vmm->PrepareMemory());
    }
  }
  return vmm;
}

Vmm::~Vmm() { Shutdown(); }

Status Vmm::PrepareMemory() {
  // Allocating a page is the expensive part of receiving it on this host (the kernel clears it,
  // and after idling it may first have to come back from the outer host): pay it here, before the
  // control socket exists, so an orchestrator that waits for the socket finds the RAM ready and
  // the migration's downtime-critical path finds every page already there.
  memory::Layout layout = GuestMemory::MakeLayout(config_.mem_bytes, config_.regions);
  auto created = GuestMemory::Create(vm_, layout);
  if (!created.ok()) return created.status().WithContext("--mem: create guest memory");
  auto ram = std::make_unique<GuestMemory>(std::move(created).value());
  GMEM_RETURN_IF_ERROR(ram->PopulateWrite().WithContext("--mem: pre-allocate guest memory"));
  prepared_ = std::move(ram);
  return Status::Ok();
}

Status Vmm::SetUpMemory(std::unique_ptr<GuestMemory> ram, SlotMode slot) {
  memory_ = std::move(ram);
  const memory::Layout& layout = memory_->layout();
  if (slot == SlotMode::kHva) GMEM_RETURN_IF_ERROR(memory::KvmDirtyBitmapSource::EnableManualProtect(vm_));
  GMEM_RETURN_IF_ERROR(memory_->AddMemslots(vm_, slot));
  if (slot == SlotMode::kHva) {
    for (size_t i = 0; i < layout.regions().size(); ++i) {
      GMEM_ASSIGN_OR_RETURN(auto log, memory::KvmDirtyBitmapSource::Create(vm_, static_cast<uint32_t>(i),
                                                                           layout.regions()[i].npages(), 0, true));
      dirty_logs_.push_back(std::move(log));
    }
  }
  config_.slot = slot;
  // An incoming VM learns its CoCo mode from set-state, which may come after set-attributes: until
  // then its table accepts private pages (set-state re-checks them against the real mode).
  CocoMode coco = config_.incoming ? CocoMode::kEmulated : config_.coco;
  GMEM_ASSIGN_OR_RETURN(coco_, EmulatedCoco::Create(*memory_, coco, config_.contents, config_.seed));
  return Status::Ok();
}

Status Vmm::BuildFresh() {
  GMEM_ASSIGN_OR_RETURN(GuestMemory ram,
                        GuestMemory::Create(vm_, GuestMemory::MakeLayout(config_.mem_bytes, config_.regions)));
  GMEM_RETURN_IF_ERROR(SetUpMemory(std::make_unique<GuestMemory>(std::move(ram)), config_.slot));
  if (!config_.init_from.empty()) {
    GMEM_RETURN_IF_ERROR(LoadRawImage(*memory_, config_.init_from));
  } else {
    GMEM_RETURN_IF_ERROR(LayDownSeededContents(*memory_, config_.seed));
  }
  BootParams boot;
  boot.mem_bytes = config_.mem_bytes;
  boot.nvcpus = config_.vcpus;
  boot.workload = config_.workload;
  boot.seed = config_.seed;
  boot.steps = config_.steps;
  GMEM_RETURN_IF_ERROR(WriteBootArea(memory_->HostAddress(0, GMEM_GUEST_DATA_GPA), boot));
  if (config_.private_percent != 0) GMEM_RETURN_IF_ERROR(MakePrivateAtBoot());
  if (config_.coco == CocoMode::kEmulated) {
    GMEM_RETURN_IF_ERROR(vm_.EnableCap(KVM_CAP_EXIT_HYPERCALL, uint64_t{1} << KVM_HC_MAP_GPA_RANGE));
  }
  return CreateVcpus(nullptr);
}

Status Vmm::MakePrivateAtBoot() {
  // Data pages only: the boot area (page tables, GDT, code, control pages, the guest's record and
  // the agent area, all below GMEM_GUEST_DATA_GPA) must be shared for the VMM, the guest and the
  // agent's host side to reach it. Past it nothing needs to be shared at boot: the guest reads
  // and writes its data pages whatever their attribute (vmm/emulated_coco.h).
  std::vector<memory::PageRange> runs =
      BootPrivateRuns(config_.seed, DataPages(config_.mem_bytes), config_.private_percent);
  std::vector<memory::PageRange> gfns;
  gfns.reserve(runs.size());
  for (const memory::PageRange& run : runs) {
    gfns.push_back(memory::PageRange{GMEM_GUEST_DATA_GPA / GMEM_GUEST_PAGE + run.first, run.count});
  }
  GMEM_RETURN_IF_ERROR(coco_->MakePrivateAtBoot(gfns));
  // The guest keeps its own record of its private pages (the convert workload flips what it
  // says): it must know which ones it starts with. WriteBootArea zeroed it.
  std::byte* record = memory_->HostAddress(GMEM_GUEST_RECORD_GPA, GMEM_GUEST_RECORD_BYTES);
  if (record == nullptr) return InvalidArgument("private at boot: no memory for the guest's private-page record");
  // SAFETY: HostAddress checked that the whole record lies inside region 0's mapping.
  return MarkPrivateInRecord(std::span<std::byte>(record, GMEM_GUEST_RECORD_BYTES), runs)
      .WithContext("private at boot");
}

Status Vmm::CreateVcpus(const std::vector<VcpuState>* states) {
  uint32_t n = states != nullptr ? static_cast<uint32_t>(states->size()) : config_.vcpus;
  for (uint32_t id = 0; id < n; ++id) {
    GMEM_ASSIGN_OR_RETURN(Vcpu vcpu, Vcpu::Create(kvm_, vm_, id));
    GMEM_ASSIGN_OR_RETURN(struct kvm_sregs sregs, vcpu.GetSregs());
    struct kvm_regs regs = InitialRegs(id);
    bool finished = false;
    if (states != nullptr) {
      sregs = (*states)[id].sregs;
      regs = (*states)[id].regs;
      finished = (*states)[id].finished;
    } else {
      SetLongModeSregs(sregs);
    }
    GMEM_RETURN_IF_ERROR(vcpu.SetSregs(sregs));
    GMEM_RETURN_IF_ERROR(vcpu.SetRegs(regs));
    runners_.push_back(std::make_unique<VcpuRunner>(std::move(vcpu), *memory_, *coco_, control_, finished));
  }
  config_.vcpus = n;
  {
    std::lock_guard<std::mutex> lock(control_.mu);
    control_.vcpus = n;
    control_.rate = config_.workload.rate;
    ++control_.rate_epoch;
    for (auto& r : runners_) {
      if (r->finished()) ++control_.finished;
    }
  }
  for (auto& r : runners_) r->Start();
  return Status::Ok();
}

Status Vmm::Start() {
  if (config_.incoming) return Status::Ok();
  return Resume();
}

Expected<std::optional<uint64_t>> Vmm::Run() {
  {
    std::unique_lock<std::mutex> lock(control_.mu);
    control_.cv.wait(lock, [&] { return control_.quit || (control_.vcpus > 0 && control_.finished == control_.vcpus); });
    if (!control_.error.ok()) return control_.error;
    if (control_.quit) return std::optional<uint64_t>();
  }
  std::lock_guard<std::mutex> lock(mu_);
  return std::optional<uint64_t>(ChecksumLocked());
}

void Vmm::WaitForQuit() {
  std::unique_lock<std::mutex> lock(control_.mu);
  control_.cv.wait(lock, [&] { return control_.quit; });
}

void Vmm::RequestQuit() {
  std::lock_guard<std::mutex> lock(control_.mu);
  control_.quit = true;
  control_.cv.notify_all();
}

void Vmm::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  {
    std::lock_guard<std::mutex> control_lock(control_.mu);
    control_.quit = true;
    for (auto& r : runners_) r->vcpu().SetImmediateExit(true);
    control_.cv.notify_all();
  }
  for (auto& r : runners_) r->Kick();
  for (auto& r : runners_) r->Join();
}

bool Vmm::AllStoppedLocked() const {
  return control_.parked + control_.finished + control_.stopped >= control_.vcpus;
}

Status Vmm::RequirePausedLocked() const {
  if (runners_.empty()) return InvalidArgument("the VM has no vCPUs yet (incoming: send set-state first)");
  std::lock_guard<std::mutex> lock(control_.mu);
  if (!control_.pause && control_.finished < control_.vcpus) return InvalidArgument("the VM must be paused");
  if (!AllStoppedLocked()) return InvalidArgument("the VM is still pausing");
  return Status::Ok();
}

Status Vmm::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  if (runners_.empty()) return InvalidArgument("the VM has no vCPUs yet (incoming: send set-state first)");
  {
    std::lock_guard<std::mutex> control_lock(control_.mu);
    if (control_.quit) return Status(Code::kCancelled, "the VM is quitting");
    control_.pause = true;
    // Stop at the next step boundary (vmm/vcpu_runner.h, "Pause protocol").
    for (uint32_t id = 0; id < runners_.size(); ++id) {
      memory_->Store64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, budget)), 0);
    }
  }
  std::unique_lock<std::mutex> control_lock(control_.mu);
  auto stopped = [&] { return control_.quit || AllStoppedLocked(); };
  if (!control_.cv.wait_for(control_lock, kPauseAtStepBoundaryTimeout, stopped)) {
    for (auto& r : runners_) r->vcpu().SetImmediateExit(true);
    control_lock.unlock();
    for (auto& r : runners_) r->Kick();
    control_lock.lock();
    control_.cv.wait(control_lock, stopped);
  }
  if (!control_.error.ok()) return control_.error;
  return Status::Ok();
}

Status Vmm::SetRate(uint64_t rate) {
  std::lock_guard<std::mutex> lock(mu_);
  if (runners_.empty()) return InvalidArgument("the VM has no vCPUs yet (incoming: send set-state first)");
  std::lock_guard<std::mutex> control_lock(control_.mu);
  if (control_.quit) return Status(Code::kCancelled, "the VM is quitting");
  config_.workload.rate = rate;  // get-state and query carry it from now on
  control_.rate = rate;
  ++control_.rate_epoch;
  // A running guest with an unlimited budget would never ask again: make each vCPU yield at its
  // next step, where the limiter takes the new rate (a parked one picks it up on resume).
  if (!control_.pause) {
    for (uint32_t id = 0; id < runners_.size(); ++id) {
      memory_->Store64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, budget)), 0);
    }
  }
  control_.cv.notify_all();  // vCPUs waiting for the old rate re-check
  return Status::Ok();
}

Status Vmm::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  if (runners_.empty()) return InvalidArgument("the VM has no vCPUs yet (incoming: send set-state first)");
  std::lock_guard<std::mutex> control_lock(control_.mu);
  if (control_.quit) return Status(Code::kCancelled, "the VM is quitting");
  control_.pause = false;
  control_.cv.notify_all();
  return Status::Ok();
}

VmmState Vmm::StateLocked() const {
  if (runners_.empty()) return VmmState::kIncoming;
  std::lock_guard<std::mutex> lock(control_.mu);
  if (control_.finished == control_.vcpus) return VmmState::kFinished;
  return control_.pause ? VmmState::kPaused : VmmState::kRunning;
}

std::vector<VcpuResult> Vmm::VcpuResultsLocked() const {
  std::vector<VcpuResult> out;
  for (uint32_t id = 0; id < runners_.size(); ++id) {
    out.push_back(VcpuResult{memory_->Load64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, step))),
                             memory_->Load64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, digest)))});
  }
  return out;
}

uint64_t Vmm::ChecksumLocked() const {
  std::vector<VcpuResult> results = VcpuResultsLocked();
  return FinalChecksum(results, MemoryDigest(*memory_, coco_->Snapshot()));
}

VmmInfo Vmm::Query() const {
  std::lock_guard<std::mutex> lock(mu_);
  VmmInfo info;
  info.state = StateLocked();
  info.incoming = config_.incoming;
  info.memory_ready = memory_ != nullptr;
  info.prepared_bytes = config_.incoming ? config_.mem_bytes : 0;
  if (memory_) info.layout = memory_->layout();
  info.slot = config_.slot;
  info.coco = config_.coco;
  info.contents = config_.contents;
  info.workload = config_.workload;
  info.seed = config_.seed;
  info.steps = config_.steps;
  info.conversions = coco_ ? coco_->conversions() : 0;
  info.agent_available = memory_ != nullptr && coco_ && coco_->mode() == CocoMode::kEmulated;
  info.agent = agent_->Info();
  std::lock_guard<std::mutex> control_lock(control_.mu);
  for (uint32_t id = 0; id < runners_.size(); ++id) {
    VcpuInfo v;
    v.id = id;
    v.step = memory_->Load64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, step)));
    v.steps_target = memory_->Load64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, steps_target)));
    v.finished = runners_[id]->finished();
    info.vcpus.push_back(v);
  }
  return info;
}

}  // namespace gmem::vmm
