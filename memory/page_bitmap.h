#pragma once
// PageBitmap: one bit per page of a region, the dirty-set currency of the memory layer (a dirty
// report carries one; KVM's dirty log is one). Plain value type, not thread-safe.

#include <bit>
#include <cstdint>
#include <span>
#include <vector>

#include "memory/page.h"

namespace gmem::memory {

class PageBitmap {
 public:
  PageBitmap() = default;
  // All `npages` bits clear.
  explicit PageBitmap(uint64_t npages);

  uint64_t npages() const { return npages_; }

  // REQUIRES: page < npages() (and range within npages() for the range forms).
  bool Test(uint64_t page) const { return (words_[page >> 6] >> (page & 63)) & 1; }
  void Set(uint64_t page) { words_[page >> 6] |= uint64_t{1} << (page & 63); }
  void Clear(uint64_t page) { words_[page >> 6] &= ~(uint64_t{1} << (page & 63)); }
  void SetRange(uint64_t first, uint64_t count);
  void ClearRange(uint64_t first, uint64_t count);
  void ClearAll();

  // Number of set bits (in [first, first + count) for CountRange).
  uint64_t Count() const;
  uint64_t CountRange(uint64_t first, uint64_t count) const;
  bool None() const { return Count() == 0; }

  // this |= other; this &= other; this &= ~other. REQUIRES: same npages().
  void Or(const PageBitmap& other);
  void And(const PageBitmap& other);
  void AndNot(const PageBitmap& other);

  // Calls fn(page) for every set bit, ascending.
  template <typename Fn>
  void ForEachSet(Fn&& fn) const {
    for (uint64_t w = 0; w < words_.size(); ++w) {
      uint64_t bits = words_[w];
      while (bits != 0) {
        fn((w << 6) + static_cast<uint64_t>(std::countr_zero(bits)));
        bits &= bits - 1;
      }
    }
  }

  // Calls fn(PageRange) for every maximal run of set bits, ascending.
  template <typename Fn>
  void ForEachRun(Fn&& fn) const {
    uint64_t page = 0;
    while (page < npages_) {
      page = NextSet(page);
      if (page >= npages_) break;
      uint64_t end = NextClear(page);
      fn(PageRange{page, end - page});
      page = end;
    }
  }

  // First set (clear) bit at or after `from`, or npages() if none.
  uint64_t NextSet(uint64_t from) const;
  uint64_t NextClear(uint64_t from) const;

  // The set pages, ascending.
  std::vector<uint64_t> ToVector() const;

  // The words in KVM's dirty-log layout: bit (page % 64) of word (page / 64). Bits past
  // npages() are zero; a caller writing through words() must keep them so.
  std::span<uint64_t> words() { return words_; }
  std::span<const uint64_t> words() const { return words_; }

  bool operator==(const PageBitmap&) const = default;

 private:
  uint64_t npages_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace gmem::memory
