#pragma once
// DeferredRelease: GuestMemfdMapping::Release for a tool that streams a guest through its mapping
// with several threads. Each MADV_DONTNEED call flushes the TLB of every CPU running a thread of
// the process, an inter-processor interrupt that is dear under nested virtualization (in a 2 GiB
// migration one release per 1 MiB batch put ~4 % of all CPU time into sending and answering those
// IPIs). Ranges are collected instead, merged with their neighbours, and released together once
// `threshold_pages` are pending: a handful of calls per pass instead of one per batch. The
// resident set stays bounded, by the threshold plus what is in flight.
//
// Thread-safety: Add and Flush may be called from any thread. The mappings must outlive the
// ranges added for them until the next Flush; the destructor drops (does not release) what is
// still pending, which the mapping's munmap takes care of.

#include <cstdint>
#include <map>
#include <mutex>

#include "memory/guest_memfd_mapping.h"

namespace gmem::memory {

class DeferredRelease {
 public:
  static constexpr uint64_t kDefaultThresholdPages = 8192;  // 32 MiB

  explicit DeferredRelease(uint64_t threshold_pages = kDefaultThresholdPages) : threshold_pages_(threshold_pages) {}
  DeferredRelease(const DeferredRelease&) = delete;
  DeferredRelease& operator=(const DeferredRelease&) = delete;

  // Pages [first_page, first_page + count) of `mapping` are no longer needed in this process.
  // Releases everything pending once the threshold is reached (in the calling thread).
  void Add(const GuestMemfdMapping& mapping, uint64_t first_page, uint64_t count);
  // Releases everything pending now. Failures are ignored, as for a single release (the pages
  // only stay mapped).
  void Flush();

  // Pages added and not yet released; and the madvise calls made so far (for tests).
  uint64_t pending_pages() const;
  uint64_t calls() const;

 private:
  using Ranges = std::map<uint64_t, uint64_t>;  // first page -> end page, disjoint, not adjacent
  void ReleaseAll(std::map<const GuestMemfdMapping*, Ranges> ranges);

  const uint64_t threshold_pages_;
  mutable std::mutex mu_;
  std::map<const GuestMemfdMapping*, Ranges> pending_;
  uint64_t pending_pages_ = 0;
  uint64_t calls_ = 0;
};

}  // namespace gmem::memory
