#pragma once
// GuestMemfd: an owned guest_memfd file (reference §1.2): the memory of one region. Created from
// a VM, or adopted from an fd that arrived over a socket. Move-only.
//
// A guest_memfd refuses read/write/pread/splice; the only way to its bytes is a MAP_SHARED
// mapping (GuestMemfdMapping). Its size is fixed at creation.

#include <cstdint>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "memory/vm.h"

namespace gmem::memory {

class GuestMemfd {
 public:
  // KVM_CREATE_GUEST_MEMFD on `vm`. size_bytes must be > 0 and a multiple of 4096; flags a
  // subset of GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED (kInvalidArgument before any
  // ioctl otherwise; kKvm if the kernel refuses).
  static Expected<GuestMemfd> Create(const Vm& vm, uint64_t size_bytes, uint64_t flags);

  // Takes ownership of `fd`, received with its size and creation flags (flags cannot be read
  // back from the kernel, so the sender's word is taken for them). Verifies that the fd is a
  // guest_memfd (/proc/self/fd/N reads "anon_inode:[kvm-gmem]") and that fstat's size equals
  // `size_bytes`; otherwise kInvalidArgument, and `fd` is closed.
  static Expected<GuestMemfd> Adopt(UniqueFd fd, uint64_t size_bytes, uint64_t flags);

  // A second owner of the same file (F_DUPFD_CLOEXEC).
  Expected<GuestMemfd> Duplicate() const;

  int fd() const { return fd_.get(); }
  uint64_t size_bytes() const { return size_bytes_; }
  uint64_t flags() const { return flags_; }
  bool mappable() const;     // GUEST_MEMFD_FLAG_MMAP
  bool init_shared() const;  // GUEST_MEMFD_FLAG_INIT_SHARED

  // fallocate(KEEP_SIZE | PUNCH_HOLE) of bytes [offset, offset + len): those pages read back as
  // zeros afterwards, in every mapping and in the guest. Both must be page aligned and inside the
  // file (kInvalidArgument); kIo if the kernel refuses.
  Status PunchHole(uint64_t offset, uint64_t len) const;

 private:
  GuestMemfd(UniqueFd fd, uint64_t size_bytes, uint64_t flags)
      : fd_(std::move(fd)), size_bytes_(size_bytes), flags_(flags) {}
  UniqueFd fd_;
  uint64_t size_bytes_ = 0;
  uint64_t flags_ = 0;
};

// The /proc/self/fd link text of a guest_memfd.
inline constexpr const char kGuestMemfdLinkName[] = "anon_inode:[kvm-gmem]";

}  // namespace gmem::memory
