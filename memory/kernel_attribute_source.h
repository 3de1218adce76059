#pragma once
// KernelAttributeSource: attributes tracked by the kernel per guest_memfd, changed with
// KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd fd (in-place conversion series, reference §2.2).
// Written against the proposed uAPI; on kernels without it (this one) Create() says kUnsupported,
// and callers fall back to EmulatedAttributeSource.
//
// The proposed uAPI has no "get attributes" call, so this source mirrors what it set, starting
// from the kernel's default (all shared with GUEST_MEMFD_FLAG_INIT_SHARED, else all private,
// reference §2.3). The kernel itself makes private pages inaccessible to every host mapping.
// Not thread-safe.

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/expected.h"
#include "memory/attribute_source.h"
#include "memory/guest_memfd.h"

namespace gmem::memory {

class KernelAttributeSource final : public AttributeSource {
 public:
  // A region of `npages` pages at byte `gmem_offset` of `gmem` (a duplicate fd is kept). Probes
  // the ioctl first: kUnsupported when the kernel answers ENOTTY.
  static Expected<KernelAttributeSource> Create(const GuestMemfd& gmem, uint64_t gmem_offset, uint64_t npages);

  std::string_view name() const override { return "kernel (KVM_SET_MEMORY_ATTRIBUTES2)"; }
  const AttributeMap& attributes() const override { return map_; }
  // One ioctl per changing run. EAGAIN (a page has extra references, e.g. a pin) is kKvm with
  // the failing page in the message; the runs before it stay converted.
  Status Convert(uint64_t first_page, uint64_t count, PageAttr attr) override;
  std::vector<PageRange> TakeConversions() override;

 private:
  KernelAttributeSource(GuestMemfd gmem, uint64_t gmem_offset, AttributeMap map)
      : gmem_(std::move(gmem)), gmem_offset_(gmem_offset), map_(std::move(map)) {}
  Status SetRun(const PageRange& run, PageAttr attr);

  GuestMemfd gmem_;
  uint64_t gmem_offset_ = 0;
  AttributeMap map_;
  std::vector<PageRange> log_;
};

}  // namespace gmem::memory
