#pragma once
// The unit of guest memory the memory layer counts in: the 4 KiB page. Attributes, dirty state
// and hashes are all kept per 4 KiB page of a region, whatever the region's own page size
// (DESIGN.md, "Guest memory and attributes").

#include <cstddef>
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

// Whether the kPageSize bytes at `page` are all zero. Stops at the first 256 bytes with a set bit,
// so a data page usually costs one read and a zero page a full one; the full read uses 32-byte
// loads where the CPU has AVX2 (11.5 GB/s here against 7.8 GB/s for 8-byte words, which made the
// zero check 85 % of the page sender's own time in a 2 GiB migration).
bool IsZeroPage(const std::byte* page);
namespace internal {
// IsZeroPage's two ways, for tests: SSE2 (every x86-64) and AVX2 (REQUIRES: the CPU has it).
bool IsZeroPageSse2(const std::byte* page);
bool IsZeroPageAvx2(const std::byte* page);
}  // namespace internal

// True when `v` is a multiple of kPageSize.
inline constexpr bool IsPageAligned(uint64_t v) { return (v & (kPageSize - 1)) == 0; }

}  // namespace gmem::memory
