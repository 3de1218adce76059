#include "vmm/x86_boot.h"

#include <cstring>
#include <string>

#include "vmm/guest/guest_abi.h"
#include "vmm/guest_image.h"

namespace gmem::vmm {
namespace {

constexpr uint64_t kPteP = 1, kPteRw = 2, kPtePs = 0x80;
// Flat 64-bit code (L=1, P, DPL 0, type 0xb execute/read accessed) and data (G, D/B, type 3).
constexpr uint64_t kGdtCode64 = 0x00af9b000000ffffULL;
constexpr uint64_t kGdtData = 0x00cf93000000ffffULL;
constexpr uint32_t kTssLimit = 0x67;

void Store64(std::byte* boot, uint64_t gpa, uint64_t value) {
  // SAFETY: callers pass GPAs inside the boot area, which `boot` maps in full.
  std::memcpy(boot + gpa, &value, sizeof(value));
}

void WriteTables(std::byte* boot, uint64_t mem_bytes) {
  uint64_t ngib = (mem_bytes + (uint64_t{1} << 30) - 1) >> 30;
  Store64(boot, GMEM_GUEST_PML4_GPA, GMEM_GUEST_PDPT_GPA | kPteP | kPteRw);
  for (uint64_t g = 0; g < ngib; ++g) {
    uint64_t pd = GMEM_GUEST_PD_GPA + g * GMEM_GUEST_PAGE;
    Store64(boot, GMEM_GUEST_PDPT_GPA + 8 * g, pd | kPteP | kPteRw);
    for (uint64_t i = 0; i < 512; ++i) {
      uint64_t gpa = (g << 30) | (i << 21);
      if (gpa >= mem_bytes) break;
      Store64(boot, pd + 8 * i, gpa | kPteP | kPteRw | kPtePs);
    }
  }
  // GDT: null, code, data, then the 16-byte 64-bit TSS descriptor (type 0xb busy, present).
  const uint64_t tss = GMEM_GUEST_TSS_GPA;
  uint64_t tss_lo = kTssLimit | ((tss & 0xffffff) << 16) | (uint64_t{0x8b} << 40) | (((tss >> 24) & 0xff) << 56);
  Store64(boot, GMEM_GUEST_GDT_GPA + GMEM_GUEST_SEL_CODE, kGdtCode64);
  Store64(boot, GMEM_GUEST_GDT_GPA + GMEM_GUEST_SEL_DATA, kGdtData);
  Store64(boot, GMEM_GUEST_GDT_GPA + GMEM_GUEST_SEL_TSS, tss_lo);
  Store64(boot, GMEM_GUEST_GDT_GPA + GMEM_GUEST_SEL_TSS + 8, tss >> 32);
  // TSS: I/O map base past the limit (no I/O bitmap).
  Store64(boot, GMEM_GUEST_TSS_GPA + 0x60, uint64_t{kTssLimit + 1} << 48);
}

void WriteVcpuPage(std::byte* boot, const BootParams& p, uint64_t working_set, uint32_t id) {
  gmem_guest_vcpu v = {};
  v.steps_target = VcpuSteps(p.steps, p.nvcpus, id);
  // The guest stops at the budget and only then checks the target: keep budget <= target.
  v.budget = p.workload.rate != 0 ? 0 : v.steps_target != 0 ? v.steps_target : UINT64_MAX;
  v.part_first = working_set * id / p.nvcpus;
  v.part_npages = working_set * (id + 1) / p.nvcpus - v.part_first;
  v.digest = gmem_guest_mix(p.seed, id + 1);
  v.rng = p.seed ^ (0xa0761d6478bd642fULL * (id + 1));
  v.log_capacity = GMEM_GUEST_LOG_BYTES / 8 / p.nvcpus;
  v.log_gpa = GMEM_GUEST_LOG_GPA + id * v.log_capacity * 8;
  // SAFETY: vCPU pages lie at GMEM_GUEST_VCPU_GPA + id * 4096 with id < GMEM_GUEST_MAX_VCPUS, inside
  // the boot area; gmem_guest_vcpu is a C struct shared with the guest, not a wire format.
  std::memcpy(boot + GMEM_GUEST_VCPU_GPA + id * GMEM_GUEST_PAGE, &v, sizeof(v));
}

}  // namespace

uint64_t VcpuFieldGpa(uint32_t id, size_t offset) {
  return GMEM_GUEST_VCPU_GPA + uint64_t{id} * GMEM_GUEST_PAGE + offset;
}

uint64_t DataPages(uint64_t mem_bytes) {
  return mem_bytes > GMEM_GUEST_DATA_GPA ? (mem_bytes - GMEM_GUEST_DATA_GPA) / GMEM_GUEST_PAGE : 0;
}

uint64_t VcpuSteps(uint64_t total, uint32_t nvcpus, uint32_t id) {
  if (total == 0) return 0;
  return total / nvcpus + (id < total % nvcpus ? 1 : 0);
}

Status WriteBootArea(std::byte* boot, const BootParams& p) {
  uint64_t data_npages = DataPages(p.mem_bytes);
  uint64_t working_set = p.workload.WorkingSet(data_npages);
  if (p.mem_bytes > GMEM_GUEST_MAX_MEM_BYTES || data_npages == 0) {
    return InvalidArgument("guest memory of " + std::to_string(p.mem_bytes) + " bytes does not fit the guest ABI");
  }
  if (p.nvcpus == 0 || p.nvcpus > GMEM_GUEST_MAX_VCPUS || working_set < p.nvcpus) {
    return InvalidArgument("boot: " + std::to_string(p.nvcpus) + " vCPUs for a working set of " +
                           std::to_string(working_set) + " pages");
  }
  if (p.steps != 0 && p.steps < p.nvcpus) return InvalidArgument("boot: fewer steps than vCPUs");
  std::span<const std::byte> image = GuestImage();
  if (image.size() > GMEM_GUEST_CODE_MAX_BYTES) return InvalidArgument("boot: guest image too large");
  // SAFETY: the boot area is GMEM_GUEST_DATA_GPA bytes of host-writable guest memory.
  std::memset(boot, 0, GMEM_GUEST_DATA_GPA);
  WriteTables(boot, p.mem_bytes);
  std::memcpy(boot + GMEM_GUEST_CODE_GPA, image.data(), image.size());
  gmem_guest_params params = {};
  params.magic = GMEM_GUEST_PARAMS_MAGIC;
  params.abi_version = GMEM_GUEST_ABI_VERSION;
  params.workload = static_cast<uint32_t>(p.workload.kind);
  params.seed = p.seed;
  params.data_npages = data_npages;
  params.nvcpus = p.nvcpus;
  params.words_per_step = p.workload.words;
  params.convert_every = p.workload.convert_every;
  params.log_writes = p.workload.log_writes ? 1 : 0;
  std::memcpy(boot + GMEM_GUEST_PARAMS_GPA, &params, sizeof(params));
  for (uint32_t id = 0; id < p.nvcpus; ++id) WriteVcpuPage(boot, p, working_set, id);
  return Status::Ok();
}

void SetLongModeSregs(struct kvm_sregs& s) {
  struct kvm_segment code = {};
  code.base = 0;
  code.limit = 0xffffffff;
  code.selector = GMEM_GUEST_SEL_CODE;
  code.type = 11;  // execute/read, accessed
  code.present = 1;
  code.s = 1;
  code.l = 1;
  code.g = 1;
  struct kvm_segment data = code;
  data.selector = GMEM_GUEST_SEL_DATA;
  data.type = 3;  // read/write, accessed
  data.l = 0;
  data.db = 1;
  struct kvm_segment tr = {};
  tr.base = GMEM_GUEST_TSS_GPA;
  tr.limit = kTssLimit;
  tr.selector = GMEM_GUEST_SEL_TSS;
  tr.type = 11;  // 64-bit TSS, busy
  tr.present = 1;
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.tr = tr;
  s.gdt.base = GMEM_GUEST_GDT_GPA;
  s.gdt.limit = GMEM_GUEST_SEL_TSS + 16 - 1;
  s.idt.base = 0;
  s.idt.limit = 0;  // no IDT: any exception becomes a triple fault (KVM_EXIT_SHUTDOWN)
  s.cr3 = GMEM_GUEST_PML4_GPA;
  s.cr4 = 0x20 | 0x200 | 0x400;  // PAE | OSFXSR | OSXMMEXCPT
  s.cr0 = 0x80050033;            // PG | AM | WP | NE | ET | MP | PE
  s.efer = 0x500;                // LME | LMA
}

struct kvm_regs InitialRegs(uint32_t id) {
  struct kvm_regs r = {};
  r.rip = GMEM_GUEST_CODE_GPA;
  r.rsp = GMEM_GUEST_STACK_GPA + (uint64_t{id} + 1) * GMEM_GUEST_STACK_BYTES;
  r.rdi = id;
  r.rflags = 2;
  return r;
}

}  // namespace gmem::vmm
