#include "tests/memory/test_vm.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "memory/kvm_dirty_bitmap_source.h"
#include "memory/kvm_dirty_ring.h"
#include "memory/kvm_uapi.h"

namespace gmem::memory::testing {
namespace {

constexpr uint64_t kPml4Gpa = 0x1000;
constexpr uint64_t kPdptGpa = 0x2000;
constexpr uint64_t kPdGpa = 0x3000;
constexpr uint64_t kCodeGpa = 0x10000;
constexpr uint64_t kListGpa = 0x20000;
constexpr uint64_t kMaxListEntries = (TestVm::kBootBytes - kListGpa) / sizeof(uint64_t);
constexpr uint16_t kDonePort = 0x10;

// The guest, assembled with `as --64` and `objcopy -O binary -j .text`:
//   start:  test %rcx, %rcx        ; rsi = list of GPAs, rcx = count, rax = first value
//           jz   done
//   loop:   mov  (%rsi), %rdi
//           mov  %rax, (%rdi)       ; store the value at the listed GPA
//           add  $8, %rsi
//           inc  %rax
//           dec  %rcx
//           jnz  loop
//   done:   mov  $0x10, %dx
//           out  %al, %dx           ; KVM_EXIT_IO: the pass is over
//           jmp  start              ; the host sets new registers and re-enters
constexpr uint8_t kGuestCode[] = {
    0x48, 0x85, 0xc9, 0x74, 0x12, 0x48, 0x8b, 0x3e, 0x48, 0x89, 0x07, 0x48, 0x83, 0xc6, 0x08,
    0x48, 0xff, 0xc0, 0x48, 0xff, 0xc9, 0x75, 0xee, 0x66, 0xba, 0x10, 0x00, 0xee, 0xeb, 0xe2,
};

void StoreU64(std::byte* p, uint64_t v) { std::memcpy(p, &v, sizeof(v)); }

// Page tables identity-mapping the first 1 GiB with 2 MiB pages, and the code.
void WriteBootImage(GuestMemfdMapping& boot) {
  // SAFETY: all offsets are below 0x11000, inside the 2 MiB boot mapping.
  std::byte* mem = boot.data();
  std::memset(mem + kPml4Gpa, 0, 3 * kPageSize);
  StoreU64(mem + kPml4Gpa, kPdptGpa | 0x3);  // present | writable
  StoreU64(mem + kPdptGpa, kPdGpa | 0x3);
  for (uint64_t i = 0; i < 512; ++i) StoreU64(mem + kPdGpa + 8 * i, (i << 21) | 0x83);  // | 2 MiB page
  std::memcpy(mem + kCodeGpa, kGuestCode, sizeof(kGuestCode));
}

Status IoctlStatus(int rc, const char* what) {
  if (rc < 0) return ErrnoStatus(Code::kKvm, what);
  return Status::Ok();
}

}  // namespace

Expected<std::unique_ptr<TestVm>> TestVm::Create(const TestVmOptions& options) {
  GMEM_ASSIGN_OR_RETURN(KvmSystem kvm, KvmSystem::Open());
  GMEM_ASSIGN_OR_RETURN(Vm vm, Vm::Create(kvm));
  constexpr uint64_t kFlags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
  GMEM_ASSIGN_OR_RETURN(GuestMemfd boot, GuestMemfd::Create(vm, kBootBytes, kFlags));
  GMEM_ASSIGN_OR_RETURN(GuestMemfdMapping boot_map, GuestMemfdMapping::Map(boot));
  GMEM_ASSIGN_OR_RETURN(GuestMemfd data, GuestMemfd::Create(vm, options.data_bytes, kFlags));
  GMEM_ASSIGN_OR_RETURN(GuestMemfdMapping data_map, GuestMemfdMapping::Map(data));
  std::unique_ptr<TestVm> t(new TestVm(std::move(kvm), std::move(vm), std::move(boot), std::move(boot_map),
                                       std::move(data), std::move(data_map)));
  WriteBootImage(t->boot_map_);
  if (options.ring_bytes > 0) GMEM_RETURN_IF_ERROR(KvmDirtyRing::Enable(t->vm_, options.ring_bytes));
  if (options.manual_protect) GMEM_RETURN_IF_ERROR(KvmDirtyBitmapSource::EnableManualProtect(t->vm_));
  GMEM_RETURN_IF_ERROR(t->SetUpSlots(options));
  GMEM_RETURN_IF_ERROR(t->SetUpVcpu());
  return t;
}

Status TestVm::SetUpSlots(const TestVmOptions& options) {
  MemslotSpec boot;
  boot.slot = kBootSlot;
  boot.flags = static_cast<uint32_t>(KVM_MEM_GUEST_MEMFD);
  boot.gpa = 0;
  boot.size_bytes = kBootBytes;
  boot.userspace_addr = boot_map_.data();  // PVM reads through it; always the gmem mapping
  boot.gmem_fd = boot_gmem_.fd();
  GMEM_RETURN_IF_ERROR(vm_.SetMemslot(boot));

  MemslotSpec data;
  data.slot = kDataSlot;
  data.gpa = kDataGpa;
  data.size_bytes = data_gmem_.size_bytes();
  data.userspace_addr = data_map_.data();
  if (options.slot_mode == DataSlotMode::kGmem) {
    data.flags = static_cast<uint32_t>(KVM_MEM_GUEST_MEMFD);
    data.gmem_fd = data_gmem_.fd();
  }
  if (options.log_dirty) {
    MemslotSpec logged = data;
    logged.flags |= static_cast<uint32_t>(KVM_MEM_LOG_DIRTY_PAGES);
    log_dirty_status_ = vm_.SetMemslot(logged);
    data_logs_dirty_ = log_dirty_status_.ok();
    if (data_logs_dirty_) return Status::Ok();
  }
  return vm_.SetMemslot(data);
}

Status TestVm::SetUpVcpu() {
  int fd = ::ioctl(vm_.fd(), KVM_CREATE_VCPU, 0);
  if (fd < 0) return ErrnoStatus(Code::kKvm, "KVM_CREATE_VCPU");
  vcpu_.Reset(fd);
  GMEM_ASSIGN_OR_RETURN(size_t run_size, kvm_.VcpuMmapSize());
  void* run = ::mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (run == MAP_FAILED) return ErrnoStatus(Code::kKvm, "mmap kvm_run");
  run_ = Mapping(run, run_size);

  // SAFETY: sregs read back from KVM, then long mode set the way kvm selftests/kvmtool do
  // (hidden segment state directly, no GDT needed).
  struct kvm_sregs sregs = {};
  GMEM_RETURN_IF_ERROR(IoctlStatus(::ioctl(fd, KVM_GET_SREGS, &sregs), "KVM_GET_SREGS"));
  struct kvm_segment cs = {};
  cs.base = 0;
  cs.limit = 0xffffffff;
  cs.selector = 0x8;
  cs.type = 11;
  cs.present = 1;
  cs.s = 1;
  cs.l = 1;
  cs.g = 1;
  struct kvm_segment ds = cs;
  ds.selector = 0x10;
  ds.type = 3;
  ds.l = 0;
  ds.db = 1;
  sregs.cs = cs;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = ds;
  sregs.cr3 = kPml4Gpa;
  sregs.cr4 = 0x20 | 0x200 | 0x400;  // PAE | OSFXSR | OSXMMEXCPT
  sregs.cr0 = 0x80050033;            // PG | AM | WP | NE | ET | MP | PE
  sregs.efer = 0x500;                // LME | LMA
  return IoctlStatus(::ioctl(fd, KVM_SET_SREGS, &sregs), "KVM_SET_SREGS");
}

Status TestVm::Run(const std::function<Status()>& on_ring_full) {
  auto* run = reinterpret_cast<struct kvm_run*>(run_.data());
  for (;;) {
    if (::ioctl(vcpu_.get(), KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoStatus(Code::kKvm, "KVM_RUN");
    }
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == kDonePort) return Status::Ok();
    if (run->exit_reason == KVM_EXIT_DIRTY_RING_FULL && on_ring_full) {
      GMEM_RETURN_IF_ERROR(on_ring_full());
      continue;
    }
    return Status(Code::kKvm, "test guest stopped with exit reason " + std::to_string(run->exit_reason));
  }
}

Status TestVm::WritePages(std::span<const uint64_t> data_pages, uint64_t seed,
                          const std::function<Status()>& on_ring_full) {
  if (data_pages.size() > kMaxListEntries) return InvalidArgument("too many pages for the guest's list");
  for (size_t i = 0; i < data_pages.size(); ++i) {
    if (data_pages[i] >= data_npages()) return InvalidArgument("page outside the data region");
    // SAFETY: the list lies in the boot mapping below kBootBytes (kMaxListEntries).
    StoreU64(boot_map_.data() + kListGpa + 8 * i, kDataGpa + data_pages[i] * kPageSize);
  }
  // SAFETY: register file for KVM_SET_REGS; read back first so the loop keeps its rip.
  struct kvm_regs regs = {};
  if (started_) GMEM_RETURN_IF_ERROR(IoctlStatus(::ioctl(vcpu_.get(), KVM_GET_REGS, &regs), "KVM_GET_REGS"));
  if (!started_) {
    regs.rip = kCodeGpa;
    regs.rflags = 2;
    regs.rsp = 0x9000;
  }
  regs.rsi = kListGpa;
  regs.rcx = data_pages.size();
  regs.rax = seed;
  GMEM_RETURN_IF_ERROR(IoctlStatus(::ioctl(vcpu_.get(), KVM_SET_REGS, &regs), "KVM_SET_REGS"));
  started_ = true;
  return Run(on_ring_full);
}

}  // namespace gmem::memory::testing
