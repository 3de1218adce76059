#pragma once
// EmulatedCoco: the VMM's side of page-state changes on this host, where KVM has no private
// memory (reference §1.4: KVM_SET_MEMORY_ATTRIBUTES is ENOTTY). It keeps one
// memory::EmulatedAttributeSource per region — the attribute table served to the toolkit
// (`get-attributes`) — and applies the platform's conversion-contents policy.
//
// "Private" is emulated: the table says private and toolkits must keep their own mappings of such
// pages PROT_NONE, but the guest reads through the VMM's mapping (the memslots' userspace_addr),
// which is never protected. What a conversion does to the contents is a platform property
// (`--convert-contents`): preserve, zero (punched out of the guest_memfd) or scramble
// (overwritten with a pattern).
//
// Thread-safe: vCPU threads convert, the control thread reads and restores.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/expected.h"
#include "memory/attribute_map.h"
#include "memory/emulated_attribute_source.h"
#include "vmm/conversion.h"
#include "vmm/guest_memory.h"
#include "vmm/vmm_config.h"

namespace gmem::vmm {

// The attribute table of one region, by region id (get-attributes / set-attributes).
struct RegionAttributes {
  uint32_t region_id = 0;
  memory::AttributeMap map;
};

class EmulatedCoco {
 public:
  // All pages of every region of `memory` start shared. REQUIRES: `memory` outlives this object.
  static Expected<std::unique_ptr<EmulatedCoco>> Create(const GuestMemory& memory, CocoMode mode,
                                                        memory::ConversionContent contents, uint64_t scramble_seed);

  CocoMode mode() const { return mode_; }
  memory::ConversionContent contents() const { return contents_; }

  // Converts the request's range, which may span regions. kUnsupported under CocoMode::kNone
  // (every page stays shared); kInvalidArgument if the range leaves guest RAM (nothing changed).
  Status Apply(const ConversionRequest& request);

  // The attributes of every region, in layout order.
  std::vector<memory::AttributeMap> Snapshot() const;

  // Makes region `index`'s table equal `map` without touching any contents: the restore of a
  // migrated or snapshotted VM, not a conversion. kInvalidArgument for a bad index or size,
  // kUnsupported for private pages under CocoMode::kNone.
  Status Restore(size_t index, const memory::AttributeMap& map);

  // The attribute of the page at guest-physical `gpa`; nullopt outside guest RAM.
  std::optional<memory::PageAttr> AttributeAt(uint64_t gpa) const;

  // Makes guest-physical [gpa, gpa + npages pages) private without touching its contents: the
  // guest agent accepting pages it is about to fill (an import), not a conversion, so no contents
  // policy applies. kUnsupported under CocoMode::kNone, kInvalidArgument outside guest RAM.
  Status AcceptPrivate(uint64_t gpa, uint64_t npages);

  // Boot-time private memory (`--private`): makes the guest pages (gfns) of `runs` private through
  // the table update a conversion to private makes, but keeps their contents (no contents policy:
  // the seeded or --init-from contents are the guest's private data) and counts no conversion
  // (conversions() stays 0; the VM starts this way, as an SNP guest's launch memory does). Leaves
  // the conversion log empty: the private pages are part of the initial state, not changes to it.
  // Runs may span regions. REQUIRES: before any vCPU runs. kUnsupported under CocoMode::kNone;
  // kInvalidArgument for a run that leaves guest RAM (the table may then be partly changed: the VM
  // must not start).
  Status MakePrivateAtBoot(std::span<const memory::PageRange> runs);

  // Conversions applied since the previous call (ranges per region), for dirty tracking.
  std::vector<std::vector<memory::PageRange>> TakeConversions();
  uint64_t conversions() const;

 private:
  EmulatedCoco(const GuestMemory& memory, CocoMode mode, memory::ConversionContent contents, uint64_t seed,
               std::vector<memory::EmulatedAttributeSource> sources)
      : memory_(memory), mode_(mode), contents_(contents), seed_(seed), sources_(std::move(sources)) {}
  // Applies the contents policy to pages [first, first + count) of region `index`.
  Status ApplyContents(size_t index, uint64_t first, uint64_t count);
  // Converts pages [first, first + count) of region `index` to `attr`; the pages whose attribute
  // changes get the contents policy first when `apply_contents`. REQUIRES: mu_ held.
  Status ConvertInRegion(size_t index, uint64_t first, uint64_t count, memory::PageAttr attr, bool apply_contents);
  // ConvertInRegion for the part of guest-physical [gpa, end) in each region. REQUIRES: mu_ held.
  Status ConvertGpaRange(uint64_t gpa, uint64_t end, memory::PageAttr attr, bool apply_contents);

  const GuestMemory& memory_;
  const CocoMode mode_;
  const memory::ConversionContent contents_;
  const uint64_t seed_;
  mutable std::mutex mu_;
  std::vector<memory::EmulatedAttributeSource> sources_;  // guarded by mu_
  uint64_t conversions_ = 0;                              // guarded by mu_
};

}  // namespace gmem::vmm
