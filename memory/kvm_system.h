#pragma once
// KvmSystem: the open /dev/kvm fd, through which VMs are created and system capabilities read.
// Move-only; thread-compatible (const methods may be called concurrently).

#include <cstdint>
#include <string>

#include "base/expected.h"
#include "base/unique_fd.h"

namespace gmem::memory {

class KvmSystem {
 public:
  // Opens `path` (O_RDWR | O_CLOEXEC) and checks KVM_GET_API_VERSION == 12. A missing device is
  // kUnsupported ("no /dev/kvm"), a wrong API version kIncompatible, other failures kIo.
  static Expected<KvmSystem> Open(const std::string& path = "/dev/kvm");

  // True when `path` exists (tests use it to decide whether to skip).
  static bool Available(const std::string& path = "/dev/kvm");

  int fd() const { return fd_.get(); }

  // KVM_CHECK_EXTENSION on the system fd: the capability's value (0 = absent).
  Expected<int64_t> CheckExtension(long cap) const;

  // KVM_GET_VCPU_MMAP_SIZE: bytes to mmap from a vCPU fd for struct kvm_run.
  Expected<size_t> VcpuMmapSize() const;

 private:
  explicit KvmSystem(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace gmem::memory
