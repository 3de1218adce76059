#pragma once
// The unit of guest memory the memory layer counts in: the 4 KiB page. Attributes, dirty state
// and hashes are all kept per 4 KiB page of a region, whatever the region's own page size
// (DESIGN.md, "Guest memory and attributes").

#include <cstdint>

namespace gmem::memory {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;
static_assert(kPageSize == (uint64_t{1} << kPageShift));

// A half-open range of pages [first, first + count).
struct PageRange {
  uint64_t first = 0;
  uint64_t count = 0;

  uint64_t end() const { return first + count; }
  bool operator==(const PageRange&) const = default;
};

// True when `v` is a multiple of kPageSize.
inline constexpr bool IsPageAligned(uint64_t v) { return (v & (kPageSize - 1)) == 0; }

}  // namespace gmem::memory
