#include "vmm/conversion.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "memory/kvm_uapi.h"

namespace gmem::vmm {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPageSizeMask = KVM_MAP_GPA_RANGE_PAGE_SZ_2M | KVM_MAP_GPA_RANGE_PAGE_SZ_1G;
constexpr uint64_t kKnownAttrs = kPageSizeMask | KVM_MAP_GPA_RANGE_ENCRYPTED;
// Proposed read/write/exec access bits of a memory fault (not in 6.18's header) and PRIVATE.
constexpr uint64_t kKnownFaultFlags = 0x7 | KVM_MEMORY_EXIT_FLAG_PRIVATE;
// Guest-physical addresses stop at 52 bits on x86-64.
constexpr uint64_t kMaxGpa = uint64_t{1} << 52;

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Expected<ConversionRequest> DecodeMemoryFault(const struct kvm_run& run) {
  memory::uapi::MemoryFaultExit fault;
  // SAFETY: the exit union starts at kKvmRunExitUnionOffset (asserted in kvm_uapi.h) and is far
  // larger than the 24-byte memory_fault payload, which this kernel's header does not declare.
  std::memcpy(&fault, reinterpret_cast<const std::byte*>(&run) + memory::uapi::kKvmRunExitUnionOffset,
              sizeof(fault));
  if ((fault.flags & ~kKnownFaultFlags) != 0) {
    return InvalidArgument("memory fault: unknown flags " + Hex(fault.flags & ~kKnownFaultFlags));
  }
  uint64_t first = fault.gpa & ~(kPage - 1);
  uint64_t size = fault.size == 0 ? 1 : fault.size;
  if (fault.gpa >= kMaxGpa || size > kMaxGpa - fault.gpa) {
    return InvalidArgument("memory fault: range " + Hex(fault.gpa) + " +" + Hex(fault.size) + " is out of range");
  }
  uint64_t end = (fault.gpa + size + kPage - 1) & ~(kPage - 1);
  ConversionRequest req;
  req.gpa = first;
  req.size_bytes = end - first;
  req.attr = (fault.flags & KVM_MEMORY_EXIT_FLAG_PRIVATE) != 0 ? memory::PageAttr::kPrivate : memory::PageAttr::kShared;
  req.origin = ConversionOrigin::kMemoryFault;
  return req;
}

}  // namespace

std::string_view ConversionOriginName(ConversionOrigin origin) {
  switch (origin) {
    case ConversionOrigin::kHypercall: return "hypercall";
    case ConversionOrigin::kMemoryFault: return "memory-fault";
    case ConversionOrigin::kPortIo: return "port-io";
  }
  return "invalid";
}

Expected<ConversionRequest> DecodeMapGpaRange(uint64_t gpa, uint64_t npages, uint64_t attrs, ConversionOrigin origin) {
  const std::string what = "MAP_GPA_RANGE(" + Hex(gpa) + ", " + std::to_string(npages) + " pages, attrs " +
                           Hex(attrs) + ")";
  if ((attrs & ~kKnownAttrs) != 0) return InvalidArgument(what + ": unknown attribute bits");
  if ((attrs & kPageSizeMask) == kPageSizeMask) return InvalidArgument(what + ": two page sizes");
  if ((gpa & (kPage - 1)) != 0) return InvalidArgument(what + ": gpa is not 4 KiB aligned");
  if (npages == 0) return InvalidArgument(what + ": no pages");
  if (gpa >= kMaxGpa || npages > (kMaxGpa - gpa) / kPage) return InvalidArgument(what + ": range overflows");
  uint64_t size = npages * kPage;
  uint64_t align = (attrs & KVM_MAP_GPA_RANGE_PAGE_SZ_1G) != 0   ? uint64_t{1} << 30
                   : (attrs & KVM_MAP_GPA_RANGE_PAGE_SZ_2M) != 0 ? uint64_t{2} << 20
                                                                 : kPage;
  if ((gpa & (align - 1)) != 0 || (size & (align - 1)) != 0) {
    return InvalidArgument(what + ": not aligned to the named page size");
  }
  ConversionRequest req;
  req.gpa = gpa;
  req.size_bytes = size;
  req.attr = (attrs & KVM_MAP_GPA_RANGE_ENCRYPTED) != 0 ? memory::PageAttr::kPrivate : memory::PageAttr::kShared;
  req.origin = origin;
  return req;
}

Expected<ConversionRequest> DecodeConversionExit(const struct kvm_run& run) {
  switch (run.exit_reason) {
    case KVM_EXIT_HYPERCALL:
      if (run.hypercall.nr != KVM_HC_MAP_GPA_RANGE) {
        return InvalidArgument("hypercall " + std::to_string(run.hypercall.nr) + " is not KVM_HC_MAP_GPA_RANGE");
      }
      return DecodeMapGpaRange(run.hypercall.args[0], run.hypercall.args[1], run.hypercall.args[2],
                               ConversionOrigin::kHypercall);
    case KVM_EXIT_MEMORY_FAULT:
      return DecodeMemoryFault(run);
    default:
      return InvalidArgument("exit reason " + std::to_string(run.exit_reason) + " carries no conversion request");
  }
}

int64_t ConversionResultErrno(const Status& result) {
  if (result.ok()) return 0;
  if (result.code() == Code::kUnsupported) return -ENOSYS;
  if (result.sys_errno() != 0) return -result.sys_errno();
  return -EINVAL;
}

void CompleteConversionExit(struct kvm_run& run, const Status& result) {
  if (run.exit_reason == KVM_EXIT_HYPERCALL) run.hypercall.ret = static_cast<uint64_t>(ConversionResultErrno(result));
}

}  // namespace gmem::vmm
