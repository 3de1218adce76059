#pragma once
// KvmDirtyRing: the per-vCPU dirty rings of one VM (reference §4.1). KVM pushes one entry
// {slot, page offset} per page a vCPU dirties in a dirty-logged slot; Harvest() drains every
// ring, hands entries to per-slot accumulators and calls KVM_RESET_DIRTY_RINGS to re-arm them.
//
// Order of use: Enable() on the VM before any vCPU exists; create vCPUs; Map() their rings;
// WatchSlot() for each dirty-logged slot; Harvest() whenever a vCPU exits with
// KVM_EXIT_DIRTY_RING_FULL and before reading a slot with TakeSlot() (KvmDirtyRingSource does
// both). Entries of slots nobody watches are dropped (counted).
//
// Overflow: KVM is meant to stop a vCPU (KVM_EXIT_DIRTY_RING_FULL) at a soft limit well before
// its ring is full. kvm_pvm on this host does not always: a guest dirtying more pages than the
// ring holds between exits wraps it, overwriting entries, and the ring cannot be re-synchronised
// afterwards (measured: a 1024-entry ring took 3000 writes and exited only once it had wrapped).
// Harvest() detects a completely full ring — impossible when the soft limit holds — and then
// marks every page of every watched slot dirty (so nothing is lost), latches overflowed(), and
// fails from then on: use the dirty bitmap instead. Size rings for the writes between harvests.
//
// Thread-safe: Harvest/TakeSlot/WatchSlot lock; vCPUs may keep running (the ring protocol is
// acquire/release on each entry's flags).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "memory/page_bitmap.h"
#include "memory/vm.h"

namespace gmem::memory {

class KvmDirtyRing {
 public:
  // Enables the ring on `vm`, `ring_bytes` per vCPU (a power of two, >= 4096 and <= the
  // capability's value): KVM_CAP_DIRTY_LOG_RING_ACQ_REL where offered, else KVM_CAP_DIRTY_LOG_RING.
  // kUnsupported without either. REQUIRES: no vCPU created yet.
  static Status Enable(Vm& vm, uint32_t ring_bytes);

  // Maps the ring of each vCPU in `vcpu_fds` (mmap at KVM_DIRTY_LOG_PAGE_OFFSET pages).
  // REQUIRES: Enable(vm, ring_bytes) succeeded; `vm` outlives the ring and stays at its
  // address (vCPU fds may close earlier: the mappings keep the rings alive).
  static Expected<std::unique_ptr<KvmDirtyRing>> Map(const Vm& vm, std::span<const int> vcpu_fds, uint32_t ring_bytes);

  // Starts accumulating entries of memslot `slot` (`npages` pages).
  void WatchSlot(uint32_t slot, uint64_t npages);

  // Drains all rings into the watched slots' accumulators, then KVM_RESET_DIRTY_RINGS.
  // Returns the number of entries harvested. After an overflow (see above): kKvm, always.
  Expected<uint64_t> Harvest();

  // Moves the accumulated dirty pages of `slot` (slot-relative) into `out` at offset `first_page`
  // (out.Set(first_page + offset)) and forgets them. kInvalidArgument for an unwatched slot or a
  // slot that does not fit `out` at `first_page`.
  Status TakeSlot(uint32_t slot, uint64_t first_page, PageBitmap& out);

  // Entries for slots nobody watched, or with offsets outside their slot.
  uint64_t dropped_entries() const;
  // A ring wrapped: entries were lost and every watched page was marked dirty.
  bool overflowed() const;

 private:
  struct Ring {
    Mapping mapping;  // struct kvm_dirty_gfn[entries]
    uint32_t entries = 0;
    uint64_t next = 0;  // index of the next entry to harvest
  };
  KvmDirtyRing(const Vm& vm, std::vector<Ring> rings) : vm_(vm), rings_(std::move(rings)) {}
  uint64_t DrainLocked(Ring& ring);

  const Vm& vm_;
  mutable std::mutex mu_;
  std::vector<Ring> rings_;
  std::map<uint32_t, PageBitmap> slots_;
  uint64_t dropped_ = 0;
  bool overflowed_ = false;
};

}  // namespace gmem::memory
