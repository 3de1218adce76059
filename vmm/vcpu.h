#pragma once
// Vcpu: one KVM vCPU fd and its mmap()ed struct kvm_run. Move-only.
// Thread-compatible: one thread runs it (Run); register access from another thread is safe only
// while that thread is not inside Run (the VMM's pause protocol guarantees it).

#include <linux/kvm.h>

#include <cstdint>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "memory/kvm_system.h"
#include "memory/vm.h"

namespace gmem::vmm {

class Vcpu {
 public:
  // KVM_CREATE_VCPU(id) on `vm` and maps its kvm_run.
  static Expected<Vcpu> Create(const memory::KvmSystem& kvm, const memory::Vm& vm, uint32_t id);

  uint32_t id() const { return id_; }
  int fd() const { return fd_.get(); }
  struct kvm_run* run() const { return reinterpret_cast<struct kvm_run*>(run_.data()); }

  // KVM_RUN. Returns 0, or the errno it failed with (EINTR after a signal or immediate_exit;
  // EFAULT/EHWPOISON with exit_reason KVM_EXIT_MEMORY_FAULT).
  int Run();

  // Sets kvm_run.immediate_exit (atomically: other threads set it to stop a running vCPU).
  void SetImmediateExit(bool on);

  Expected<struct kvm_regs> GetRegs() const;
  Status SetRegs(const struct kvm_regs& regs);
  Expected<struct kvm_sregs> GetSregs() const;
  Status SetSregs(const struct kvm_sregs& sregs);

 private:
  Vcpu(uint32_t id, UniqueFd fd, Mapping run) : id_(id), fd_(std::move(fd)), run_(std::move(run)) {}
  uint32_t id_;
  UniqueFd fd_;
  Mapping run_;
};

}  // namespace gmem::vmm
