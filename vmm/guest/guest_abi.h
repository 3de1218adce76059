/* The contract between gmem-vmm and its freestanding guest program (vmm/guest/guest.c): guest
 * physical layout, the parameter and per-vCPU control pages, I/O ports and page markers.
 * Plain C so that both the guest (gcc -ffreestanding) and the VMM (C++) include it.
 * docs/control-protocol.md, "Guest ABI", describes the same layout for other VMMs.
 *
 * Guest physical memory (identity-mapped with 2 MiB pages by the VMM's page tables):
 *   0x000800  GDT (null, code64 0x08, data 0x10, TSS 0x18)     0x000900  TSS
 *   0x001000  PML4   0x002000  PDPT   0x003000  PDs (one per GiB, up to 8)
 *   0x00f000  struct gmem_guest_params (VMM writes before any vCPU runs)
 *   0x010000  struct gmem_guest_vcpu, one 4 KiB page per vCPU
 *   0x020000  guest code (linked here by guest.ld), at most 64 KiB
 *   0x030000  stacks, 16 KiB per vCPU
 *   0x080000  write log (test mode), split evenly between vCPUs
 *   0x100000  the guest's own record of its private pages: one bit per data page (256 KiB)
 *   0x140000  the agent area (docs/agent-protocol.md §2): mailbox 0x140000, bounce buffer
 *             0x180000..0x200000; always shared; the guest program never touches it
 *   0x200000  data pages: everything the workloads touch, up to the end of memory
 */
#ifndef GMEM_VMM_GUEST_GUEST_ABI_H_
#define GMEM_VMM_GUEST_GUEST_ABI_H_

#include <stdint.h>

#define GMEM_GUEST_ABI_VERSION 1u
#define GMEM_GUEST_PARAMS_MAGIC 0x31534d5250564d47ull /* "GMVPRMS1" */

#define GMEM_GUEST_GDT_GPA 0x800ull
#define GMEM_GUEST_TSS_GPA 0x900ull
#define GMEM_GUEST_PML4_GPA 0x1000ull
#define GMEM_GUEST_PDPT_GPA 0x2000ull
#define GMEM_GUEST_PD_GPA 0x3000ull
#define GMEM_GUEST_MAX_MEM_BYTES (8ull << 30) /* 8 PDs of 512 x 2 MiB */
#define GMEM_GUEST_PARAMS_GPA 0xf000ull
#define GMEM_GUEST_VCPU_GPA 0x10000ull
#define GMEM_GUEST_MAX_VCPUS 16u
#define GMEM_GUEST_CODE_GPA 0x20000ull
#define GMEM_GUEST_CODE_MAX_BYTES 0x10000ull
#define GMEM_GUEST_STACK_GPA 0x30000ull
#define GMEM_GUEST_STACK_BYTES 0x4000ull
#define GMEM_GUEST_LOG_GPA 0x80000ull
#define GMEM_GUEST_LOG_BYTES 0x80000ull
#define GMEM_GUEST_RECORD_GPA 0x100000ull
#define GMEM_GUEST_RECORD_BYTES 0x40000ull /* one bit per data page of 8 GiB fits */
#define GMEM_GUEST_AGENT_GPA 0x140000ull
#define GMEM_GUEST_AGENT_BYTES 0xc0000ull
#define GMEM_GUEST_DATA_GPA 0x200000ull
#define GMEM_GUEST_PAGE 4096ull

/* Selectors of the VMM's GDT. */
#define GMEM_GUEST_SEL_CODE 0x08u
#define GMEM_GUEST_SEL_DATA 0x10u
#define GMEM_GUEST_SEL_TSS 0x18u

/* Port I/O requests (OUT, 32-bit, value = vCPU id). The request's arguments live in the vCPU's
 * control page. */
#define GMEM_PORT_YIELD 0x10u /* step == budget: the VMM raises budget (rate limit) and re-enters */
#define GMEM_PORT_DONE 0x11u  /* the vCPU ran steps_target steps; never re-entered after this */
#define GMEM_PORT_PSC 0x12u   /* page-state change in psc_* (KVM_HC_MAP_GPA_RANGE arguments) */
#define GMEM_PORT_PANIC 0x1fu /* the guest found its state broken; panic_code says why */

/* Workloads. */
#define GMEM_WORKLOAD_DIRTY 1u
#define GMEM_WORKLOAD_CONVERT 2u
#define GMEM_WORKLOAD_IDLE 3u

/* KVM_HC_MAP_GPA_RANGE, as the guest puts it in psc_nr / psc_attrs. */
#define GMEM_HC_MAP_GPA_RANGE 12ull
#define GMEM_MAP_GPA_RANGE_ENCRYPTED 0x10ull /* -> private */
#define GMEM_MAP_GPA_RANGE_DECRYPTED 0x0ull  /* -> shared */

/* Page markers of the convert workload: the first 16 bytes of a page written while private
 * (shared), little-endian u64 words; 16 bytes derived from seed and gfn follow
 * (gmem_guest_marker_tail below). */
#define GMEM_MARKER_PRIVATE_LO 0x2d54494b4d454d47ull /* "GMEMKIT-" */
#define GMEM_MARKER_PRIVATE_HI 0x2145544156495250ull /* "PRIVATE!" */
#define GMEM_MARKER_SHARED_LO 0x2d54494b4d454d47ull  /* "GMEMKIT-" */
#define GMEM_MARKER_SHARED_HI 0x2121444552414853ull  /* "SHARED!!" */

/* Written by the VMM before any vCPU runs; read-only for the guest. */
struct gmem_guest_params {
  uint64_t magic;          /* GMEM_GUEST_PARAMS_MAGIC */
  uint32_t abi_version;    /* GMEM_GUEST_ABI_VERSION */
  uint32_t workload;       /* GMEM_WORKLOAD_* */
  uint64_t seed;
  uint64_t data_npages;    /* data pages from GMEM_GUEST_DATA_GPA */
  uint32_t nvcpus;
  uint32_t words_per_step; /* 1..8 words read, folded and rewritten per step */
  uint32_t convert_every;  /* convert workload: about one step in N is a conversion */
  uint32_t log_writes;     /* test mode: log the gfn of every page written */
};

/* One page per vCPU at GMEM_GUEST_VCPU_GPA + id * 4096. "host" fields are set by the VMM (the
 * initial values before the first run), "guest" fields by the guest. */
struct gmem_guest_vcpu {
  uint64_t steps_target;  /* host: steps this vCPU runs; 0 = forever */
  uint64_t budget;        /* host: the guest runs while step < budget, else OUT YIELD */
  uint64_t part_first;    /* host: first data page (index) of this vCPU's partition */
  uint64_t part_npages;   /* host: pages in the partition */
  uint64_t step;          /* guest: steps completed */
  uint64_t digest;        /* guest: running digest (initial value from the host) */
  uint64_t rng;           /* guest: generator state (initial value from the host) */
  uint64_t log_gpa;       /* host: this vCPU's slice of the write log */
  uint64_t log_capacity;  /* host: entries in the slice */
  uint64_t log_head;      /* guest: entries written (host resets it after reading) */
  uint64_t log_overflow;  /* guest: 1 when an entry did not fit */
  uint64_t psc_nr;        /* guest: GMEM_HC_MAP_GPA_RANGE */
  uint64_t psc_gpa;       /* guest: first byte, page aligned */
  uint64_t psc_npages;    /* guest: 4 KiB pages */
  uint64_t psc_attrs;     /* guest: GMEM_MAP_GPA_RANGE_{ENCRYPTED,DECRYPTED} */
  int64_t psc_ret;        /* host: 0 or -errno */
  uint64_t panic_code;    /* guest: why it panicked */
};

/* Shared by guest and VMM: the digest step and the generator. */
static inline uint64_t gmem_guest_mix(uint64_t d, uint64_t x) {
  d ^= x;
  d *= 0x9e3779b97f4a7c15ull;
  d ^= d >> 29;
  return d;
}

static inline uint64_t gmem_guest_splitmix(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Words 2 and 3 of a marker: derived from seed and gfn (the same for both attributes). */
static inline uint64_t gmem_guest_marker_tail(uint64_t seed, uint64_t gfn, unsigned i) {
  uint64_t s = seed ^ (gfn * 0xd6e8feb86659fd93ull) ^ (i + 1);
  return gmem_guest_splitmix(&s);
}

#endif /* GMEM_VMM_GUEST_GUEST_ABI_H_ */
