#pragma once
// Page-state change requests, decoded from the exits that carry them — a pure function from a
// kvm_run record (or the guest's port-I/O mailbox) to a ConversionRequest, unit-tested with
// synthetic exits. Three ways in, one handler (vmm/emulated_coco.h) behind them:
//
//   KVM_EXIT_HYPERCALL, nr KVM_HC_MAP_GPA_RANGE (reference §1.7): what SEV-SNP page-state changes
//     and TDX MapGPA become on a real host; args[0] = gpa, args[1] = 4 KiB pages, args[2] = attrs
//     (ENC_STAT bit 4, PAGE_SZ bits 0-1). Answered in hypercall.ret (0 or -errno).
//   KVM_EXIT_MEMORY_FAULT (reference §1.6): the guest touched a page whose attribute does not match
//     its access; flags bit 3 (PRIVATE) says which it wanted. KVM_RUN returned EFAULT/EHWPOISON.
//   Port I/O (GMEM_PORT_PSC): this host's KVM never forwards VMCALL, so the VMM's guest puts the
//     same three hypercall arguments in its control page and does an OUT.

#include <linux/kvm.h>

#include <cstdint>
#include <string_view>

#include "base/expected.h"
#include "memory/attribute_map.h"

namespace gmem::vmm {

enum class ConversionOrigin : uint8_t { kHypercall = 1, kMemoryFault = 2, kPortIo = 3 };
std::string_view ConversionOriginName(ConversionOrigin origin);

struct ConversionRequest {
  uint64_t gpa = 0;         // page aligned
  uint64_t size_bytes = 0;  // > 0, a multiple of 4096
  memory::PageAttr attr = memory::PageAttr::kShared;
  ConversionOrigin origin = ConversionOrigin::kHypercall;
  bool operator==(const ConversionRequest&) const = default;
};

// Validates KVM_HC_MAP_GPA_RANGE arguments: gpa 4 KiB aligned, npages > 0, no overflow of the
// guest-physical range, only known attribute bits (ENC_STAT, one PAGE_SZ), and gpa and size
// aligned to the PAGE_SZ the guest named. kInvalidArgument otherwise.
Expected<ConversionRequest> DecodeMapGpaRange(uint64_t gpa, uint64_t npages, uint64_t attrs, ConversionOrigin origin);

// Decodes a KVM_EXIT_HYPERCALL (nr must be KVM_HC_MAP_GPA_RANGE) or KVM_EXIT_MEMORY_FAULT exit.
// A memory fault of size 0 ("unknown") converts the one page holding gpa; an unaligned range is
// widened to whole pages; flag bits other than PRIVATE and the proposed R/W/X bits 0-2 are
// rejected. Any other exit reason is kInvalidArgument.
Expected<ConversionRequest> DecodeConversionExit(const struct kvm_run& run);

// Completes an exit after the conversion: for KVM_EXIT_HYPERCALL, hypercall.ret = 0 on success or
// -errno (EINVAL for a malformed or refused request, ENOSYS when the platform has no private
// memory); memory faults need nothing (the vCPU re-enters and retries the access).
void CompleteConversionExit(struct kvm_run& run, const Status& result);

// The -errno a guest sees for `result` (0 when OK).
int64_t ConversionResultErrno(const Status& result);

}  // namespace gmem::vmm
