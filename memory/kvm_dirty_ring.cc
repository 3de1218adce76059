#include "memory/kvm_dirty_ring.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <atomic>
#include <bit>
#include <string>

#include "memory/kvm_uapi.h"
#include "memory/page.h"

namespace gmem::memory {

Status KvmDirtyRing::Enable(Vm& vm, uint32_t ring_bytes) {
  if (ring_bytes < kPageSize || !std::has_single_bit(ring_bytes)) {
    return InvalidArgument("dirty ring size " + std::to_string(ring_bytes) + " is not a power of two >= 4096");
  }
  GMEM_ASSIGN_OR_RETURN(int64_t acq_rel, vm.CheckExtension(KVM_CAP_DIRTY_LOG_RING_ACQ_REL));
  GMEM_ASSIGN_OR_RETURN(int64_t plain, vm.CheckExtension(KVM_CAP_DIRTY_LOG_RING));
  uint32_t cap = acq_rel > 0 ? KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KVM_CAP_DIRTY_LOG_RING;
  int64_t max_bytes = acq_rel > 0 ? acq_rel : plain;
  if (max_bytes <= 0) return Unsupported("KVM dirty ring not offered (KVM_CAP_DIRTY_LOG_RING[_ACQ_REL] = 0)");
  if (ring_bytes > max_bytes) {
    return InvalidArgument("dirty ring size " + std::to_string(ring_bytes) + " exceeds KVM's maximum " +
                           std::to_string(max_bytes));
  }
  return vm.EnableCap(cap, ring_bytes);
}

Expected<std::unique_ptr<KvmDirtyRing>> KvmDirtyRing::Map(const Vm& vm, std::span<const int> vcpu_fds,
                                                          uint32_t ring_bytes) {
  if (ring_bytes < kPageSize || !std::has_single_bit(ring_bytes)) {
    return InvalidArgument("dirty ring size " + std::to_string(ring_bytes) + " is not a power of two >= 4096");
  }
  std::vector<Ring> rings;
  for (int fd : vcpu_fds) {
    void* addr = ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                        static_cast<off_t>(KVM_DIRTY_LOG_PAGE_OFFSET * kPageSize));
    if (addr == MAP_FAILED) return ErrnoStatus(Code::kKvm, "mmap dirty ring of vCPU fd " + std::to_string(fd));
    Ring ring;
    ring.mapping = Mapping(addr, ring_bytes);
    ring.entries = ring_bytes / sizeof(struct kvm_dirty_gfn);
    rings.push_back(std::move(ring));
  }
  return std::unique_ptr<KvmDirtyRing>(new KvmDirtyRing(vm, std::move(rings)));
}

void KvmDirtyRing::WatchSlot(uint32_t slot, uint64_t npages) {
  std::lock_guard<std::mutex> lock(mu_);
  slots_.try_emplace(slot, npages);
}

uint64_t KvmDirtyRing::DrainLocked(Ring& ring) {
  auto* gfns = reinterpret_cast<struct kvm_dirty_gfn*>(ring.mapping.data());
  uint64_t harvested = 0;
  for (;;) {
    // SAFETY: index taken modulo the ring's entry count, inside the mapping.
    struct kvm_dirty_gfn& e = gfns[ring.next % ring.entries];
    std::atomic_ref<uint32_t> flags(e.flags);
    // Acquire pairs with KVM's release when it published the entry: slot/offset are valid after.
    if ((flags.load(std::memory_order_acquire) & KVM_DIRTY_GFN_F_DIRTY) == 0) break;
    auto it = slots_.find(e.slot);
    if (it != slots_.end() && e.offset < it->second.npages()) {
      it->second.Set(e.offset);
    } else {
      ++dropped_;
    }
    // Release: KVM may reuse the entry only after we are done reading it.
    flags.store(KVM_DIRTY_GFN_F_RESET, std::memory_order_release);
    ++ring.next;
    ++harvested;
  }
  return harvested;
}

Expected<uint64_t> KvmDirtyRing::Harvest() {
  std::lock_guard<std::mutex> lock(mu_);
  if (overflowed_) return Status(Code::kKvm, "dirty ring overflowed earlier; its dirty state is unusable");
  uint64_t harvested = 0;
  for (size_t i = 0; i < rings_.size(); ++i) {
    uint64_t n = DrainLocked(rings_[i]);
    harvested += n;
    if (n >= rings_[i].entries) {
      // KVM keeps reserve entries beyond its soft limit, so a full ring means it wrapped and
      // overwrote entries we never saw. Nothing may be lost: every watched page is dirty now.
      overflowed_ = true;
      for (auto& [slot, bits] : slots_) bits.SetRange(0, bits.npages());
      ::ioctl(vm_.fd(), KVM_RESET_DIRTY_RINGS, 0);
      return Status(Code::kKvm, "dirty ring of vCPU " + std::to_string(i) + " overflowed (" +
                                    std::to_string(rings_[i].entries) +
                                    " entries, no ring-full exit in time): all watched pages marked dirty; "
                                    "use a larger ring or the dirty bitmap");
    }
  }
  if (harvested > 0 && ::ioctl(vm_.fd(), KVM_RESET_DIRTY_RINGS, 0) < 0) {
    // The entries are already in the accumulators; a failed reset only delays KVM's reuse.
    return ErrnoStatus(Code::kKvm, "KVM_RESET_DIRTY_RINGS");
  }
  return harvested;
}

Status KvmDirtyRing::TakeSlot(uint32_t slot, uint64_t first_page, PageBitmap& out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(slot);
  if (it == slots_.end()) return InvalidArgument("dirty ring: slot " + std::to_string(slot) + " is not watched");
  PageBitmap& bits = it->second;
  if (first_page > out.npages() || bits.npages() > out.npages() - first_page) {
    return InvalidArgument("dirty ring: slot " + std::to_string(slot) + " does not fit the region at page " +
                           std::to_string(first_page));
  }
  bits.ForEachSet([&](uint64_t p) { out.Set(first_page + p); });
  bits.ClearAll();
  return Status::Ok();
}

bool KvmDirtyRing::overflowed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overflowed_;
}

uint64_t KvmDirtyRing::dropped_entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

}  // namespace gmem::memory
