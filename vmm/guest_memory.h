#pragma once
// GuestMemory: the VM's RAM — one guest_memfd (GUEST_MEMFD_FLAG_MMAP | INIT_SHARED) per region of
// the layout, each with the VMM's long-lived mapping, and the memslots that hand it to KVM.
//
// The VMM's mapping is the guest's view: every memslot's userspace_addr points into it (on this
// PVM host the guest's pages come from there, even on KVM_MEM_GUEST_MEMFD slots), so it is never
// protected. Private pages are hidden from the *toolkit's* mappings, not from this one.
// Move-only. HostAddress and the accessors are thread-safe (the object does not change after
// Create/AddMemslots).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/expected.h"
#include "memory/guest_memfd.h"
#include "memory/guest_memfd_mapping.h"
#include "memory/layout.h"
#include "memory/vm.h"
#include "vmm/vmm_config.h"

namespace gmem::vmm {

class GuestMemory {
 public:
  // `mem_bytes` split into `nregions` regions that tile [0, mem_bytes): region i has id i,
  // 2 MiB-aligned bounds (the last takes the rest), gmem_offset 0, page size 4096 and
  // gmem_flags MMAP | INIT_SHARED. REQUIRES: ValidateConfig accepted the numbers.
  static memory::Layout MakeLayout(uint64_t mem_bytes, uint32_t nregions);

  // What the VMM accepts from prepare-incoming: Layout::Validate, regions in ascending GPA order
  // tiling [0, total) without gaps, gmem_offset 0, page size 4096, gmem_flags MMAP | INIT_SHARED,
  // total a multiple of 2 MiB in [4 MiB, 8 GiB], at most 16 regions. kInvalidArgument otherwise.
  static Status CheckLayout(const memory::Layout& layout);

  // Creates and maps the guest_memfds of `layout` (which must pass CheckLayout).
  static Expected<GuestMemory> Create(const memory::Vm& vm, const memory::Layout& layout);

  // One memslot per region, slot number = region index: KVM_MEM_GUEST_MEMFD slots (kGmem) or
  // classic slots with KVM_MEM_LOG_DIRTY_PAGES (kHva); userspace_addr = the mapping either way.
  Status AddMemslots(memory::Vm& vm, SlotMode mode) const;

  // Allocates every page of every region for writing (MADV_POPULATE_WRITE over the VMM's mapping),
  // so that nobody pays the first touch later: the kernel zero-fills each page here (fresh pages
  // read as zeros, as before). kIo (e.g. ENOMEM) if the kernel cannot back them all.
  Status PopulateWrite() const;

  const memory::Layout& layout() const { return layout_; }
  size_t region_count() const { return regions_.size(); }
  uint64_t total_bytes() const { return layout_.TotalBytes(); }
  const memory::GuestMemfd& gmem(size_t index) const { return regions_[index].gmem; }
  const memory::GuestMemfdMapping& mapping(size_t index) const { return regions_[index].mapping; }

  // The host address of guest-physical [gpa, gpa + len), or nullptr unless one region holds it.
  std::byte* HostAddress(uint64_t gpa, uint64_t len) const;

  // Atomic 8-byte access to guest-physical `gpa` (the VMM's reads and writes of the guest's
  // control pages, which the guest changes concurrently). REQUIRES: gpa 8-byte aligned, in RAM.
  uint64_t Load64(uint64_t gpa) const;
  void Store64(uint64_t gpa, uint64_t value) const;

 private:
  struct RegionMemory {
    memory::Region region;
    memory::GuestMemfd gmem;
    memory::GuestMemfdMapping mapping;
  };
  GuestMemory(memory::Layout layout, std::vector<RegionMemory> regions)
      : layout_(std::move(layout)), regions_(std::move(regions)) {}

  memory::Layout layout_;
  std::vector<RegionMemory> regions_;
};

}  // namespace gmem::vmm
