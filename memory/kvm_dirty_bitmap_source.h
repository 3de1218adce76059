#pragma once
// KvmDirtyBitmapSource: KVM's dirty bitmap for one memslot (DESIGN.md, dirty source 1; reference
// §4.1). The slot must have KVM_MEM_LOG_DIRTY_PAGES, which KVM allows only on classic memslots —
// for guest_memfd memory, a classic slot whose userspace_addr is the guest_memfd mapping (the
// "hva" slot mode); guest_memfd slots refuse it (EINVAL, reference §4.2).
//
// With manual protect (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled on the VM), Collect fetches the
// bitmap with KVM_GET_DIRTY_LOG and then re-protects exactly the fetched pages with
// KVM_CLEAR_DIRTY_LOG; without it, KVM_GET_DIRTY_LOG clears as it reads. Either way a write after
// Collect shows up in the next Collect, so pages must be read after Collect (as the tracker's
// BeginPass-then-send order does).
//
// KVM logs guest writes only: the VMM's own writes through its mapping are not in the bitmap and
// must be reported separately (GuestReportedSource or DirtyTracker::NoteHostChange).

#include <cstdint>
#include <memory>
#include <vector>

#include "base/expected.h"
#include "memory/dirty_source.h"
#include "memory/vm.h"

namespace gmem::memory {

class KvmDirtyBitmapSource final : public DirtySource {
 public:
  // KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, MANUAL_PROTECT_ENABLE [| INITIALLY_SET]) on
  // `vm`. Call before creating the dirty-logged slots. kUnsupported if the kernel lacks it.
  static Status EnableManualProtect(Vm& vm, bool initially_set = false);

  // Watches memslot `slot` of `vm` (`slot_npages` 4 KiB pages, dirty logging on), which holds
  // region pages [first_page, first_page + slot_npages). `manual_protect` says whether
  // EnableManualProtect was done. REQUIRES: `vm` outlives the source and stays at its address.
  static Expected<std::unique_ptr<KvmDirtyBitmapSource>> Create(const Vm& vm, uint32_t slot, uint64_t slot_npages,
                                                                uint64_t first_page, bool manual_protect);

  DirtySourceKind kind() const override { return DirtySourceKind::kKvmDirtyBitmap; }
  Coverage coverage() const override;
  // Fetches (and clears) the slot's bitmap into `changed`. If KVM_CLEAR_DIRTY_LOG fails the bits
  // stay set in KVM and the next Collect returns them again.
  Status Collect(const CollectContext& context, PageBitmap& changed) override;

  // Fetch and clear outside a tracker pass: the slot's dirty pages, slot-relative.
  Expected<PageBitmap> FetchAndClear();

 private:
  KvmDirtyBitmapSource(const Vm& vm, uint32_t slot, uint64_t slot_npages, uint64_t first_page, bool manual_protect)
      : vm_(vm), slot_(slot), slot_npages_(slot_npages), first_page_(first_page), manual_protect_(manual_protect) {}

  const Vm& vm_;
  uint32_t slot_;
  uint64_t slot_npages_;
  uint64_t first_page_;
  bool manual_protect_;
};

}  // namespace gmem::memory
