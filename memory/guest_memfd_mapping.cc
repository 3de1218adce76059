#include "memory/guest_memfd_mapping.h"

#include <sys/mman.h>

#include <cassert>
#include <string>

namespace gmem::memory {

Expected<GuestMemfdMapping> GuestMemfdMapping::Map(const GuestMemfd& gmem, MapOptions options) {
  if (!gmem.mappable()) {
    return Unsupported("guest_memfd was created without GUEST_MEMFD_FLAG_MMAP and cannot be mapped");
  }
  GMEM_ASSIGN_OR_RETURN(GuestMemfd own, gmem.Duplicate());
  void* addr = ::mmap(nullptr, own.size_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, own.fd(), 0);
  if (addr == MAP_FAILED) {
    return ErrnoStatus(Code::kIo, "mmap guest_memfd (" + std::to_string(own.size_bytes()) + " bytes)");
  }
  Mapping mapping(addr, own.size_bytes());
  GuestMemfdMapping result(std::move(own), std::move(mapping));
  if (options.populate) GMEM_RETURN_IF_ERROR(result.Populate());
  return result;
}

std::byte* GuestMemfdMapping::PageAddress(uint64_t page) const {
  assert(page < npages());
  // SAFETY: page < npages(), so the page lies inside the mapping.
  return mapping_.data() + (page << kPageShift);
}

Status GuestMemfdMapping::Populate() {
  if (::madvise(mapping_.data(), mapping_.size(), MADV_POPULATE_READ) != 0) {
    return ErrnoStatus(Code::kIo, "MADV_POPULATE_READ on the guest_memfd mapping");
  }
  return Status::Ok();
}

Status GuestMemfdMapping::Advise(uint64_t first_page, uint64_t count, int advice, const char* what) const {
  GMEM_RETURN_IF_ERROR(CheckRange(first_page, count, what));
  if (count == 0) return Status::Ok();
  // SAFETY: CheckRange keeps [first_page, first_page + count) inside the mapping.
  if (::madvise(mapping_.data() + (first_page << kPageShift), count << kPageShift, advice) != 0) {
    return ErrnoStatus(Code::kIo, std::string(what) + " pages [" + std::to_string(first_page) + ", +" +
                                      std::to_string(count) + ")");
  }
  return Status::Ok();
}

Status GuestMemfdMapping::PopulateRead(uint64_t first_page, uint64_t count) const {
  return Advise(first_page, count, MADV_POPULATE_READ, "MADV_POPULATE_READ");
}

Status GuestMemfdMapping::PopulateWrite(uint64_t first_page, uint64_t count) const {
  return Advise(first_page, count, MADV_POPULATE_WRITE, "MADV_POPULATE_WRITE");
}

Status GuestMemfdMapping::Release(uint64_t first_page, uint64_t count) const {
  return Advise(first_page, count, MADV_DONTNEED, "MADV_DONTNEED");
}

Status GuestMemfdMapping::Residency(uint64_t first_page, uint64_t count, std::span<unsigned char> out) const {
  GMEM_RETURN_IF_ERROR(CheckRange(first_page, count, "mincore"));
  if (out.size() < count) return InvalidArgument("mincore: result buffer smaller than the range");
  if (count == 0) return Status::Ok();
  // SAFETY: CheckRange keeps the range inside the mapping; out holds at least count bytes.
  if (::mincore(mapping_.data() + (first_page << kPageShift), count << kPageShift, out.data()) != 0) {
    return ErrnoStatus(Code::kIo, "mincore on the guest_memfd mapping");
  }
  return Status::Ok();
}

Status GuestMemfdMapping::CheckRange(uint64_t first_page, uint64_t count, const char* what) const {
  if (first_page > npages() || count > npages() - first_page) {
    return InvalidArgument(std::string(what) + ": pages [" + std::to_string(first_page) + ", +" +
                           std::to_string(count) + ") outside the mapping's " + std::to_string(npages()) + " pages");
  }
  return Status::Ok();
}

Status GuestMemfdMapping::PunchHole(uint64_t first_page, uint64_t count) {
  GMEM_RETURN_IF_ERROR(CheckRange(first_page, count, "punch hole"));
  return gmem_.PunchHole(first_page << kPageShift, count << kPageShift);
}

Status GuestMemfdMapping::Protect(uint64_t first_page, uint64_t count, int prot, const char* what) {
  GMEM_RETURN_IF_ERROR(CheckRange(first_page, count, what));
  if (count == 0) return Status::Ok();
  // SAFETY: CheckRange keeps [first_page, first_page + count) inside the mapping.
  std::byte* start = mapping_.data() + (first_page << kPageShift);
  if (::mprotect(start, count << kPageShift, prot) != 0) {
    return ErrnoStatus(
        Code::kIo, std::string(what) + " pages [" + std::to_string(first_page) + ", +" + std::to_string(count) + ")");
  }
  return Status::Ok();
}

Status GuestMemfdMapping::ProtectNone(uint64_t first_page, uint64_t count) {
  return Protect(first_page, count, PROT_NONE, "protect (PROT_NONE)");
}

Status GuestMemfdMapping::ProtectReadWrite(uint64_t first_page, uint64_t count) {
  return Protect(first_page, count, PROT_READ | PROT_WRITE, "unprotect (PROT_READ|PROT_WRITE)");
}

Status GuestMemfdMapping::ApplyAttributes(const AttributeMap& attrs, uint64_t first_page) {
  GMEM_RETURN_IF_ERROR(CheckRange(first_page, attrs.npages(), "apply attributes"));
  Status status;
  attrs.ForEachRun([&](const AttrRun& run) {
    if (!status.ok()) return;
    status = run.attr == PageAttr::kPrivate ? ProtectNone(first_page + run.first, run.count)
                                            : ProtectReadWrite(first_page + run.first, run.count);
  });
  return status;
}

}  // namespace gmem::memory
