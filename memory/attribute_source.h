#pragma once
// AttributeSource: where a region's shared/private attributes come from, and the one way to
// change them (DESIGN.md, "Guest memory and attributes"). Two implementations sit behind it:
//   - KernelAttributeSource: the kernel tracks attributes per guest_memfd (in-place conversion,
//     KVM_SET_MEMORY_ATTRIBUTES2). Not offered by this kernel; reports kUnsupported here.
//   - EmulatedAttributeSource: the VMM's own table, fed by the guest's page-state requests
//     (emulated CoCo), which keeps the toolkit's mapping of private pages PROT_NONE.
// Page indices are relative to the region (page 0 = the region's first 4 KiB page).

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "memory/attribute_map.h"
#include "memory/page.h"

namespace gmem::memory {

class AttributeSource {
 public:
  virtual ~AttributeSource() = default;

  // Which kind of source this is, for messages ("kernel (KVM_SET_MEMORY_ATTRIBUTES2)", ...).
  virtual std::string_view name() const = 0;

  // The attributes as they are now. Valid until the next Convert().
  virtual const AttributeMap& attributes() const = 0;

  // Converts pages [first_page, first_page + count) to `attr`. Pages that already have it are left
  // alone. On failure the returned status says how far it got; attributes() always describes the
  // pages as they really are.
  virtual Status Convert(uint64_t first_page, uint64_t count, PageAttr attr) = 0;

  // The ranges whose attribute changed since the previous call (every conversion is a dirty event
  // for the tracker), ascending by time of conversion; the log is emptied.
  virtual std::vector<PageRange> TakeConversions() = 0;
};

}  // namespace gmem::memory
