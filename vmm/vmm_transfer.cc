// Vmm, part two: the operations that move a VM's memory, attributes and state in and out
// (get-memfds, get/set-attributes, dirty-log, get/set-state, digest, prepare-incoming) and the
// emulated guest agent's doorbell (agent-doorbell), which moves private pages.

#include <fcntl.h>

#include <cstddef>
#include <string>

#include "memory/kvm_uapi.h"
#include "vmm/guest/guest_abi.h"
#include "vmm/vm_state.h"
#include "vmm/vmm.h"
#include "vmm/x86_boot.h"

namespace gmem::vmm {

Expected<MemfdSet> Vmm::MemfdsLocked() const {
  if (!memory_) return InvalidArgument("no guest memory yet (incoming: send prepare-incoming first)");
  MemfdSet set;
  set.layout = memory_->layout();
  for (size_t i = 0; i < memory_->region_count(); ++i) {
    int fd = ::fcntl(memory_->gmem(i).fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return ErrnoStatus(Code::kIo, "dup guest_memfd of region " + std::to_string(i));
    set.fds.emplace_back(fd);
  }
  return set;
}

Expected<MemfdSet> Vmm::GetMemfds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return MemfdsLocked();
}

Expected<std::vector<RegionAttributes>> Vmm::GetAttributes() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!memory_) return InvalidArgument("no guest memory yet (incoming: send prepare-incoming first)");
  std::vector<memory::AttributeMap> maps = coco_->Snapshot();
  std::vector<RegionAttributes> out;
  for (size_t i = 0; i < maps.size(); ++i) {
    out.push_back(RegionAttributes{memory_->layout().regions()[i].id, std::move(maps[i])});
  }
  return out;
}

Status Vmm::SetAttributes(const std::vector<RegionAttributes>& attrs) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!memory_) return InvalidArgument("no guest memory yet (incoming: send prepare-incoming first)");
  if (!runners_.empty()) GMEM_RETURN_IF_ERROR(RequirePausedLocked());
  const auto& regions = memory_->layout().regions();
  for (const RegionAttributes& ra : attrs) {
    size_t index = 0;
    while (index < regions.size() && regions[index].id != ra.region_id) ++index;
    if (index == regions.size()) return InvalidArgument("attributes for unknown region " + std::to_string(ra.region_id));
    GMEM_RETURN_IF_ERROR(coco_->Restore(index, ra.map));
  }
  return Status::Ok();
}

Expected<std::vector<SlotDirtyLog>> Vmm::FetchDirtyLog() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!memory_) return InvalidArgument("no guest memory yet");
  if (config_.slot != SlotMode::kHva) {
    return Unsupported("KVM keeps no dirty log for guest_memfd memslots (--slot gmem): use content hashing");
  }
  std::vector<SlotDirtyLog> out;
  for (size_t i = 0; i < dirty_logs_.size(); ++i) {
    GMEM_ASSIGN_OR_RETURN(memory::PageBitmap bits, dirty_logs_[i]->FetchAndClear());
    const memory::Region& r = memory_->layout().regions()[i];
    out.push_back(SlotDirtyLog{static_cast<uint32_t>(i), r.id, r.gpa_base, std::move(bits)});
  }
  return out;
}

Expected<Bytes> Vmm::GetState() const {
  std::lock_guard<std::mutex> lock(mu_);
  GMEM_RETURN_IF_ERROR(RequirePausedLocked());
  VmState st;
  st.workload = config_.workload;
  st.seed = config_.seed;
  st.steps = config_.steps;
  st.coco = config_.coco;
  st.contents = config_.contents;
  st.layout = memory_->layout();
  std::lock_guard<std::mutex> control_lock(control_.mu);
  for (const auto& r : runners_) {
    VcpuState v;
    GMEM_ASSIGN_OR_RETURN(v.regs, r->vcpu().GetRegs());
    GMEM_ASSIGN_OR_RETURN(v.sregs, r->vcpu().GetSregs());
    v.finished = r->finished();
    st.vcpus.push_back(v);
  }
  return EncodeVmState(st);
}

Status Vmm::SetState(ByteSpan blob) {
  std::lock_guard<std::mutex> lock(mu_);
  GMEM_ASSIGN_OR_RETURN(VmState st, DecodeVmState(blob));
  if (!memory_) return InvalidArgument("no guest memory yet (incoming: send prepare-incoming first)");
  if (!(st.layout == memory_->layout())) return InvalidArgument("the state was saved on a different memory layout");
  if (!runners_.empty()) {
    GMEM_RETURN_IF_ERROR(RequirePausedLocked());
    if (st.vcpus.size() != runners_.size() || !(st.workload == config_.workload) || st.seed != config_.seed ||
        st.steps != config_.steps || st.coco != config_.coco || st.contents != config_.contents) {
      return InvalidArgument("the state belongs to a VM with another configuration");
    }
    std::lock_guard<std::mutex> control_lock(control_.mu);
    for (size_t i = 0; i < runners_.size(); ++i) {
      if (st.vcpus[i].finished != runners_[i]->finished()) {
        return InvalidArgument("the state's finished vCPUs differ from this VM's");
      }
      GMEM_RETURN_IF_ERROR(runners_[i]->vcpu().SetSregs(st.vcpus[i].sregs));
      GMEM_RETURN_IF_ERROR(runners_[i]->vcpu().SetRegs(st.vcpus[i].regs));
    }
    return Status::Ok();
  }
  config_.workload = st.workload;
  config_.seed = st.seed;
  config_.steps = st.steps;
  config_.coco = st.coco;
  config_.contents = st.contents;
  if (st.coco == CocoMode::kEmulated) {
    GMEM_RETURN_IF_ERROR(vm_.EnableCap(KVM_CAP_EXIT_HYPERCALL, uint64_t{1} << KVM_HC_MAP_GPA_RANGE));
  }
  // The attribute table may have arrived before the state: carry it into the VM's real CoCo mode.
  std::vector<memory::AttributeMap> attrs = coco_->Snapshot();
  GMEM_ASSIGN_OR_RETURN(std::unique_ptr<EmulatedCoco> coco,
                        EmulatedCoco::Create(*memory_, st.coco, st.contents, st.seed));
  for (size_t i = 0; i < attrs.size(); ++i) GMEM_RETURN_IF_ERROR(coco->Restore(i, attrs[i]));
  coco_ = std::move(coco);
  return CreateVcpus(&st.vcpus);
}

Expected<std::pair<uint64_t, uint64_t>> Vmm::Digest() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!memory_) return InvalidArgument("no guest memory yet (incoming: send prepare-incoming first)");
  uint64_t memory_digest = MemoryDigest(*memory_, coco_->Snapshot());
  std::vector<VcpuResult> results = VcpuResultsLocked();
  return std::make_pair(memory_digest, FinalChecksum(results, memory_digest));
}

Expected<MemfdSet> Vmm::PrepareIncoming(const memory::Layout& layout, std::optional<SlotMode> slot) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!config_.incoming) return InvalidArgument("prepare-incoming: this VM was not started with --incoming");
  if (memory_) return InvalidArgument("prepare-incoming: the regions already exist");
  SlotMode mode = config_.slot_given ? config_.slot : slot.value_or(SlotMode::kGmem);
  Status s = SetUpMemory(layout, mode);
  if (!s.ok()) {
    // A failed prepare leaves the VM as it was: no memslots, no regions.
    for (size_t i = 0; i < layout.regions().size(); ++i) vm_.DeleteMemslot(static_cast<uint32_t>(i)).IgnoreError();
    memory_.reset();
    dirty_logs_.clear();
    coco_.reset();
    return s.WithContext("prepare-incoming");
  }
  return MemfdsLocked();
}

Status Vmm::AgentDoorbell() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!memory_) return InvalidArgument("no guest memory yet (incoming: send prepare-incoming first)");
  return agent_->Ring(*memory_, *coco_);
}

Expected<std::vector<std::vector<uint64_t>>> Vmm::TakeGuestWriteLog() {
  std::lock_guard<std::mutex> lock(mu_);
  GMEM_RETURN_IF_ERROR(RequirePausedLocked());
  std::vector<std::vector<uint64_t>> out;
  for (uint32_t id = 0; id < runners_.size(); ++id) {
    if (memory_->Load64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, log_overflow))) != 0) {
      return Status(Code::kInvalidArgument, "vCPU " + std::to_string(id) + "'s write log overflowed");
    }
    uint64_t head = memory_->Load64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, log_head)));
    uint64_t log_gpa = memory_->Load64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, log_gpa)));
    uint64_t capacity = memory_->Load64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, log_capacity)));
    if (head > capacity || log_gpa % 8 != 0 || memory_->HostAddress(log_gpa, head * 8) == nullptr) {
      return CorruptError("vCPU " + std::to_string(id) + "'s write log lies outside guest memory");
    }
    std::vector<uint64_t> gfns;
    for (uint64_t i = 0; i < head; ++i) gfns.push_back(memory_->Load64(log_gpa + 8 * i));
    memory_->Store64(VcpuFieldGpa(id, offsetof(gmem_guest_vcpu, log_head)), 0);
    out.push_back(std::move(gfns));
  }
  return out;
}

}  // namespace gmem::vmm
