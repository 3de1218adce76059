#pragma once
// Booting the guest program: what the VMM lays down in the boot area (guest-physical [0, 2 MiB),
// vmm/guest/guest_abi.h) before any vCPU runs — GDT and TSS, identity-mapping page tables, the
// code, the parameter page and one control page per vCPU — and the vCPU registers that enter
// 64-bit long mode directly (no real-mode trampoline: CR0/CR4/EFER, CS.L and the hidden segment
// state are set through KVM_SET_SREGS, as kvm selftests and kvmtool do).

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>

#include "base/status.h"
#include "vmm/workload.h"

namespace gmem::vmm {

struct BootParams {
  uint64_t mem_bytes = 0;  // guest-physical [0, mem_bytes) is RAM
  uint32_t nvcpus = 1;
  WorkloadSpec workload;
  uint64_t seed = 0;
  uint64_t steps = 0;  // total over all vCPUs (0 = forever)
};

// Writes the whole boot area at `boot` (the host view of guest-physical [0, GMEM_GUEST_DATA_GPA),
// which must be writable): zeros first, then the structures above. kInvalidArgument if the
// parameters do not fit the guest ABI (memory, vCPUs, working set).
Status WriteBootArea(std::byte* boot, const BootParams& params);

// The number of data pages for `mem_bytes` of RAM.
uint64_t DataPages(uint64_t mem_bytes);

// Steps that vCPU `id` of `nvcpus` runs out of `total` (0 = forever).
uint64_t VcpuSteps(uint64_t total, uint32_t nvcpus, uint32_t id);

// The guest-physical address of the field at `offset` (offsetof(gmem_guest_vcpu, ...)) of vCPU
// `id`'s control page.
uint64_t VcpuFieldGpa(uint32_t id, size_t offset);

// 64-bit long mode: CR0 = PG|WP|NE|ET|MP|PE (+AM), CR4 = PAE|OSFXSR|OSXMMEXCPT, EFER = LME|LMA,
// CR3 = the PML4, flat code/data segments of the VMM's GDT, the TSS in TR. Fields of `sregs` not
// named here keep the values KVM_GET_SREGS returned.
void SetLongModeSregs(struct kvm_sregs& sregs);

// rip = the guest entry, rsp = vCPU `id`'s stack top, rdi = id, rflags = 2 (interrupts off).
struct kvm_regs InitialRegs(uint32_t id);

}  // namespace gmem::vmm
