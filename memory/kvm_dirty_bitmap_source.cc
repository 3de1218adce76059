#include "memory/kvm_dirty_bitmap_source.h"

#include <sys/ioctl.h>

#include <string>

#include "memory/kvm_uapi.h"

namespace gmem::memory {

Status KvmDirtyBitmapSource::EnableManualProtect(Vm& vm, bool initially_set) {
  GMEM_ASSIGN_OR_RETURN(int64_t offered, vm.CheckExtension(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
  if ((offered & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) == 0) {
    return Unsupported("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 not offered (KVM_CLEAR_DIRTY_LOG unavailable)");
  }
  uint64_t mode = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
  if (initially_set) mode |= KVM_DIRTY_LOG_INITIALLY_SET;
  return vm.EnableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, mode);
}

Expected<std::unique_ptr<KvmDirtyBitmapSource>> KvmDirtyBitmapSource::Create(const Vm& vm, uint32_t slot,
                                                                             uint64_t slot_npages, uint64_t first_page,
                                                                             bool manual_protect) {
  if (slot_npages == 0 || slot_npages > (uint64_t{1} << 31)) {
    return InvalidArgument("dirty bitmap: slot of " + std::to_string(slot_npages) + " pages");
  }
  return std::unique_ptr<KvmDirtyBitmapSource>(
      new KvmDirtyBitmapSource(vm, slot, slot_npages, first_page, manual_protect));
}

Coverage KvmDirtyBitmapSource::coverage() const {
  Coverage c;
  c.pages = PageRange{first_page_, slot_npages_};
  c.sees_shared = true;  // KVM cannot see into private memory (and refuses logging on gmem slots)
  c.sees_private = false;
  c.complete = true;  // for guest writes; the VMM reports its own
  return c;
}

Expected<PageBitmap> KvmDirtyBitmapSource::FetchAndClear() {
  PageBitmap bits(slot_npages_);
  // SAFETY: dirty_bitmap points at (slot_npages_ + 63) / 64 words, the size KVM writes for the slot.
  struct kvm_dirty_log get = {};
  get.slot = slot_;
  get.dirty_bitmap = bits.words().data();
  if (::ioctl(vm_.fd(), KVM_GET_DIRTY_LOG, &get) != 0) {
    return ErrnoStatus(Code::kKvm, "KVM_GET_DIRTY_LOG(slot " + std::to_string(slot_) + ")");
  }
  if (manual_protect_ && !bits.None()) {
    // SAFETY: the same bitmap, covering the whole slot (first_page 0, num_pages = slot size, which
    // KVM accepts as the unaligned tail).
    struct kvm_clear_dirty_log clear = {};
    clear.slot = slot_;
    clear.first_page = 0;
    clear.num_pages = static_cast<uint32_t>(slot_npages_);
    clear.dirty_bitmap = bits.words().data();
    if (::ioctl(vm_.fd(), KVM_CLEAR_DIRTY_LOG, &clear) != 0) {
      return ErrnoStatus(Code::kKvm, "KVM_CLEAR_DIRTY_LOG(slot " + std::to_string(slot_) + ")");
    }
  }
  return bits;
}

Status KvmDirtyBitmapSource::Collect(const CollectContext& context, PageBitmap& changed) {
  (void)context;  // KVM reports what the guest wrote, whatever was asked
  if (first_page_ > changed.npages() || slot_npages_ > changed.npages() - first_page_) {
    return InvalidArgument("dirty bitmap: slot pages [" + std::to_string(first_page_) + ", +" +
                           std::to_string(slot_npages_) + ") outside the region");
  }
  GMEM_ASSIGN_OR_RETURN(PageBitmap bits, FetchAndClear());
  bits.ForEachSet([&](uint64_t p) { changed.Set(first_page_ + p); });
  return Status::Ok();
}

}  // namespace gmem::memory
