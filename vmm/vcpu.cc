#include "vmm/vcpu.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "memory/kvm_uapi.h"

namespace gmem::vmm {

Expected<Vcpu> Vcpu::Create(const memory::KvmSystem& kvm, const memory::Vm& vm, uint32_t id) {
  int fd = ::ioctl(vm.fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) return ErrnoStatus(Code::kKvm, "KVM_CREATE_VCPU(" + std::to_string(id) + ")");
  UniqueFd owned(fd);
  GMEM_ASSIGN_OR_RETURN(size_t size, kvm.VcpuMmapSize());
  if (size < sizeof(struct kvm_run)) return Status(Code::kKvm, "KVM_GET_VCPU_MMAP_SIZE smaller than kvm_run");
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return ErrnoStatus(Code::kKvm, "mmap kvm_run of vCPU " + std::to_string(id));
  return Vcpu(id, std::move(owned), Mapping(addr, size));
}

int Vcpu::Run() { return ::ioctl(fd_.get(), KVM_RUN, 0) == 0 ? 0 : errno; }

void Vcpu::SetImmediateExit(bool on) {
  std::atomic_ref<__u8>(run()->immediate_exit).store(on ? 1 : 0, std::memory_order_seq_cst);
}

Expected<struct kvm_regs> Vcpu::GetRegs() const {
  // SAFETY: kvm_regs is filled by the kernel.
  struct kvm_regs regs = {};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &regs) != 0) return ErrnoStatus(Code::kKvm, "KVM_GET_REGS");
  return regs;
}

Status Vcpu::SetRegs(const struct kvm_regs& regs) {
  // SAFETY: kvm_regs is read by the kernel only.
  if (::ioctl(fd_.get(), KVM_SET_REGS, &regs) != 0) return ErrnoStatus(Code::kKvm, "KVM_SET_REGS");
  return Status::Ok();
}

Expected<struct kvm_sregs> Vcpu::GetSregs() const {
  // SAFETY: kvm_sregs is filled by the kernel.
  struct kvm_sregs sregs = {};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &sregs) != 0) return ErrnoStatus(Code::kKvm, "KVM_GET_SREGS");
  return sregs;
}

Status Vcpu::SetSregs(const struct kvm_sregs& sregs) {
  // SAFETY: kvm_sregs is read by the kernel only.
  if (::ioctl(fd_.get(), KVM_SET_SREGS, &sregs) != 0) return ErrnoStatus(Code::kKvm, "KVM_SET_SREGS");
  return Status::Ok();
}

}  // namespace gmem::vmm
