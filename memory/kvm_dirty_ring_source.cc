#include "memory/kvm_dirty_ring_source.h"

namespace gmem::memory {

KvmDirtyRingSource::KvmDirtyRingSource(std::shared_ptr<KvmDirtyRing> ring, uint32_t slot, uint64_t slot_npages,
                                       uint64_t first_page)
    : ring_(std::move(ring)), slot_(slot), slot_npages_(slot_npages), first_page_(first_page) {
  ring_->WatchSlot(slot_, slot_npages_);
}

Coverage KvmDirtyRingSource::coverage() const {
  Coverage c;
  c.pages = PageRange{first_page_, slot_npages_};
  c.sees_shared = true;
  c.sees_private = false;
  c.complete = true;  // for guest writes; the VMM reports its own
  return c;
}

Status KvmDirtyRingSource::Collect(const CollectContext& context, PageBitmap& changed) {
  (void)context;
  Status harvested = ring_->Harvest().status();
  // Even when the harvest fails (overflow), what was accumulated — after an overflow, every
  // page — is handed over, so the tracker loses nothing; the failure is still reported.
  GMEM_RETURN_IF_ERROR(ring_->TakeSlot(slot_, first_page_, changed));
  return harvested;
}

}  // namespace gmem::memory
