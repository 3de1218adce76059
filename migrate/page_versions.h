#pragma once
// PageVersions: which copy of a page a target keeps when channels race (FORMAT.md §6). Per page it
// remembers the rank of the last update applied; an update is applied only if its rank is at
// least that. Rank = 2 × generation, + 1 for a private blob: within one pass the source sends
// its shared pages before the agent exports private ones, so a private blob of pass k is newer
// than a shared copy of the same page from pass k (one that a second channel may deliver later),
// and older than anything of pass k + 1.
//
// Not thread-safe: callers lock the page (the target's stripe locks).

#include <algorithm>
#include <cstdint>
#include <vector>

namespace gmem::migrate {

class PageVersions {
 public:
  explicit PageVersions(uint64_t npages) : ranks_(npages, 0) {}

  // True, and recorded, if an update of `page` (< npages) from pass `generation` is at least as
  // new as the last one applied.
  bool Claim(uint64_t page, uint64_t generation, bool is_private) {
    uint64_t rank = std::min<uint64_t>(generation, UINT32_MAX / 2 - 1) * 2 + (is_private ? 1 : 0);
    if (rank < ranks_[page]) return false;
    ranks_[page] = static_cast<uint32_t>(rank);
    return true;
  }
  // Forgets every update (the next image of a chain orders its own passes from 1).
  void Reset() { std::fill(ranks_.begin(), ranks_.end(), 0); }

 private:
  std::vector<uint32_t> ranks_;
};

}  // namespace gmem::migrate
