#include "memory/capabilities.h"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/unique_fd.h"
#include "memory/guest_memfd.h"
#include "memory/kvm_uapi.h"
#include "memory/layout.h"
#include "memory/page.h"
#include "memory/vm.h"

namespace gmem::memory {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string ErrnoName(int err) { return err == 0 ? "accepted" : std::strerror(err); }

std::optional<std::string> ReadParam(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string value;
  std::getline(in, value);
  return value;
}

// Behavioural probe for the proposed per-guest_memfd attributes ioctl (reference §2.2): a
// zero-size request is EINVAL where the ioctl exists and ENOTTY where it does not.
int ProbeGmemAttributes(const GuestMemfd& gmem) {
  // SAFETY: request struct for KVM_SET_MEMORY_ATTRIBUTES2; size 0 so nothing can change.
  uapi::MemoryAttributes2 req = {};
  req.offset = 0;
  req.size = 0;
  req.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE;
  if (::ioctl(gmem.fd(), KVM_SET_MEMORY_ATTRIBUTES2, &req) == 0) return 0;
  return errno;
}

// Asks KVM for a dirty-logged guest_memfd slot. Returns 0 if accepted, else the errno (EINVAL on
// 6.18: "Dirty logging private memory is not currently supported", reference §4.2).
int ProbeGmemDirtyLog(Vm& vm, const GuestMemfd& gmem) {
  // The slot needs a userspace_addr; an anonymous reservation is enough since nothing runs.
  void* addr = ::mmap(nullptr, gmem.size_bytes(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr == MAP_FAILED) return errno;
  Mapping reservation(addr, gmem.size_bytes());
  MemslotSpec spec;
  spec.slot = 0;
  spec.flags = static_cast<uint32_t>(KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES);
  spec.gpa = 0;
  spec.size_bytes = gmem.size_bytes();
  spec.userspace_addr = addr;
  spec.gmem_fd = gmem.fd();
  Status s = vm.SetMemslot(spec);
  if (s.ok()) {
    vm.DeleteMemslot(0).IgnoreError();  // the VM is destroyed right after anyway
    return 0;
  }
  return s.sys_errno() != 0 ? s.sys_errno() : EINVAL;
}

}  // namespace

std::string_view FeatureName(Feature feature) {
  switch (feature) {
    case Feature::kGuestMemfd: return "guest_memfd (KVM_CAP_GUEST_MEMFD)";
    case Feature::kGuestMemfdMmap: return "mmap-able guest_memfd (GUEST_MEMFD_FLAG_MMAP)";
    case Feature::kGuestMemfdInitShared: return "shared-at-creation guest_memfd (GUEST_MEMFD_FLAG_INIT_SHARED)";
    case Feature::kUserMemory2: return "KVM_SET_USER_MEMORY_REGION2 (KVM_CAP_USER_MEMORY2)";
    case Feature::kVmMemoryAttributes: return "per-VM memory attributes (KVM_CAP_MEMORY_ATTRIBUTES)";
    case Feature::kGmemMemoryAttributes:
      return "per-guest_memfd memory attributes (KVM_SET_MEMORY_ATTRIBUTES2, in-place conversion)";
    case Feature::kDirtyLogOnGmemSlots: return "dirty logging on guest_memfd memslots";
    case Feature::kDirtyRing: return "dirty ring (KVM_CAP_DIRTY_LOG_RING[_ACQ_REL])";
    case Feature::kManualDirtyLogProtect: return "KVM_CLEAR_DIRTY_LOG (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)";
    case Feature::kExitHypercallMapGpaRange: return "KVM_HC_MAP_GPA_RANGE exits (KVM_CAP_EXIT_HYPERCALL)";
  }
  return "unknown feature";
}

bool Capabilities::Has(Feature feature) const {
  switch (feature) {
    case Feature::kGuestMemfd: return guest_memfd;
    case Feature::kGuestMemfdMmap: return guest_memfd && (guest_memfd_flags & GUEST_MEMFD_FLAG_MMAP) != 0;
    case Feature::kGuestMemfdInitShared: return guest_memfd && (guest_memfd_flags & GUEST_MEMFD_FLAG_INIT_SHARED) != 0;
    case Feature::kUserMemory2: return user_memory2;
    case Feature::kVmMemoryAttributes: return (vm_memory_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0;
    case Feature::kGmemMemoryAttributes: return gmem_memory_attributes;
    case Feature::kDirtyLogOnGmemSlots: return dirty_log_on_gmem_slots;
    case Feature::kDirtyRing: return dirty_ring_acq_rel_max_bytes > 0 || dirty_ring_max_bytes > 0;
    case Feature::kManualDirtyLogProtect: return (manual_dirty_log_protect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) != 0;
    case Feature::kExitHypercallMapGpaRange: return (exit_hypercall_mask & (1ULL << KVM_HC_MAP_GPA_RANGE)) != 0;
  }
  return false;
}

Status Capabilities::Require(Feature feature) const {
  if (Has(feature)) return Status::Ok();
  std::string seen;
  switch (feature) {
    case Feature::kGuestMemfdMmap:
    case Feature::kGuestMemfdInitShared: seen = "KVM_CAP_GUEST_MEMFD_FLAGS = " + Hex(guest_memfd_flags); break;
    case Feature::kVmMemoryAttributes: seen = "KVM_CAP_MEMORY_ATTRIBUTES = " + Hex(vm_memory_attributes); break;
    case Feature::kGmemMemoryAttributes:
      seen = "KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd: " + ErrnoName(gmem_attributes_probe_errno);
      break;
    case Feature::kDirtyLogOnGmemSlots:
      seen = "KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES: " + ErrnoName(gmem_dirty_log_probe_errno);
      break;
    case Feature::kExitHypercallMapGpaRange: seen = "KVM_CAP_EXIT_HYPERCALL = " + Hex(exit_hypercall_mask); break;
    default: seen = "capability reports 0"; break;
  }
  return Unsupported("this kernel (" + kernel_release + (pvm_host ? ", kvm_pvm" : "") + ") lacks " +
                     std::string(FeatureName(feature)) + ": " + seen);
}

std::string Capabilities::ToString() const {
  std::string out;
  auto line = [&](const std::string& key, const std::string& value) { out += key + ": " + value + "\n"; };
  line("kernel", kernel_release + (pvm_host ? " (kvm_pvm host)" : ""));
  line("KVM_SET_USER_MEMORY_REGION2", user_memory2 ? "yes" : "no");
  line("KVM_CAP_MEMORY_FAULT_INFO", memory_fault_info ? "yes" : "no");
  line("guest_memfd", guest_memfd ? "yes" : "no");
  line("guest_memfd flags (cap 244)", Hex(guest_memfd_flags));
  line("VM types (cap 235)", vm_types == 0 ? "default only" : Hex(vm_types));
  line("per-VM memory attributes (cap 233)", Hex(vm_memory_attributes));
  line("per-guest_memfd memory attributes",
       std::string(gmem_memory_attributes ? "yes" : "no") +
           " (KVM_SET_MEMORY_ATTRIBUTES2 probe: " + ErrnoName(gmem_attributes_probe_errno) + ")");
  line("dirty log on guest_memfd slots",
       std::string(dirty_log_on_gmem_slots ? "yes" : "no") + " (probe: " + ErrnoName(gmem_dirty_log_probe_errno) + ")");
  line("dirty ring max bytes (cap 192 / 223)",
       std::to_string(dirty_ring_max_bytes) + " / " + std::to_string(dirty_ring_acq_rel_max_bytes));
  line("dirty ring with bitmap (cap 225)", dirty_ring_with_bitmap ? "yes" : "no");
  line("manual dirty log protect (cap 168)", Hex(manual_dirty_log_protect));
  line("exit hypercall mask (cap 201)", Hex(exit_hypercall_mask));
  if (param_vm_memory_attributes) line("kvm.vm_memory_attributes", *param_vm_memory_attributes);
  if (param_gmem_in_place_conversion) line("kvm.gmem_in_place_conversion", *param_gmem_in_place_conversion);
  return out;
}

Expected<Capabilities> ProbeCapabilities(const KvmSystem& kvm) {
  Capabilities caps;
  struct utsname uts = {};
  if (::uname(&uts) == 0) caps.kernel_release = uts.release;
  caps.pvm_host = ::access("/sys/module/kvm_pvm", F_OK) == 0;
  caps.param_vm_memory_attributes = ReadParam("/sys/module/kvm/parameters/vm_memory_attributes");
  caps.param_gmem_in_place_conversion = ReadParam("/sys/module/kvm/parameters/gmem_in_place_conversion");

  auto sys_cap = [&](long cap) -> Expected<uint64_t> {
    GMEM_ASSIGN_OR_RETURN(int64_t v, kvm.CheckExtension(cap));
    return static_cast<uint64_t>(v);
  };
  GMEM_ASSIGN_OR_RETURN(uint64_t user_memory2, sys_cap(KVM_CAP_USER_MEMORY2));
  GMEM_ASSIGN_OR_RETURN(uint64_t fault_info, sys_cap(KVM_CAP_MEMORY_FAULT_INFO));
  GMEM_ASSIGN_OR_RETURN(uint64_t guest_memfd, sys_cap(KVM_CAP_GUEST_MEMFD));
  GMEM_ASSIGN_OR_RETURN(caps.vm_types, sys_cap(KVM_CAP_VM_TYPES));
  GMEM_ASSIGN_OR_RETURN(caps.dirty_ring_max_bytes, sys_cap(KVM_CAP_DIRTY_LOG_RING));
  GMEM_ASSIGN_OR_RETURN(caps.dirty_ring_acq_rel_max_bytes, sys_cap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL));
  GMEM_ASSIGN_OR_RETURN(uint64_t with_bitmap, sys_cap(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP));
  GMEM_ASSIGN_OR_RETURN(caps.manual_dirty_log_protect, sys_cap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
  GMEM_ASSIGN_OR_RETURN(caps.exit_hypercall_mask, sys_cap(KVM_CAP_EXIT_HYPERCALL));
  caps.user_memory2 = user_memory2 != 0;
  caps.memory_fault_info = fault_info != 0;
  caps.guest_memfd = guest_memfd != 0;
  caps.dirty_ring_with_bitmap = with_bitmap != 0;

  // VM-scoped answers come from a default VM, the type the toolkit creates.
  GMEM_ASSIGN_OR_RETURN(Vm vm, Vm::Create(kvm));
  GMEM_ASSIGN_OR_RETURN(int64_t gmem_flags, vm.CheckExtension(KVM_CAP_GUEST_MEMFD_FLAGS));
  GMEM_ASSIGN_OR_RETURN(int64_t vm_attrs, vm.CheckExtension(KVM_CAP_MEMORY_ATTRIBUTES));
  caps.guest_memfd_flags = static_cast<uint64_t>(gmem_flags);
  caps.vm_memory_attributes = static_cast<uint64_t>(vm_attrs);

  if (caps.guest_memfd) {
    GMEM_ASSIGN_OR_RETURN(GuestMemfd gmem,
                          GuestMemfd::Create(vm, 2 * kPageSize, caps.guest_memfd_flags & KnownGmemFlags()));
    caps.gmem_attributes_probe_errno = ProbeGmemAttributes(gmem);
    caps.gmem_memory_attributes = caps.gmem_attributes_probe_errno != ENOTTY;
    caps.gmem_dirty_log_probe_errno = ProbeGmemDirtyLog(vm, gmem);
    caps.dirty_log_on_gmem_slots = caps.gmem_dirty_log_probe_errno == 0;
  } else {
    caps.gmem_attributes_probe_errno = ENOTTY;
    caps.gmem_dirty_log_probe_errno = ENOTTY;
  }
  return caps;
}

}  // namespace gmem::memory
