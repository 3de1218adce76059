#pragma once
// The memory layout of a VM: its regions, each one guest_memfd mapped at a guest-physical range
// (DESIGN.md, "Guest memory and attributes"). The layout travels in every image, so Validate()
// is what a reader runs before trusting one.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace gmem::memory {

// One region: guest-physical [gpa_base, gpa_base + size_bytes) backed by the guest_memfd bytes
// [gmem_offset, gmem_offset + size_bytes), created with `gmem_flags` (GUEST_MEMFD_FLAG_*).
struct Region {
  uint32_t id = 0;
  uint64_t gpa_base = 0;
  uint64_t size_bytes = 0;
  uint64_t gmem_offset = 0;
  uint32_t page_size = 4096;  // the region's backing page size; attributes stay per 4 KiB
  uint64_t gmem_flags = 0;

  uint64_t gpa_end() const { return gpa_base + size_bytes; }
  uint64_t npages() const;  // in 4 KiB pages
  bool ContainsGpa(uint64_t gpa) const { return gpa >= gpa_base && gpa - gpa_base < size_bytes; }
  bool operator==(const Region&) const = default;
};

// Limits a layout must respect (bounds checked before anything is allocated from a layout).
inline constexpr size_t kMaxRegions = 256;
inline constexpr uint64_t kMaxRegionBytes = uint64_t{1} << 40;  // 1 TiB
inline constexpr uint32_t kMaxPageSize = uint32_t{1} << 30;     // 1 GiB
// The guest_memfd flags a region may name (reference §1.2); others are rejected.
uint64_t KnownGmemFlags();

class Layout {
 public:
  Layout() = default;
  explicit Layout(std::vector<Region> regions) : regions_(std::move(regions)) {}

  const std::vector<Region>& regions() const { return regions_; }
  void Add(const Region& region) { regions_.push_back(region); }

  // OK if: at most kMaxRegions regions; ids unique; every size > 0 and <= kMaxRegionBytes;
  // page_size a power of two in [4096, kMaxPageSize]; gpa_base, size_bytes and gmem_offset
  // multiples of page_size; no address overflow; GPA ranges pairwise disjoint; gmem_flags within
  // KnownGmemFlags(). Otherwise kInvalidArgument naming the region and the rule.
  Status Validate() const;

  // The region with `id`, or the one containing `gpa`; nullptr if none.
  const Region* FindById(uint32_t id) const;
  const Region* FindByGpa(uint64_t gpa) const;

  uint64_t TotalBytes() const;

  bool operator==(const Layout&) const = default;

 private:
  std::vector<Region> regions_;
};

}  // namespace gmem::memory
