#pragma once
// KvmDirtyRingSource: the dirty ring's view of one memslot, as a DirtySource (DESIGN.md, dirty
// source 1). Collect harvests the rings and takes the slot's pages. The slot must have
// KVM_MEM_LOG_DIRTY_PAGES (so it is a classic slot on the guest_memfd mapping, as for the bitmap).

#include <cstdint>
#include <memory>

#include "memory/dirty_source.h"
#include "memory/kvm_dirty_ring.h"

namespace gmem::memory {

class KvmDirtyRingSource final : public DirtySource {
 public:
  // Memslot `slot` (`slot_npages` pages) holds region pages [first_page, first_page +
  // slot_npages). Registers the slot with `ring`, which may be shared by the sources of several
  // regions.
  KvmDirtyRingSource(std::shared_ptr<KvmDirtyRing> ring, uint32_t slot, uint64_t slot_npages, uint64_t first_page);

  DirtySourceKind kind() const override { return DirtySourceKind::kKvmDirtyRing; }
  Coverage coverage() const override;
  Status Collect(const CollectContext& context, PageBitmap& changed) override;

 private:
  std::shared_ptr<KvmDirtyRing> ring_;
  uint32_t slot_;
  uint64_t slot_npages_;
  uint64_t first_page_;
};

}  // namespace gmem::memory
