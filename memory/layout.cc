#include "memory/layout.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <set>

#include "memory/kvm_uapi.h"
#include "memory/page.h"

namespace gmem::memory {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Status CheckRegion(const Region& r) {
  const std::string where = "region " + std::to_string(r.id);
  if (r.size_bytes == 0) return InvalidArgument(where + ": size is 0");
  if (r.size_bytes > kMaxRegionBytes) {
    return InvalidArgument(where + ": size " + Hex(r.size_bytes) + " exceeds the limit " + Hex(kMaxRegionBytes));
  }
  if (r.page_size < kPageSize || r.page_size > kMaxPageSize || !std::has_single_bit(r.page_size)) {
    return InvalidArgument(where + ": page size " + std::to_string(r.page_size) +
                           " is not a power of two in [4096, 1 GiB]");
  }
  const uint64_t mask = r.page_size - 1;
  if ((r.gpa_base & mask) != 0) return InvalidArgument(where + ": gpa_base " + Hex(r.gpa_base) + " not page aligned");
  if ((r.size_bytes & mask) != 0) return InvalidArgument(where + ": size " + Hex(r.size_bytes) + " not page aligned");
  if ((r.gmem_offset & mask) != 0) {
    return InvalidArgument(where + ": gmem_offset " + Hex(r.gmem_offset) + " not page aligned");
  }
  if (r.gpa_base > UINT64_MAX - r.size_bytes) return InvalidArgument(where + ": GPA range overflows");
  if (r.gmem_offset > UINT64_MAX - r.size_bytes) return InvalidArgument(where + ": gmem range overflows");
  if ((r.gmem_flags & ~KnownGmemFlags()) != 0) {
    return InvalidArgument(where + ": unknown guest_memfd flags " + Hex(r.gmem_flags & ~KnownGmemFlags()));
  }
  return Status::Ok();
}

}  // namespace

uint64_t Region::npages() const { return size_bytes >> kPageShift; }

uint64_t KnownGmemFlags() { return GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED; }

Status Layout::Validate() const {
  if (regions_.size() > kMaxRegions) {
    return InvalidArgument("layout has " + std::to_string(regions_.size()) + " regions, limit " +
                           std::to_string(kMaxRegions));
  }
  std::set<uint32_t> ids;
  for (const Region& r : regions_) {
    GMEM_RETURN_IF_ERROR(CheckRegion(r));
    if (!ids.insert(r.id).second) return InvalidArgument("region id " + std::to_string(r.id) + " appears twice");
  }
  // Disjointness: sort by base; each region must end at or before the next one starts.
  std::vector<const Region*> sorted;
  for (const Region& r : regions_) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(), [](const Region* a, const Region* b) { return a->gpa_base < b->gpa_base; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i - 1]->gpa_end() > sorted[i]->gpa_base) {
      return InvalidArgument("regions " + std::to_string(sorted[i - 1]->id) + " and " + std::to_string(sorted[i]->id) +
                             " overlap at GPA " + Hex(sorted[i]->gpa_base));
    }
  }
  return Status::Ok();
}

const Region* Layout::FindById(uint32_t id) const {
  for (const Region& r : regions_) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

const Region* Layout::FindByGpa(uint64_t gpa) const {
  for (const Region& r : regions_) {
    if (r.ContainsGpa(gpa)) return &r;
  }
  return nullptr;
}

uint64_t Layout::TotalBytes() const {
  uint64_t total = 0;
  for (const Region& r : regions_) total += r.size_bytes;
  return total;
}

}  // namespace gmem::memory
