#pragma once
// The KVM uAPI that gmemkit uses beyond what Debian's Linux 6.1 headers offer: guest_memfd,
// KVM_SET_USER_MEMORY_REGION2, memory attributes (per VM, and the proposed per-guest_memfd
// KVM_SET_MEMORY_ATTRIBUTES2), the memory-fault and hypercall exits, and the dirty log/ring.
//
// This is the ONLY place in the project with these definitions (STYLE.md, "KVM stays in its
// rooms"). Every value below was checked against /work/shared/reference/kvm-guest-memfd.md
// ("the reference"); each group names the section and the upstream file it comes from.
//
// Macros are guarded with #ifndef so this header also builds against newer kernel headers that
// already define them; the static_asserts at the bottom then check that those headers agree with
// the reference. Structs the kernel headers may or may not have are declared here under our own
// names (namespace gmem::memory::uapi) with their sizes and offsets asserted, so there is never a
// redefinition and the layout is pinned either way.

#include <linux/kvm.h>
#include <linux/kvm_para.h>

#include <cstddef>
#include <cstdint>

namespace gmem::memory::uapi {

// ---- guest_memfd creation [6.18] --------------------------------------------------------------
// Reference §1.2; include/uapi/linux/kvm.h (Linux 6.18).
struct CreateGuestMemfd {  // == struct kvm_create_guest_memfd
  uint64_t size;           // > 0, multiple of 4096, fixed for the life of the file
  uint64_t flags;          // GUEST_MEMFD_FLAG_*
  uint64_t reserved[6];    // must be 0
};
static_assert(sizeof(CreateGuestMemfd) == 64);

// ---- memslots [6.18, since 6.8] ----------------------------------------------------------------
// Reference §1.3; include/uapi/linux/kvm.h (Linux 6.18).
struct UserspaceMemoryRegion2 {  // == struct kvm_userspace_memory_region2
  uint32_t slot;                 // (address space << 16) | slot id
  uint32_t flags;                // KVM_MEM_*
  uint64_t guest_phys_addr;
  uint64_t memory_size;         // 0 deletes the slot
  uint64_t userspace_addr;      // host mapping of the same memory (the guest_memfd mmap)
  uint64_t guest_memfd_offset;  // page aligned
  uint32_t guest_memfd;         // fd, used with KVM_MEM_GUEST_MEMFD
  uint32_t pad1;
  uint64_t pad2[14];
};
static_assert(sizeof(UserspaceMemoryRegion2) == 160);
static_assert(offsetof(UserspaceMemoryRegion2, guest_memfd_offset) == 32);
static_assert(offsetof(UserspaceMemoryRegion2, guest_memfd) == 40);

// ---- per-VM memory attributes [6.18, since 6.8] ------------------------------------------------
// Reference §1.4; include/uapi/linux/kvm.h (Linux 6.18).
struct MemoryAttributes {  // == struct kvm_memory_attributes
  uint64_t address;
  uint64_t size;
  uint64_t attributes;  // KVM_MEMORY_ATTRIBUTE_PRIVATE or 0 (shared)
  uint64_t flags;       // must be 0
};
static_assert(sizeof(MemoryAttributes) == 32);

// ---- per-guest_memfd memory attributes [PROPOSED, not in 6.18] ---------------------------------
// Reference §2.2; "[PATCH v7 00/42] guest_memfd: In-place conversion support" (Ackerley Tng,
// 2026-05-22), Documentation/virt/kvm/api.rst §4.145. A guest_memfd ioctl. Its capability number
// is NOT stable (v7: 249, v8: 250): detect it by issuing the ioctl (ENOTTY = absent), never by
// capability number.
struct MemoryAttributes2 {  // == struct kvm_memory_attributes2
  uint64_t offset;          // bytes into the guest_memfd (the VM-ioctl flavour calls it address)
  uint64_t size;
  uint64_t attributes;    // KVM_MEMORY_ATTRIBUTE_PRIVATE or 0 (shared)
  uint64_t flags;         // must be 0 (content modes were dropped in v6)
  uint64_t error_offset;  // out: the page with unexpected references, on EAGAIN
  uint64_t reserved[11];  // must be 0
};
static_assert(sizeof(MemoryAttributes2) == 128);
static_assert(offsetof(MemoryAttributes2, attributes) == offsetof(MemoryAttributes, attributes));
static_assert(offsetof(MemoryAttributes2, flags) == offsetof(MemoryAttributes, flags));
static_assert(offsetof(MemoryAttributes2, error_offset) == 32);

// ---- KVM_EXIT_MEMORY_FAULT payload [6.18, since 6.8] -------------------------------------------
// Reference §1.6; include/uapi/linux/kvm.h (Linux 6.18): kvm_run.memory_fault, in the exit union.
struct MemoryFaultExit {
  uint64_t flags;  // KVM_MEMORY_EXIT_FLAG_PRIVATE
  uint64_t gpa;
  uint64_t size;  // 0 = unknown
};
static_assert(sizeof(MemoryFaultExit) == 24);
// Offset of the exit union (and so of MemoryFaultExit) in struct kvm_run on x86-64 (reference §1.6,
// measured by probes/p0_caps.c).
inline constexpr size_t kKvmRunExitUnionOffset = 32;

// ---- pre-fault [6.18, since 6.10] --------------------------------------------------------------
// Reference §1.10; include/uapi/linux/kvm.h (Linux 6.18).
struct PreFaultMemory {  // == struct kvm_pre_fault_memory
  uint64_t gpa;
  uint64_t size;
  uint64_t flags;
  uint64_t padding[5];
};
static_assert(sizeof(PreFaultMemory) == 64);

}  // namespace gmem::memory::uapi

// ---- capabilities [6.18] -----------------------------------------------------------------------
// Reference §1.1 (table "Capabilities and numbers"); include/uapi/linux/kvm.h (Linux 6.18).
#ifndef KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2
#define KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 168
#endif
#ifndef KVM_CAP_DIRTY_LOG_RING
#define KVM_CAP_DIRTY_LOG_RING 192
#endif
#ifndef KVM_CAP_EXIT_HYPERCALL
#define KVM_CAP_EXIT_HYPERCALL 201
#endif
#ifndef KVM_CAP_DIRTY_LOG_RING_ACQ_REL
#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223
#endif
#ifndef KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP
#define KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP 225
#endif
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236
#endif
// Was KVM_CAP_GUEST_MEMFD_MMAP with the same number before 6.18 final ("[PATCH v2 01/13] KVM:
// Rework KVM_CAP_GUEST_MEMFD_MMAP into KVM_CAP_GUEST_MEMFD_FLAGS"); returns the GUEST_MEMFD_FLAG_*
// bits the kernel accepts.
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#define KVM_CAP_GUEST_MEMFD_FLAGS 244
#endif

// ---- guest_memfd creation [6.18] ---------------------------------------------------------------
// Reference §1.2; include/uapi/linux/kvm.h (Linux 6.18). A VM ioctl returning the new fd.
#ifndef KVM_CREATE_GUEST_MEMFD
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, ::gmem::memory::uapi::CreateGuestMemfd)
#endif
#ifndef GUEST_MEMFD_FLAG_MMAP
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)  // the fd may be mmap()ed (MAP_SHARED only)
#endif
#ifndef GUEST_MEMFD_FLAG_INIT_SHARED
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)  // memory starts shared: host faults allowed
#endif

// ---- memslots [6.18, since 6.8] ----------------------------------------------------------------
// Reference §1.3; include/uapi/linux/kvm.h (Linux 6.18).
#ifndef KVM_SET_USER_MEMORY_REGION2
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, ::gmem::memory::uapi::UserspaceMemoryRegion2)
#endif
#ifndef KVM_MEM_LOG_DIRTY_PAGES
#define KVM_MEM_LOG_DIRTY_PAGES (1UL << 0)
#endif
#ifndef KVM_MEM_READONLY
#define KVM_MEM_READONLY (1UL << 1)
#endif
#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#endif

// ---- memory attributes [6.18 per VM; PROPOSED per guest_memfd] ---------------------------------
// Reference §1.4 (per VM, include/uapi/linux/kvm.h 6.18) and §2.2 (per guest_memfd, v7 series).
// Both share minor 0xd2; direction and size make the numbers differ.
#ifndef KVM_SET_MEMORY_ATTRIBUTES
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, ::gmem::memory::uapi::MemoryAttributes)
#endif
#ifndef KVM_SET_MEMORY_ATTRIBUTES2
#define KVM_SET_MEMORY_ATTRIBUTES2 _IOWR(KVMIO, 0xd2, ::gmem::memory::uapi::MemoryAttributes2)
#endif
#ifndef KVM_MEMORY_ATTRIBUTE_PRIVATE
#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
#endif

// ---- VM types (x86) [6.18] ---------------------------------------------------------------------
// Reference §1.5; arch/x86/include/uapi/asm/kvm.h (Linux 6.18). KVM_CAP_VM_TYPES is a mask of
// (1 << type).
#ifndef KVM_X86_DEFAULT_VM
#define KVM_X86_DEFAULT_VM 0
#endif
#ifndef KVM_X86_SW_PROTECTED_VM
#define KVM_X86_SW_PROTECTED_VM 1
#endif
#ifndef KVM_X86_SEV_VM
#define KVM_X86_SEV_VM 2
#endif
#ifndef KVM_X86_SEV_ES_VM
#define KVM_X86_SEV_ES_VM 3
#endif
#ifndef KVM_X86_SNP_VM
#define KVM_X86_SNP_VM 4
#endif
#ifndef KVM_X86_TDX_VM
#define KVM_X86_TDX_VM 5
#endif

// ---- KVM_EXIT_MEMORY_FAULT [6.18, since 6.8] ---------------------------------------------------
// Reference §1.6; include/uapi/linux/kvm.h (Linux 6.18). KVM_RUN returns -1 with errno EFAULT or
// EHWPOISON; the payload is uapi::MemoryFaultExit at kKvmRunExitUnionOffset.
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif

// ---- page-state changes: KVM_HC_MAP_GPA_RANGE -> KVM_EXIT_HYPERCALL [6.18] ---------------------
// Reference §1.7; include/uapi/linux/kvm_para.h, arch/x86/include/uapi/asm/kvm_para.h and
// include/uapi/linux/kvm.h (Linux 6.18). Enable with KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL,
// args[0] = 1 << KVM_HC_MAP_GPA_RANGE). Exit: hypercall.nr = 12, args[0] = gpa, args[1] = number of
// 4 KiB pages, args[2] = attributes (ENC_STAT | PAGE_SZ); userspace answers in hypercall.ret.
#ifndef KVM_EXIT_HYPERCALL
#define KVM_EXIT_HYPERCALL 3
#endif
#ifndef KVM_HC_MAP_GPA_RANGE
#define KVM_HC_MAP_GPA_RANGE 12
#endif
#ifndef KVM_MAP_GPA_RANGE_PAGE_SZ_4K
#define KVM_MAP_GPA_RANGE_PAGE_SZ_4K 0
#endif
#ifndef KVM_MAP_GPA_RANGE_PAGE_SZ_2M
#define KVM_MAP_GPA_RANGE_PAGE_SZ_2M (1 << 0)
#endif
#ifndef KVM_MAP_GPA_RANGE_PAGE_SZ_1G
#define KVM_MAP_GPA_RANGE_PAGE_SZ_1G (1 << 1)
#endif
#ifndef KVM_MAP_GPA_RANGE_ENC_STAT
#define KVM_MAP_GPA_RANGE_ENC_STAT(n) ((n) << 4)
#endif
#ifndef KVM_MAP_GPA_RANGE_ENCRYPTED
#define KVM_MAP_GPA_RANGE_ENCRYPTED KVM_MAP_GPA_RANGE_ENC_STAT(1)  // -> private
#endif
#ifndef KVM_MAP_GPA_RANGE_DECRYPTED
#define KVM_MAP_GPA_RANGE_DECRYPTED KVM_MAP_GPA_RANGE_ENC_STAT(0)  // -> shared
#endif
#ifndef KVM_EXIT_HYPERCALL_LONG_MODE
#define KVM_EXIT_HYPERCALL_LONG_MODE (1ULL << 0)
#endif
#ifndef MSR_KVM_MIGRATION_CONTROL
#define MSR_KVM_MIGRATION_CONTROL 0x4b564d08
#endif
#ifndef KVM_MIGRATION_READY
#define KVM_MIGRATION_READY (1 << 0)
#endif

// ---- dirty log (bitmap) and dirty ring [6.18; present since 5.x] -------------------------------
// Reference §4.1; include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h (Linux 6.18).
// Bitmap: KVM_GET_DIRTY_LOG, and with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled, KVM_CLEAR_DIRTY_LOG.
// Ring: enable KVM_CAP_DIRTY_LOG_RING[_ACQ_REL] (args[0] = ring bytes, power of two) before
// creating vCPUs; each vCPU's ring of struct kvm_dirty_gfn is mmap()ed from the vCPU fd at
// KVM_DIRTY_LOG_PAGE_OFFSET pages; harvested entries get KVM_DIRTY_GFN_F_RESET (store-release),
// then KVM_RESET_DIRTY_RINGS on the VM fd.
#ifndef KVM_CLEAR_DIRTY_LOG
#define KVM_CLEAR_DIRTY_LOG _IOWR(KVMIO, 0xc0, struct kvm_clear_dirty_log)
#endif
#ifndef KVM_RESET_DIRTY_RINGS
#define KVM_RESET_DIRTY_RINGS _IO(KVMIO, 0xc7)
#endif
#ifndef KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE
#define KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (1 << 0)
#endif
#ifndef KVM_DIRTY_LOG_INITIALLY_SET
#define KVM_DIRTY_LOG_INITIALLY_SET (1 << 1)
#endif
#ifndef KVM_DIRTY_GFN_F_DIRTY
#define KVM_DIRTY_GFN_F_DIRTY (1U << 0)
#endif
#ifndef KVM_DIRTY_GFN_F_RESET
#define KVM_DIRTY_GFN_F_RESET (1U << 1)
#endif
#ifndef KVM_EXIT_DIRTY_RING_FULL
#define KVM_EXIT_DIRTY_RING_FULL 31
#endif

// ---- pre-fault [6.18, since 6.10] --------------------------------------------------------------
// Reference §1.10; include/uapi/linux/kvm.h (Linux 6.18). A vCPU ioctl.
#ifndef KVM_PRE_FAULT_MEMORY
#define KVM_PRE_FAULT_MEMORY _IOWR(KVMIO, 0xd5, ::gmem::memory::uapi::PreFaultMemory)
#endif

// ---- checks against the reference ---------------------------------------------------------------
// The ioctl numbers, whoever defined them, must be the x86-64 values of reference §1.10.
static_assert(KVM_CREATE_GUEST_MEMFD == 0xc040aed4u);
static_assert(KVM_SET_USER_MEMORY_REGION2 == 0x40a0ae49u);
static_assert(KVM_SET_MEMORY_ATTRIBUTES == 0x4020aed2u);
static_assert(KVM_SET_MEMORY_ATTRIBUTES2 == 0xc080aed2u);
static_assert(KVM_PRE_FAULT_MEMORY == 0xc040aed5u);
static_assert(KVM_CAP_GUEST_MEMFD_FLAGS == 244);
static_assert(KVM_CAP_MEMORY_ATTRIBUTES == 233);
static_assert(KVM_CAP_GUEST_MEMFD == 234);
static_assert(KVM_CAP_EXIT_HYPERCALL == 201);
static_assert(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 == 168);
static_assert(KVM_CAP_DIRTY_LOG_RING == 192 && KVM_CAP_DIRTY_LOG_RING_ACQ_REL == 223);
static_assert(KVM_HC_MAP_GPA_RANGE == 12);
static_assert(KVM_MAP_GPA_RANGE_ENCRYPTED == 0x10 && KVM_MAP_GPA_RANGE_DECRYPTED == 0);
static_assert(KVM_EXIT_MEMORY_FAULT == 39 && KVM_EXIT_HYPERCALL == 3 && KVM_EXIT_DIRTY_RING_FULL == 31);
static_assert(KVM_DIRTY_LOG_PAGE_OFFSET == 64, "x86-64 dirty ring offset (reference §4.1)");
static_assert(sizeof(struct kvm_dirty_gfn) == 16);
static_assert(sizeof(struct kvm_clear_dirty_log) == 24);
static_assert(sizeof(struct kvm_dirty_log) == 16);
static_assert(offsetof(struct kvm_run, hw) == gmem::memory::uapi::kKvmRunExitUnionOffset);
