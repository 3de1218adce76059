#include "memory/deferred_release.h"

#include <iterator>
#include <utility>

namespace gmem::memory {

void DeferredRelease::Add(const GuestMemfdMapping& mapping, uint64_t first_page, uint64_t count) {
  if (count == 0) return;
  std::map<const GuestMemfdMapping*, Ranges> due;
  {
    std::lock_guard lock(mu_);
    Ranges& ranges = pending_[&mapping];
    uint64_t first = first_page;
    uint64_t end = first_page + count;
    // Swallow every pending range that overlaps or touches [first, end).
    auto it = ranges.upper_bound(first);
    if (it != ranges.begin() && std::prev(it)->second >= first) --it;
    while (it != ranges.end() && it->first <= end) {
      first = std::min(first, it->first);
      end = std::max(end, it->second);
      pending_pages_ -= it->second - it->first;
      it = ranges.erase(it);
    }
    ranges.emplace(first, end);
    pending_pages_ += end - first;
    if (pending_pages_ < threshold_pages_) return;
    due.swap(pending_);
    pending_pages_ = 0;
  }
  ReleaseAll(std::move(due));
}

void DeferredRelease::Flush() {
  std::map<const GuestMemfdMapping*, Ranges> due;
  {
    std::lock_guard lock(mu_);
    due.swap(pending_);
    pending_pages_ = 0;
  }
  ReleaseAll(std::move(due));
}

void DeferredRelease::ReleaseAll(std::map<const GuestMemfdMapping*, Ranges> ranges) {
  uint64_t calls = 0;
  for (const auto& [mapping, runs] : ranges) {
    for (const auto& [first, end] : runs) {
      mapping->Release(first, end - first).IgnoreError();
      ++calls;
    }
  }
  std::lock_guard lock(mu_);
  calls_ += calls;
}

uint64_t DeferredRelease::pending_pages() const {
  std::lock_guard lock(mu_);
  return pending_pages_;
}

uint64_t DeferredRelease::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

}  // namespace gmem::memory
