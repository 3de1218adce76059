#include "base/unique_fd.h"

#include <sys/mman.h>
#include <unistd.h>

namespace gmem {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) {
    // close() may report EINTR after releasing the fd on Linux; never retry it.
    ::close(fd_);
  }
  fd_ = fd;
}

void Mapping::Reset() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

}  // namespace gmem
