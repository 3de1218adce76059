// Vmm, part two: the operations that move a VM's memory, attributes and state in and out
// (get-memfds, get/set-attributes, dirty-log, get/set-state, digest, prepare-incoming) and the
// emulated guest agent's doorbell (agent-doorbell), which moves private pages.

#include <fcntl.h>

#include <cstddef>
#include <cstdio>
#include <string>

#include "memory/kvm_uapi.h"
#include "vmm/guest/guest_abi.h"
#include "vmm/vm_state.h"
#include "vmm/vmm.h"
#include "vmm/x86_boot.h"

namespace gmem::vmm {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// "64 MiB", or "12288 bytes" when not whole MiB.
std::string Size(uint64_t bytes) {
  return bytes % kMiB == 0 ? std::to_string(bytes / kMiB) + " MiB" : std::to_string(bytes) + " bytes";
}

// "(2 regions, 1024 MiB)".
std::string Summary(const memory::Layout& layout) {
  size_t n = layout.regions().size();
  return "(" + std::to_string(n) + (n == 1 ? " region, " : " regions, ") + Size(layout.TotalBytes()) + ")";
}

// What differs in the first region that differs ("region 1: gpa 0x1000000 (this VM's 0x2000000),
// ..."), or "" if none does.
std::string FirstRegionDifference(const memory::Layout& stream, const memory::Layout& mine) {
  for (size_t i = 0; i < stream.regions().size() && i < mine.regions().size(); ++i) {
    const memory::Region& a = stream.regions()[i];
    const memory::Region& b = mine.regions()[i];
    if (a == b) continue;
    std::string out = "region " + std::to_string(i) + ":";
    auto field = [&](const char* name, const std::string& got, const std::string& want) {
      if (got == want) return;
      out += std::string(out.back() == ':' ? " " : ", ") + name + " " + got + " (this VM's " + want + ")";
    };
    field("id", std::to_string(a.id), std::to_string(b.id));
    field("gpa", Hex(a.gpa_base), Hex(b.gpa_base));
    field("size", Size(a.size_bytes), Size(b.size_bytes));
    field("gmem_offset", Hex(a.gmem_offset), Hex(b.gmem_offset));
    field("page size", std::to_string(a.page_size), std::to_string(b.page_size));
    field("flags", Hex(a.gmem_flags), Hex(b.gmem_flags));
    return out;
  }
  return "";
}

// The one-line refusal of a layout that is not the one a VM started with --mem prepared:
// "the stream's layout (2 regions, 1024 MiB) does not match this VM's --mem 2G --regions 1
// (1 region, 2048 MiB)", plus the first differing region when the summaries agree.
std::string LayoutMismatch(const memory::Layout& stream, const memory::Layout& mine, uint64_t mem_bytes,
                           uint32_t regions) {
  std::string mem =
      mem_bytes % kGiB == 0 ? std::to_string(mem_bytes / kGiB) + "G" : std::to_string(mem_bytes / kMiB) + "M";
  std::string out = "the stream's layout " + Summary(stream) + " does not match this VM's --mem " + mem +
                    " --regions " + std::to_string(regions) + " " + Summary(mine);
  if (stream.regions().size() == mine.regions().size() && stream.TotalBytes() == mine.TotalBytes()) {
    std::string detail = FirstRegionDifference(stream, mine);
    if (!detail.empty()) out += ": " + detail;
  }
  return out;
}

}  // namespace

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
  const bool was_prepared = prepared_ != nullptr;
  std::unique_ptr<GuestMemory> ram;
  if (was_prepared) {
    // Started with --mem: the memory exists (and is populated); only its own layout fits it.
    if (!(layout == prepared_->layout())) {
      return InvalidArgument(LayoutMismatch(layout, prepared_->layout(), config_.mem_bytes, config_.regions))
          .WithContext("prepare-incoming");
    }
    ram = std::move(prepared_);
  } else {
    auto created = GuestMemory::Create(vm_, layout);
    if (!created.ok()) return created.status().WithContext("prepare-incoming");
    ram = std::make_unique<GuestMemory>(std::move(created).value());
  }
  Status s = SetUpMemory(std::move(ram), mode);
  if (!s.ok()) {
    // A failed prepare leaves the VM as it was: no memslots, no regions (or, with --mem, its
    // prepared regions, untouched: nothing ran on them).
    for (size_t i = 0; i < layout.regions().size(); ++i) vm_.DeleteMemslot(static_cast<uint32_t>(i)).IgnoreError();
    if (was_prepared) prepared_ = std::move(memory_);
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
