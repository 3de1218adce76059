#pragma once
// Vm: a KVM VM fd, the owner of memslots and the target of VM-scoped capabilities.
// Move-only. Methods are thread-compatible; KVM itself serialises memslot updates.

#include <cstdint>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "memory/kvm_system.h"

namespace gmem::memory {

// One KVM_SET_USER_MEMORY_REGION2 request.
struct MemslotSpec {
  uint32_t slot = 0;   // (address space << 16) | id
  uint32_t flags = 0;  // KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_GUEST_MEMFD | ...
  uint64_t gpa = 0;
  uint64_t size_bytes = 0;               // 0 deletes the slot
  const void* userspace_addr = nullptr;  // always the guest_memfd mapping of the same offsets
  int gmem_fd = -1;                      // used with KVM_MEM_GUEST_MEMFD
  uint64_t gmem_offset = 0;
};

class Vm {
 public:
  // KVM_CREATE_VM with `type` (KVM_X86_DEFAULT_VM = 0 is the only type on this host).
  static Expected<Vm> Create(const KvmSystem& kvm, uint64_t type = 0);

  int fd() const { return fd_.get(); }
  uint64_t type() const { return type_; }

  // KVM_CHECK_EXTENSION on the VM fd (VM-type-specific answers).
  Expected<int64_t> CheckExtension(long cap) const;

  // KVM_ENABLE_CAP on the VM fd with args[0] = arg0. kKvm with the errno on failure.
  Status EnableCap(uint32_t cap, uint64_t arg0);

  // KVM_SET_USER_MEMORY_REGION2. kKvm with the errno on failure (EINVAL is how KVM refuses, e.g.,
  // KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES).
  Status SetMemslot(const MemslotSpec& spec);
  // Deletes `slot` (memory_size 0).
  Status DeleteMemslot(uint32_t slot);

 private:
  Vm(UniqueFd fd, uint64_t type) : fd_(std::move(fd)), type_(type) {}
  UniqueFd fd_;
  uint64_t type_ = 0;
};

}  // namespace gmem::memory
