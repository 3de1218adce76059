#include "memory/kvm_system.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "memory/kvm_uapi.h"

namespace gmem::memory {

Expected<KvmSystem> KvmSystem::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return ErrnoStatus(Code::kUnsupported, "no " + path + " (KVM not available)");
    return ErrnoStatus(Code::kIo, "open " + path);
  }
  UniqueFd owned(fd);
  int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version < 0) return ErrnoStatus(Code::kKvm, "KVM_GET_API_VERSION on " + path);
  if (version != KVM_API_VERSION) {
    return Status(Code::kIncompatible,
                  path + ": KVM API version " + std::to_string(version) + ", need " + std::to_string(KVM_API_VERSION));
  }
  return KvmSystem(std::move(owned));
}

bool KvmSystem::Available(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

Expected<int64_t> KvmSystem::CheckExtension(long cap) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  if (r < 0) return ErrnoStatus(Code::kKvm, "KVM_CHECK_EXTENSION(" + std::to_string(cap) + ") on /dev/kvm");
  return int64_t{r};
}

Expected<size_t> KvmSystem::VcpuMmapSize() const {
  int r = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (r <= 0) return ErrnoStatus(Code::kKvm, "KVM_GET_VCPU_MMAP_SIZE");
  return static_cast<size_t>(r);
}

}  // namespace gmem::memory
