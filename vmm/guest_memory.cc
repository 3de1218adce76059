#include "vmm/guest_memory.h"

#include <atomic>
#include <cassert>
#include <string>

#include "memory/kvm_uapi.h"
#include "vmm/guest/guest_abi.h"

namespace gmem::vmm {
namespace {

constexpr uint64_t k2M = uint64_t{2} << 20;
constexpr uint64_t kRegionFlags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

}  // namespace

memory::Layout GuestMemory::MakeLayout(uint64_t mem_bytes, uint32_t nregions) {
  memory::Layout layout;
  uint64_t chunk = mem_bytes / nregions / k2M * k2M;
  uint64_t gpa = 0;
  for (uint32_t i = 0; i < nregions; ++i) {
    memory::Region r;
    r.id = i;
    r.gpa_base = gpa;
    r.size_bytes = i + 1 == nregions ? mem_bytes - gpa : chunk;
    r.gmem_offset = 0;
    r.page_size = 4096;
    r.gmem_flags = kRegionFlags;
    layout.Add(r);
    gpa += r.size_bytes;
  }
  return layout;
}

Status GuestMemory::CheckLayout(const memory::Layout& layout) {
  GMEM_RETURN_IF_ERROR(layout.Validate());
  if (layout.regions().empty() || layout.regions().size() > 16) {
    return InvalidArgument("layout: the VMM takes 1..16 regions, got " + std::to_string(layout.regions().size()));
  }
  uint64_t gpa = 0;
  for (const memory::Region& r : layout.regions()) {
    const std::string where = "layout: region " + std::to_string(r.id);
    if (r.gpa_base != gpa) return InvalidArgument(where + ": regions must tile guest memory from GPA 0 in order");
    if (r.gmem_offset != 0) return InvalidArgument(where + ": gmem_offset must be 0");
    if (r.page_size != 4096) return InvalidArgument(where + ": page size must be 4096");
    if (r.gmem_flags != kRegionFlags) return InvalidArgument(where + ": gmem_flags must be MMAP|INIT_SHARED (3)");
    gpa += r.size_bytes;
  }
  if (gpa % k2M != 0 || gpa < 2 * k2M || gpa > GMEM_GUEST_MAX_MEM_BYTES) {
    return InvalidArgument("layout: total size " + std::to_string(gpa) +
                           " must be a multiple of 2 MiB between 4 MiB and 8 GiB");
  }
  if (layout.regions()[0].size_bytes < GMEM_GUEST_DATA_GPA) {
    return InvalidArgument("layout: region 0 must hold the 2 MiB boot area");
  }
  return Status::Ok();
}

Expected<GuestMemory> GuestMemory::Create(const memory::Vm& vm, const memory::Layout& layout) {
  GMEM_RETURN_IF_ERROR(CheckLayout(layout));
  std::vector<RegionMemory> regions;
  for (const memory::Region& r : layout.regions()) {
    GMEM_ASSIGN_OR_RETURN(memory::GuestMemfd gmem, memory::GuestMemfd::Create(vm, r.size_bytes, r.gmem_flags));
    GMEM_ASSIGN_OR_RETURN(memory::GuestMemfdMapping mapping, memory::GuestMemfdMapping::Map(gmem));
    regions.push_back(RegionMemory{r, std::move(gmem), std::move(mapping)});
  }
  return GuestMemory(layout, std::move(regions));
}

Status GuestMemory::AddMemslots(memory::Vm& vm, SlotMode mode) const {
  for (size_t i = 0; i < regions_.size(); ++i) {
    const RegionMemory& rm = regions_[i];
    memory::MemslotSpec spec;
    spec.slot = static_cast<uint32_t>(i);
    spec.gpa = rm.region.gpa_base;
    spec.size_bytes = rm.region.size_bytes;
    spec.userspace_addr = rm.mapping.data();
    if (mode == SlotMode::kGmem) {
      spec.flags = KVM_MEM_GUEST_MEMFD;
      spec.gmem_fd = rm.gmem.fd();
      spec.gmem_offset = rm.region.gmem_offset;
    } else {
      spec.flags = KVM_MEM_LOG_DIRTY_PAGES;
    }
    Status s = vm.SetMemslot(spec);
    if (!s.ok()) return s.WithContext("memslot for region " + std::to_string(rm.region.id));
  }
  return Status::Ok();
}

Status GuestMemory::PopulateWrite() const {
  for (const RegionMemory& rm : regions_) {
    Status s = rm.mapping.PopulateWrite(0, rm.mapping.npages());
    if (!s.ok()) return s.WithContext("populate region " + std::to_string(rm.region.id));
  }
  return Status::Ok();
}

std::byte* GuestMemory::HostAddress(uint64_t gpa, uint64_t len) const {
  for (const RegionMemory& rm : regions_) {
    if (!rm.region.ContainsGpa(gpa)) continue;
    uint64_t off = gpa - rm.region.gpa_base;
    if (len > rm.region.size_bytes - off) return nullptr;
    // SAFETY: [off, off + len) lies inside the region, which the mapping covers in full.
    return rm.mapping.data() + off;
  }
  return nullptr;
}

uint64_t GuestMemory::Load64(uint64_t gpa) const {
  std::byte* p = HostAddress(gpa, sizeof(uint64_t));
  assert(p != nullptr && gpa % 8 == 0);
  // SAFETY: HostAddress checked that the 8 bytes lie in one region's mapping; gpa is aligned.
  return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(p)).load(std::memory_order_acquire);
}

void GuestMemory::Store64(uint64_t gpa, uint64_t value) const {
  std::byte* p = HostAddress(gpa, sizeof(uint64_t));
  assert(p != nullptr && gpa % 8 == 0);
  // SAFETY: as in Load64.
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(p)).store(value, std::memory_order_release);
}

}  // namespace gmem::vmm
