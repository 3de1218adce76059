#include "memory/guest_memfd.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "memory/kvm_uapi.h"
#include "memory/layout.h"
#include "memory/page.h"

namespace gmem::memory {
namespace {

Status CheckSizeAndFlags(uint64_t size_bytes, uint64_t flags) {
  if (size_bytes == 0 || !IsPageAligned(size_bytes)) {
    return InvalidArgument("guest_memfd size " + std::to_string(size_bytes) + " is not a positive multiple of 4096");
  }
  if ((flags & ~KnownGmemFlags()) != 0) {
    return InvalidArgument("unknown guest_memfd flags " + std::to_string(flags & ~KnownGmemFlags()));
  }
  return Status::Ok();
}

}  // namespace

Expected<GuestMemfd> GuestMemfd::Create(const Vm& vm, uint64_t size_bytes, uint64_t flags) {
  GMEM_RETURN_IF_ERROR(CheckSizeAndFlags(size_bytes, flags));
  // SAFETY: the kernel reads this struct; reserved words must be zero, hence `= {}`.
  uapi::CreateGuestMemfd req = {};
  req.size = size_bytes;
  req.flags = flags;
  int fd = ::ioctl(vm.fd(), KVM_CREATE_GUEST_MEMFD, &req);
  if (fd < 0) {
    return ErrnoStatus(Code::kKvm, "KVM_CREATE_GUEST_MEMFD(size " + std::to_string(size_bytes) + ", flags " +
                                       std::to_string(flags) + ")");
  }
  return GuestMemfd(UniqueFd(fd), size_bytes, flags);
}

Expected<GuestMemfd> GuestMemfd::Adopt(UniqueFd fd, uint64_t size_bytes, uint64_t flags) {
  GMEM_RETURN_IF_ERROR(CheckSizeAndFlags(size_bytes, flags));
  if (!fd.valid()) return InvalidArgument("adopt guest_memfd: no fd");
  const std::string where = "adopt guest_memfd (fd " + std::to_string(fd.get()) + ")";
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/self/fd/%d", fd.get());
  char link[256];
  ssize_t n = ::readlink(path, link, sizeof(link) - 1);
  if (n < 0) return ErrnoStatus(Code::kIo, where + ": readlink " + path);
  link[n] = '\0';
  if (std::string(link) != kGuestMemfdLinkName) {
    return InvalidArgument(where + ": fd is '" + link + "', not a guest_memfd (" + kGuestMemfdLinkName + ")");
  }
  struct stat st = {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(Code::kIo, where + ": fstat");
  if (static_cast<uint64_t>(st.st_size) != size_bytes) {
    return InvalidArgument(where + ": size is " + std::to_string(st.st_size) + " bytes, the sender said " +
                           std::to_string(size_bytes));
  }
  return GuestMemfd(std::move(fd), size_bytes, flags);
}

Expected<GuestMemfd> GuestMemfd::Duplicate() const {
  int fd = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(Code::kIo, "dup guest_memfd");
  return GuestMemfd(UniqueFd(fd), size_bytes_, flags_);
}

bool GuestMemfd::mappable() const { return (flags_ & GUEST_MEMFD_FLAG_MMAP) != 0; }
bool GuestMemfd::init_shared() const { return (flags_ & GUEST_MEMFD_FLAG_INIT_SHARED) != 0; }

Status GuestMemfd::PunchHole(uint64_t offset, uint64_t len) const {
  if (!IsPageAligned(offset) || !IsPageAligned(len) || offset > size_bytes_ || len > size_bytes_ - offset) {
    return InvalidArgument("punch hole [" + std::to_string(offset) + ", +" + std::to_string(len) +
                           ") is unaligned or outside the guest_memfd's " + std::to_string(size_bytes_) + " bytes");
  }
  if (len == 0) return Status::Ok();
  if (::fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, static_cast<off_t>(offset),
                  static_cast<off_t>(len)) != 0) {
    return ErrnoStatus(Code::kIo, "punch hole [" + std::to_string(offset) + ", +" + std::to_string(len) + ")");
  }
  return Status::Ok();
}

}  // namespace gmem::memory
