#pragma once
// GuestMemfdMapping: the toolkit's one long-lived MAP_SHARED mapping of a whole guest_memfd
// (DESIGN.md: map once, populate, keep it; never pin). Move-only.
//
// The mapping owns a duplicate of the guest_memfd fd, so it stays usable (punch, protect) after
// the GuestMemfd it came from is gone. Pages it treats as private are PROT_NONE: a stray access
// faults (SIGSEGV) just as the kernel's SIGBUS would for a truly private page, so code that reads
// guest memory must consult the attribute map first.
//
// Thread-safety: reading pages concurrently is fine; Protect*/ApplyAttributes/PunchHole must not
// race with readers of the pages they change (the caller serialises conversions and reads).

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "memory/attribute_map.h"
#include "memory/guest_memfd.h"
#include "memory/page.h"

namespace gmem::memory {

struct MapOptions {
  // MADV_POPULATE_READ the whole mapping right away: about 2.4x faster first reads on a
  // guest_memfd, which has no fault-around (reference §5(g)).
  bool populate = false;
};

class GuestMemfdMapping {
 public:
  // mmap(PROT_READ | PROT_WRITE, MAP_SHARED) of the whole guest_memfd. kUnsupported if the
  // guest_memfd was created without GUEST_MEMFD_FLAG_MMAP. Without GUEST_MEMFD_FLAG_INIT_SHARED the
  // mapping succeeds but every access raises SIGBUS (all memory is private to the host).
  static Expected<GuestMemfdMapping> Map(const GuestMemfd& gmem, MapOptions options = {});

  std::byte* data() const { return mapping_.data(); }
  uint64_t size_bytes() const { return gmem_.size_bytes(); }
  uint64_t npages() const { return gmem_.size_bytes() >> kPageShift; }
  const GuestMemfd& gmem() const { return gmem_; }

  // Address of 4 KiB page `page` of the guest_memfd. REQUIRES: page < npages().
  std::byte* PageAddress(uint64_t page) const;

  // MADV_POPULATE_READ over the whole mapping. Call before protecting anything: with PROT_NONE
  // pages in the range the kernel refuses (EINVAL).
  Status Populate();

  // MADV_POPULATE_READ / MADV_POPULATE_WRITE over pages [first_page, first_page + count): one call
  // maps a whole run instead of one fault per page. REQUIRES: no PROT_NONE page in the range.
  // Populating a page that was never written allocates it (a guest_memfd has no zero page).
  Status PopulateRead(uint64_t first_page, uint64_t count) const;
  Status PopulateWrite(uint64_t first_page, uint64_t count) const;

  // MADV_DONTNEED over pages [first_page, first_page + count): drops this process's page-table
  // entries, not the memory (it stays in the guest_memfd and reads back the same). A tool that
  // streams a whole guest through its mapping calls it behind itself, so its resident set stays
  // bounded by what is in flight instead of growing to the guest's size.
  Status Release(uint64_t first_page, uint64_t count) const;

  // mincore over pages [first_page, first_page + count): out[i] & 1 tells whether page
  // first_page + i has memory behind it. A page without is a hole: it reads as zeros, and reading it
  // through the mapping would allocate it. REQUIRES: out.size() >= count.
  Status Residency(uint64_t first_page, uint64_t count, std::span<unsigned char> out) const;

  // Punches pages [first_page, first_page + count) out of the guest_memfd: they read as zeros.
  Status PunchHole(uint64_t first_page, uint64_t count);

  // mprotect the pages PROT_NONE (private) or PROT_READ | PROT_WRITE (shared again).
  // kInvalidArgument outside the mapping, kIo if mprotect fails.
  Status ProtectNone(uint64_t first_page, uint64_t count);
  Status ProtectReadWrite(uint64_t first_page, uint64_t count);

  // Makes the mapping agree with `attrs`, the attribute map of a region that starts at guest_memfd
  // page `first_page`: private runs PROT_NONE, shared runs PROT_READ | PROT_WRITE. Each run is one
  // mprotect (and at most one VMA), so keep runs coalesced.
  Status ApplyAttributes(const AttributeMap& attrs, uint64_t first_page);

 private:
  GuestMemfdMapping(GuestMemfd gmem, Mapping mapping) : gmem_(std::move(gmem)), mapping_(std::move(mapping)) {}
  Status CheckRange(uint64_t first_page, uint64_t count, const char* what) const;
  Status Protect(uint64_t first_page, uint64_t count, int prot, const char* what);
  Status Advise(uint64_t first_page, uint64_t count, int advice, const char* what) const;

  GuestMemfd gmem_;
  Mapping mapping_;
};

}  // namespace gmem::memory
