#pragma once
// Capabilities: what this kernel's KVM offers the memory layer, found by asking it (capability
// values where they are stable, behaviour where they are not) — DESIGN.md's rule "detect at
// runtime, never from headers". Errors elsewhere use Require() so they can say what is missing.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/expected.h"
#include "memory/kvm_system.h"

namespace gmem::memory {

enum class Feature {
  kGuestMemfd,                // KVM_CAP_GUEST_MEMFD (234)
  kGuestMemfdMmap,            // GUEST_MEMFD_FLAG_MMAP in KVM_CAP_GUEST_MEMFD_FLAGS (244)
  kGuestMemfdInitShared,      // GUEST_MEMFD_FLAG_INIT_SHARED in cap 244
  kUserMemory2,               // KVM_CAP_USER_MEMORY2 (231)
  kVmMemoryAttributes,        // KVM_CAP_MEMORY_ATTRIBUTES (233) reports PRIVATE, per VM
  kGmemMemoryAttributes,      // KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd (probed)
  kDirtyLogOnGmemSlots,       // KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES accepted (probed)
  kDirtyRing,                 // KVM_CAP_DIRTY_LOG_RING_ACQ_REL (223) or KVM_CAP_DIRTY_LOG_RING (192)
  kManualDirtyLogProtect,     // KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (168): KVM_CLEAR_DIRTY_LOG
  kExitHypercallMapGpaRange,  // bit KVM_HC_MAP_GPA_RANGE in KVM_CAP_EXIT_HYPERCALL (201)
};

// A short human name, e.g. "per-guest_memfd memory attributes (KVM_SET_MEMORY_ATTRIBUTES2)".
std::string_view FeatureName(Feature feature);

struct Capabilities {
  std::string kernel_release;                 // uname -r
  bool pvm_host = false;                      // /sys/module/kvm_pvm exists (reference §0)
  bool user_memory2 = false;                  // 231
  bool memory_fault_info = false;             // 232
  bool guest_memfd = false;                   // 234
  uint64_t guest_memfd_flags = 0;             // 244, on a default VM
  uint64_t vm_types = 0;                      // 235: mask of 1 << type (0: cap absent, default VM only)
  uint64_t vm_memory_attributes = 0;          // 233, on a default VM
  bool gmem_memory_attributes = false;        // probe: KVM_SET_MEMORY_ATTRIBUTES2 not ENOTTY
  int gmem_attributes_probe_errno = 0;        // what that probe returned (ENOTTY when absent)
  bool dirty_log_on_gmem_slots = false;       // probe on a throwaway VM
  int gmem_dirty_log_probe_errno = 0;         // EINVAL when KVM refuses
  uint64_t dirty_ring_max_bytes = 0;          // 192
  uint64_t dirty_ring_acq_rel_max_bytes = 0;  // 223
  bool dirty_ring_with_bitmap = false;        // 225
  uint64_t manual_dirty_log_protect = 0;      // 168: KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | INITIALLY_SET
  uint64_t exit_hypercall_mask = 0;           // 201: mask of 1 << hypercall nr
  // /sys/module/kvm/parameters/{vm_memory_attributes,gmem_in_place_conversion} (in-place
  // conversion series v7 / v8), when present.
  std::optional<std::string> param_vm_memory_attributes;
  std::optional<std::string> param_gmem_in_place_conversion;

  bool Has(Feature feature) const;
  // OK, or kUnsupported "this kernel lacks <feature> (<what was seen>)".
  Status Require(Feature feature) const;
  // One line per fact, for logs and `inspect` output.
  std::string ToString() const;
};

// Reads the capabilities through `kvm`. Creates (and destroys) a throwaway VM, a two-page
// guest_memfd and a memslot for the behavioural probes. kKvm if even that fails.
Expected<Capabilities> ProbeCapabilities(const KvmSystem& kvm);

}  // namespace gmem::memory
