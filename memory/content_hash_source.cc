#include "memory/content_hash_source.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>

#include "base/xxh3.h"

namespace gmem::memory {

PageHash ZeroPageHash() {
  static const PageHash kZero = [] {
    static const std::byte kZeroPage[kPageSize] = {};
    return HashPage(kZeroPage);
  }();
  return kZero;
}

PageHash HashPage(const std::byte* page) {
#if defined(__x86_64__)
  XXH128_hash_t h = XXH3_128bits_dispatch(page, kPageSize);
#else
  XXH128_hash_t h = XXH3_128bits(page, kPageSize);
#endif
  return PageHash{h.low64, h.high64};
}

namespace {

// Maps each run of resident pages that `wanted` selects in the window at `first` with one call
// instead of a fault per page (a guest_memfd has no fault-around). Best effort: a failure only
// means slower faults.
template <typename Wanted>
void PopulateResidentShared(const GuestMemfdMapping& mapping, uint64_t first, uint64_t count,
                            const unsigned char* resident, Wanted wanted) {
  for (uint64_t i = 0; i < count;) {
    if ((resident[i] & 1) == 0 || !wanted(i)) {
      ++i;
      continue;
    }
    uint64_t end = i + 1;
    while (end < count && (resident[end] & 1) != 0 && wanted(end)) ++end;
    mapping.PopulateRead(first + i, end - i).IgnoreError();
    i = end;
  }
}

}  // namespace

Expected<std::vector<PageHash>> HashAllPages(const GuestMemfdMapping& mapping, uint64_t first_page,
                                             const AttributeMap& attrs, unsigned threads) {
  const uint64_t npages = attrs.npages();
  if (first_page > mapping.npages() || npages > mapping.npages() - first_page) {
    return InvalidArgument("hash all pages: region outside the guest_memfd mapping");
  }
  std::vector<PageHash> out(npages);
  constexpr uint64_t kWindow = 512;
  auto hash_share = [&](uint64_t first, uint64_t end) -> Status {
    unsigned char resident[kWindow];
    for (uint64_t w = first; w < end; w += kWindow) {
      uint64_t count = std::min(kWindow, end - w);
      GMEM_RETURN_IF_ERROR(mapping.Residency(first_page + w, count, resident));
      PopulateResidentShared(mapping, first_page + w, count, resident, [&](uint64_t i) {
        return attrs.Get(w + i) == PageAttr::kShared;
      });
      for (uint64_t i = 0; i < count; ++i) {
        uint64_t p = w + i;
        if (attrs.Get(p) != PageAttr::kShared) continue;  // PageHash{}: never read
        // SAFETY: p < npages, inside the mapping (checked above), and shared, so readable.
        out[p] = (resident[i] & 1) == 0 ? ZeroPageHash() : HashPage(mapping.PageAddress(first_page + p));
      }
      // Hashed: drop the window's page-table entries, so the resident set stays one window.
      mapping.Release(first_page + w, count).IgnoreError();
    }
    return Status::Ok();
  };
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(npages / 4096 + 1)));
  const uint64_t share = ((npages + threads - 1) / threads + kWindow - 1) / kWindow * kWindow;
  std::vector<Status> statuses(threads);
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) {
    uint64_t first = std::min(npages, t * share);
    uint64_t end = std::min(npages, first + share);
    pool.emplace_back([&, t, first, end] { statuses[t] = hash_share(first, end); });
  }
  statuses[0] = hash_share(0, std::min(npages, share));
  for (std::thread& t : pool) t.join();
  for (const Status& st : statuses) GMEM_RETURN_IF_ERROR(st);
  return out;
}

ContentHashSource::ContentHashSource(const GuestMemfdMapping& mapping, uint64_t first_page, uint64_t npages,
                                     ContentHashOptions options)
    : mapping_(mapping),
      first_page_(first_page),
      npages_(npages),
      options_(options),
      sent_(npages),
      sent_valid_(npages),
      pending_(npages),
      pending_valid_(npages),
      readable_(npages) {
  if (options_.threads == 0) options_.threads = 1;
}

Coverage ContentHashSource::coverage() const {
  Coverage c;
  c.pages = PageRange{0, npages_};
  c.sees_shared = true;
  c.sees_private = false;
  c.complete = true;
  return c;
}

void ContentHashSource::HashShare(const PageBitmap& work, uint64_t first, uint64_t end, PageBitmap& changed) {
  // Residency of the current 512-page window: a hole reads as zeros and is not touched (reading
  // it through the mapping would allocate it).
  constexpr uint64_t kWindow = 512;
  unsigned char resident[kWindow];
  uint64_t window = UINT64_MAX;
  bool known = false;
  // Hashed windows leave this process's page tables, so the resident set stays one window.
  auto release = [&] {
    if (window != UINT64_MAX) {
      mapping_.Release(first_page_ + window * kWindow, std::min(kWindow, npages_ - window * kWindow)).IgnoreError();
    }
  };
  for (uint64_t p = work.NextSet(first); p < end; p = work.NextSet(p + 1)) {
    if (p / kWindow != window) {
      release();
      window = p / kWindow;
      uint64_t count = std::min(kWindow, npages_ - window * kWindow);
      known = mapping_.Residency(first_page_ + window * kWindow, count, resident).ok();
      if (known) {
        uint64_t base = window * kWindow;
        PopulateResidentShared(mapping_, first_page_ + base, count, resident,
                               [&](uint64_t i) { return work.Test(base + i); });
      }
    }
    // SAFETY: p < npages_ and the region lies inside the mapping (constructor contract); `work`
    // holds only pages that are shared in this pass, so the page is mapped readable.
    PageHash h = known && (resident[p % kWindow] & 1) == 0 ? ZeroPageHash()
                                                            : HashPage(mapping_.PageAddress(first_page_ + p));
    pending_[p] = h;
    if (!sent_valid_.Test(p) || !(sent_[p] == h)) changed.Set(p);
  }
  release();
}

Status ContentHashSource::Collect(const CollectContext& context, PageBitmap& changed) {
  if (context.attributes.npages() != npages_ || context.candidates.npages() != npages_ || changed.npages() != npages_) {
    return InvalidArgument("content hash: pass is for " + std::to_string(context.attributes.npages()) +
                           " pages, source watches " + std::to_string(npages_));
  }
  if (first_page_ > mapping_.npages() || npages_ > mapping_.npages() - first_page_) {
    return InvalidArgument("content hash: region pages [" + std::to_string(first_page_) + ", +" +
                           std::to_string(npages_) + ") outside the guest_memfd mapping");
  }
  // Work = candidates that are shared now. Nothing else is ever read.
  readable_.ClearAll();
  context.attributes.ForEachRun([&](const AttrRun& run) {
    if (run.attr == PageAttr::kShared) readable_.SetRange(run.first, run.count);
  });
  PageBitmap work = context.candidates;
  work.And(readable_);
  if (!options_.hash_unsent) {
    // A page the target has no hash for is changed whatever it holds; it gets its hash when it is
    // copied out (CopyForSend), so it need not be read here too.
    PageBitmap unsent = work;
    unsent.AndNot(sent_valid_);
    changed.Or(unsent);
    work.And(sent_valid_);
  }
  pending_valid_ = work;
  last_hashed_pages_ = work.Count();

  const unsigned threads = std::min<uint64_t>(options_.threads, std::max<uint64_t>(1, last_hashed_pages_ / 4096));
  if (threads <= 1) {
    HashShare(work, 0, npages_, changed);
    return Status::Ok();
  }
  // Contiguous shares, 64-page aligned so no two threads write the same bitmap word.
  const uint64_t share = ((npages_ + threads - 1) / threads + 63) & ~uint64_t{63};
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) {
    uint64_t first = std::min<uint64_t>(npages_, t * share);
    uint64_t end = std::min<uint64_t>(npages_, first + share);
    pool.emplace_back([this, &work, &changed, first, end] { HashShare(work, first, end, changed); });
  }
  HashShare(work, 0, std::min<uint64_t>(npages_, share), changed);
  for (std::thread& t : pool) t.join();
  return Status::Ok();
}

void ContentHashSource::OnSent(uint64_t page, PageAttr attr) {
  if (page >= npages_) return;
  if (attr == PageAttr::kShared && pending_valid_.Test(page)) {
    sent_[page] = pending_[page];
    sent_valid_.Set(page);
  } else {
    // Sent private, or sent without a hash taken: the next pass that sees it shared re-sends it.
    sent_valid_.Clear(page);
  }
  pending_valid_.Clear(page);
}

Status ContentHashSource::CopyForSend(uint64_t page, std::span<std::byte> dst) {
  if (page >= npages_) {
    return InvalidArgument("copy for send: page " + std::to_string(page) + " outside the region's " +
                           std::to_string(npages_) + " pages");
  }
  if (dst.size() != kPageSize) return InvalidArgument("copy for send: destination is not one page");
  if (!readable_.Test(page)) {
    return InvalidArgument("copy for send: page " + std::to_string(page) + " is not shared; it is never read");
  }
  // SAFETY: page < npages_, inside the mapping, and shared in this pass (readable_).
  std::memcpy(dst.data(), mapping_.PageAddress(first_page_ + page), kPageSize);
  pending_[page] = HashPage(dst.data());
  pending_valid_.Set(page);
  return Status::Ok();
}

Status ContentHashSource::NoteHoleForSend(uint64_t page) {
  if (page >= npages_) {
    return InvalidArgument("hole for send: page " + std::to_string(page) + " outside the region's " +
                           std::to_string(npages_) + " pages");
  }
  pending_[page] = ZeroPageHash();
  pending_valid_.Set(page);
  return Status::Ok();
}

}  // namespace gmem::memory
