#pragma once
// ContentHashSource: finds changed shared pages by content (DESIGN.md, dirty source 3). It keeps,
// per page, the xxHash3-128 of what was sent; a pass hashes the candidate shared pages through the
// toolkit's long-lived mapping and flags those whose hash differs (or that have none; with
// hash_unsent off they are flagged unread). Holes (no memory behind them, per mincore) hash as
// zeros without being touched. It covers
// every shared page of the region, so it is the fallback wherever KVM keeps no dirty log
// (guest_memfd memslots, reference §4.2) — at the cost of one read of that memory per pass.
//
// It never reads a page that is not shared in the pass's attribute map: private pages are
// PROT_NONE in the mapping (and SIGBUS under real in-place conversion).
//
// What counts as "sent": MarkSent records the hash computed in the pass. That is exact when the
// page could not change between the pass and the engine's read of it (vCPUs paused, or a KVM
// source also covers it). For a running guest, read pages with CopyForSend(), which hashes the
// very bytes it copies out: then a later change is always seen, even one that restores the bytes
// the pass hashed.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "memory/dirty_source.h"
#include "memory/guest_memfd_mapping.h"

namespace gmem::memory {

struct PageHash {
  uint64_t low = 0;
  uint64_t high = 0;
  bool operator==(const PageHash&) const = default;
};

// xxHash3-128 of one 4 KiB page. REQUIRES: `page` readable for kPageSize bytes.
PageHash HashPage(const std::byte* page);
// HashPage of a page of zeros.
PageHash ZeroPageHash();

// The hash of every page of the region of `attrs.npages()` pages that starts at guest_memfd page
// `first_page` of `mapping`, as it is now: holes (no memory behind them) hash as the zero page
// without being touched; private pages are PageHash{} and never read. `threads` share the work.
// For a paused VM. (A save builds its table as the pages go out; tests check it against this.)
Expected<std::vector<PageHash>> HashAllPages(const GuestMemfdMapping& mapping, uint64_t first_page,
                                             const AttributeMap& attrs, unsigned threads);

struct ContentHashOptions {
  // Threads hashing a pass (1 = the calling thread only). Each thread takes a contiguous share.
  unsigned threads = 1;
  // Whether a pass also hashes pages the target has no hash for yet. They are changed whatever
  // they hold; the hash only matters to a caller that marks pages sent without CopyForSend /
  // NoteHoleForSend. A caller that always copies through those (the migration engine) turns this
  // off and saves a read of all memory in pass 1.
  bool hash_unsent = true;
};

class ContentHashSource final : public DirtySource {
 public:
  // Watches the region of `npages` pages that starts at guest_memfd page `first_page` of
  // `mapping`. REQUIRES: the region lies inside the mapping; `mapping` outlives the source and stays at
  // its address.
  ContentHashSource(const GuestMemfdMapping& mapping, uint64_t first_page, uint64_t npages,
                    ContentHashOptions options = {});

  DirtySourceKind kind() const override { return DirtySourceKind::kContentHash; }
  Coverage coverage() const override;
  Status Collect(const CollectContext& context, PageBitmap& changed) override;
  void OnSent(uint64_t page, PageAttr attr) override;

  // Copies region page `page` into `dst` (kPageSize bytes) for sending and makes the hash of that
  // copy what MarkSent will record. kInvalidArgument if the page is not shared in the last pass's
  // attributes (it is never read then), or on a bad size or index.
  Status CopyForSend(uint64_t page, std::span<std::byte> dst);

  // For a page the caller found to be a hole (GuestMemfdMapping::Residency) and sends as zeros
  // without reading it: the zero page's hash becomes what MarkSent records. A write after the
  // residency check makes the page resident and different, so a later pass still sees it.
  Status NoteHoleForSend(uint64_t page);

  // Pages hashed by the last Collect.
  uint64_t last_hashed_pages() const { return last_hashed_pages_; }

 private:
  // Hashes candidate shared pages in [first, end): a thread's share. `first` and `end` are
  // multiples of 64 (or the region end), so shares never write the same bitmap word.
  void HashShare(const PageBitmap& work, uint64_t first, uint64_t end, PageBitmap& changed);

  const GuestMemfdMapping& mapping_;
  uint64_t first_page_;
  uint64_t npages_;
  ContentHashOptions options_;
  std::vector<PageHash> sent_;     // hash of what the target has
  PageBitmap sent_valid_;          // sent_[p] is meaningful
  std::vector<PageHash> pending_;  // hash of what is being sent in this pass
  PageBitmap pending_valid_;
  PageBitmap readable_;  // shared pages as of the last Collect
  uint64_t last_hashed_pages_ = 0;
};

}  // namespace gmem::memory
