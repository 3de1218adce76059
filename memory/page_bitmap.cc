#include "memory/page_bitmap.h"

#include <bit>

namespace gmem::memory {

PageBitmap::PageBitmap(uint64_t npages) : npages_(npages), words_((npages + 63) / 64, 0) {}

void PageBitmap::SetRange(uint64_t first, uint64_t count) {
  uint64_t end = first + count;
  // Whole words in the middle are filled directly; the partial ends bit by bit.
  while (first < end && (first & 63) != 0) Set(first++);
  while (first + 64 <= end) {
    words_[first >> 6] = ~uint64_t{0};
    first += 64;
  }
  while (first < end) Set(first++);
}

void PageBitmap::ClearRange(uint64_t first, uint64_t count) {
  uint64_t end = first + count;
  while (first < end && (first & 63) != 0) Clear(first++);
  while (first + 64 <= end) {
    words_[first >> 6] = 0;
    first += 64;
  }
  while (first < end) Clear(first++);
}

void PageBitmap::ClearAll() {
  for (uint64_t& w : words_) w = 0;
}

uint64_t PageBitmap::Count() const {
  uint64_t n = 0;
  for (uint64_t w : words_) n += static_cast<uint64_t>(std::popcount(w));
  return n;
}

uint64_t PageBitmap::CountRange(uint64_t first, uint64_t count) const {
  uint64_t end = first + count;
  uint64_t n = 0;
  while (first < end && (first & 63) != 0) n += Test(first++) ? 1 : 0;
  while (first + 64 <= end) {
    n += static_cast<uint64_t>(std::popcount(words_[first >> 6]));
    first += 64;
  }
  while (first < end) n += Test(first++) ? 1 : 0;
  return n;
}

void PageBitmap::Or(const PageBitmap& other) {
  for (size_t i = 0; i < words_.size() && i < other.words_.size(); ++i) words_[i] |= other.words_[i];
}

void PageBitmap::And(const PageBitmap& other) {
  for (size_t i = 0; i < words_.size(); ++i) words_[i] &= i < other.words_.size() ? other.words_[i] : 0;
}

void PageBitmap::AndNot(const PageBitmap& other) {
  for (size_t i = 0; i < words_.size() && i < other.words_.size(); ++i) words_[i] &= ~other.words_[i];
}

uint64_t PageBitmap::NextSet(uint64_t from) const {
  if (from >= npages_) return npages_;
  uint64_t w = from >> 6;
  uint64_t bits = words_[w] & (~uint64_t{0} << (from & 63));
  while (bits == 0) {
    if (++w >= words_.size()) return npages_;
    bits = words_[w];
  }
  uint64_t page = (w << 6) + static_cast<uint64_t>(std::countr_zero(bits));
  return page < npages_ ? page : npages_;
}

uint64_t PageBitmap::NextClear(uint64_t from) const {
  if (from >= npages_) return npages_;
  uint64_t w = from >> 6;
  uint64_t bits = ~words_[w] & (~uint64_t{0} << (from & 63));
  while (bits == 0) {
    if (++w >= words_.size()) return npages_;
    bits = ~words_[w];
  }
  uint64_t page = (w << 6) + static_cast<uint64_t>(std::countr_zero(bits));
  return page < npages_ ? page : npages_;
}

std::vector<uint64_t> PageBitmap::ToVector() const {
  std::vector<uint64_t> out;
  out.reserve(Count());
  ForEachSet([&](uint64_t page) { out.push_back(page); });
  return out;
}

}  // namespace gmem::memory
