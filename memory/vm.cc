#include "memory/vm.h"

#include <sys/ioctl.h>

#include <cstdint>
#include <string>

#include "memory/kvm_uapi.h"

namespace gmem::memory {

Expected<Vm> Vm::Create(const KvmSystem& kvm, uint64_t type) {
  int fd = ::ioctl(kvm.fd(), KVM_CREATE_VM, static_cast<unsigned long>(type));
  if (fd < 0) return ErrnoStatus(Code::kKvm, "KVM_CREATE_VM(type " + std::to_string(type) + ")");
  return Vm(UniqueFd(fd), type);
}

Expected<int64_t> Vm::CheckExtension(long cap) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  if (r < 0) return ErrnoStatus(Code::kKvm, "KVM_CHECK_EXTENSION(" + std::to_string(cap) + ") on VM");
  return int64_t{r};
}

Status Vm::EnableCap(uint32_t cap, uint64_t arg0) {
  // SAFETY: kvm_enable_cap is a plain struct read by the kernel; unused args stay zero.
  struct kvm_enable_cap req = {};
  req.cap = cap;
  req.args[0] = arg0;
  if (::ioctl(fd_.get(), KVM_ENABLE_CAP, &req) != 0) {
    return ErrnoStatus(Code::kKvm, "KVM_ENABLE_CAP(" + std::to_string(cap) + ", " + std::to_string(arg0) + ")");
  }
  return Status::Ok();
}

Status Vm::SetMemslot(const MemslotSpec& spec) {
  // SAFETY: region2 is read by the kernel only; pad fields must be zero, hence `= {}`. KVM keeps
  // userspace_addr; the caller keeps that mapping alive while the slot exists.
  uapi::UserspaceMemoryRegion2 region = {};
  region.slot = spec.slot;
  region.flags = spec.flags;
  region.guest_phys_addr = spec.gpa;
  region.memory_size = spec.size_bytes;
  region.userspace_addr = reinterpret_cast<uintptr_t>(spec.userspace_addr);
  region.guest_memfd_offset = spec.gmem_offset;
  region.guest_memfd = spec.gmem_fd < 0 ? 0 : static_cast<uint32_t>(spec.gmem_fd);
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION2, &region) != 0) {
    return ErrnoStatus(Code::kKvm, "KVM_SET_USER_MEMORY_REGION2(slot " + std::to_string(spec.slot) + ", flags " +
                                       std::to_string(spec.flags) + ")");
  }
  return Status::Ok();
}

Status Vm::DeleteMemslot(uint32_t slot) {
  MemslotSpec spec;
  spec.slot = slot;
  return SetMemslot(spec);
}

}  // namespace gmem::memory
