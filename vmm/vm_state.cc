#include "vmm/vm_state.h"

#include <string>

#include "vmm/guest/guest_abi.h"

namespace gmem::vmm {
namespace {

void PutSegment(ByteWriter& w, const struct kvm_segment& s) {
  w.U64(s.base);
  w.U32(s.limit);
  w.U16(s.selector);
  for (uint8_t v : {s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl, s.unusable}) w.U8(v);
}

void GetSegment(ByteReader& r, struct kvm_segment& s) {
  s.base = r.U64("segment base");
  s.limit = r.U32("segment limit");
  s.selector = r.U16("segment selector");
  for (__u8* v : {&s.type, &s.present, &s.dpl, &s.db, &s.s, &s.l, &s.g, &s.avl, &s.unusable}) *v = r.U8("segment flags");
}

void PutRegs(ByteWriter& w, const struct kvm_regs& g) {
  for (__u64 v : {g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rsp, g.rbp, g.r8, g.r9, g.r10, g.r11, g.r12, g.r13,
                  g.r14, g.r15, g.rip, g.rflags}) {
    w.U64(v);
  }
}

void GetRegs(ByteReader& r, struct kvm_regs& g) {
  for (__u64* v : {&g.rax, &g.rbx, &g.rcx, &g.rdx, &g.rsi, &g.rdi, &g.rsp, &g.rbp, &g.r8, &g.r9, &g.r10, &g.r11,
                   &g.r12, &g.r13, &g.r14, &g.r15, &g.rip, &g.rflags}) {
    *v = r.U64("register");
  }
}

void PutSregs(ByteWriter& w, const struct kvm_sregs& s) {
  for (const struct kvm_segment* seg : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt}) PutSegment(w, *seg);
  for (const struct kvm_dtable* t : {&s.gdt, &s.idt}) {
    w.U64(t->base);
    w.U16(t->limit);
  }
  for (__u64 v : {s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer, s.apic_base}) w.U64(v);
  for (__u64 v : s.interrupt_bitmap) w.U64(v);
}

void GetSregs(ByteReader& r, struct kvm_sregs& s) {
  for (struct kvm_segment* seg : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt}) GetSegment(r, *seg);
  for (struct kvm_dtable* t : {&s.gdt, &s.idt}) {
    t->base = r.U64("descriptor table base");
    t->limit = r.U16("descriptor table limit");
  }
  for (__u64* v : {&s.cr0, &s.cr2, &s.cr3, &s.cr4, &s.cr8, &s.efer, &s.apic_base}) *v = r.U64("control register");
  for (__u64& v : s.interrupt_bitmap) v = r.U64("interrupt bitmap");
}

Status DecodeConfig(ByteReader& r, VmState& st, uint32_t& nvcpus, uint32_t& nregions) {
  uint8_t kind = r.U8("workload kind");
  if (kind < 1 || kind > 3) return CorruptError("state: unknown workload kind " + std::to_string(kind));
  st.workload.kind = static_cast<WorkloadKind>(kind);
  st.workload.rate = r.U64("rate");
  st.workload.pages = r.U64("pages");
  st.workload.words = r.U32("words");
  st.workload.convert_every = r.U32("every");
  st.workload.log_writes = r.U8("log") != 0;
  if (st.workload.words < 1 || st.workload.words > 8 || st.workload.convert_every < 1) {
    return CorruptError("state: workload options out of range");
  }
  st.seed = r.U64("seed");
  st.steps = r.U64("steps");
  uint8_t coco = r.U8("coco"), contents = r.U8("contents");
  if (coco < 1 || coco > 2) return CorruptError("state: unknown coco mode " + std::to_string(coco));
  if (contents < 1 || contents > 3) return CorruptError("state: unknown conversion contents " + std::to_string(contents));
  st.coco = static_cast<CocoMode>(coco);
  st.contents = static_cast<memory::ConversionContent>(contents);
  nregions = r.U32("region count");
  nvcpus = r.U32("vcpu count");
  if (nregions < 1 || nregions > 16) return CorruptError("state: " + std::to_string(nregions) + " regions");
  if (nvcpus < 1 || nvcpus > GMEM_GUEST_MAX_VCPUS) return CorruptError("state: " + std::to_string(nvcpus) + " vCPUs");
  return r.status();
}

}  // namespace

Bytes EncodeVmState(const VmState& st) {
  Bytes out;
  ByteWriter w(out);
  w.U64(kVmStateMagic);
  w.U16(kVmStateMajor);
  w.U16(kVmStateMinor);
  w.U32(0);  // reserved
  w.U8(static_cast<uint8_t>(st.workload.kind));
  w.U64(st.workload.rate);
  w.U64(st.workload.pages);
  w.U32(st.workload.words);
  w.U32(st.workload.convert_every);
  w.U8(st.workload.log_writes ? 1 : 0);
  w.U64(st.seed);
  w.U64(st.steps);
  w.U8(static_cast<uint8_t>(st.coco));
  w.U8(static_cast<uint8_t>(st.contents));
  w.U32(static_cast<uint32_t>(st.layout.regions().size()));
  w.U32(static_cast<uint32_t>(st.vcpus.size()));
  for (const memory::Region& r : st.layout.regions()) {
    w.U32(r.id);
    w.U64(r.gpa_base);
    w.U64(r.size_bytes);
    w.U64(r.gmem_offset);
    w.U32(r.page_size);
    w.U64(r.gmem_flags);
  }
  for (const VcpuState& v : st.vcpus) {
    w.U8(v.finished ? 1 : 0);
    PutRegs(w, v.regs);
    PutSregs(w, v.sregs);
  }
  return out;
}

Expected<VmState> DecodeVmState(ByteSpan blob) {
  ByteReader r(blob);
  if (r.U64("magic") != kVmStateMagic) return CorruptError("state: bad magic (not a gmem-vmm state blob)");
  uint16_t major = r.U16("major"), minor = r.U16("minor");
  if (!r.ok()) return r.status();
  if (major != kVmStateMajor || minor > kVmStateMinor) {
    return IncompatibleError("state: version " + std::to_string(major) + "." + std::to_string(minor) +
                             " (this VMM reads 1.0)");
  }
  if (r.U32("reserved") != 0) return CorruptError("state: reserved field is not zero");
  VmState st;
  uint32_t nvcpus = 0, nregions = 0;
  GMEM_RETURN_IF_ERROR(DecodeConfig(r, st, nvcpus, nregions));
  for (uint32_t i = 0; i < nregions; ++i) {
    memory::Region region;
    region.id = r.U32("region id");
    region.gpa_base = r.U64("region gpa");
    region.size_bytes = r.U64("region size");
    region.gmem_offset = r.U64("region gmem offset");
    region.page_size = r.U32("region page size");
    region.gmem_flags = r.U64("region flags");
    st.layout.Add(region);
  }
  for (uint32_t i = 0; i < nvcpus; ++i) {
    VcpuState v;
    v.finished = r.U8("finished") != 0;
    GetRegs(r, v.regs);
    GetSregs(r, v.sregs);
    st.vcpus.push_back(v);
  }
  if (!r.ok()) return r.status().WithContext("state");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("state"));
  Status layout_ok = st.layout.Validate();
  if (!layout_ok.ok()) return CorruptError("state: " + layout_ok.message());
  return st;
}

}  // namespace gmem::vmm
