#pragma once
// TestVm: the smallest real KVM guest that the memory tests need — one vCPU in 64-bit long mode
// that writes a given list of data pages, on guest_memfd memory (the approach of
// /work/shared/probes/gmem_common.h and pd_dirty.c). Not the reference VMM (vmm/ is later work).
//
// Guest physical layout:
//   boot region: guest_memfd of 2 MiB at GPA 0, memslot 0 (KVM_MEM_GUEST_MEMFD, userspace_addr =
//     its mapping): page tables at 0x1000 (PML4), 0x2000 (PDPT), 0x3000 (PD: first 1 GiB identity
//     mapped with 2 MiB pages), code at 0x10000, the page list at 0x20000.
//   data region: its own guest_memfd of `data_bytes` at GPA kDataGpa, memslot 1, either a
//     guest_memfd slot or a classic ("hva") slot whose userspace_addr is the guest_memfd mapping.
// Keeping the data in its own guest_memfd makes "the pages the guest wrote" exact: page-table
// accessed/dirty bits and the list land in the boot region.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "memory/guest_memfd.h"
#include "memory/guest_memfd_mapping.h"
#include "memory/kvm_system.h"
#include "memory/vm.h"
#include "tests/testutil/testutil.h"

// Skips the current test when this machine has no /dev/kvm (and only then).
#define GMEM_SKIP_WITHOUT_KVM(what)                                                            \
  do {                                                                                         \
    if (!::gmem::memory::KvmSystem::Available()) GTEST_SKIP() << "needs /dev/kvm: " << (what); \
  } while (0)

namespace gmem::memory::testing {

// A fixture with a real KVM system fd and an empty VM (`kvm_`, `vm_`); the test is skipped,
// saying `SkipReason()`, only where /dev/kvm is absent.
class RealVmTest : public ::testing::Test {
 protected:
  virtual const char* SkipReason() const = 0;
  void SetUp() override {
    GMEM_SKIP_WITHOUT_KVM(SkipReason());
    auto kvm = KvmSystem::Open();
    ASSERT_OK(kvm);
    kvm_.emplace(std::move(*kvm));
    auto vm = Vm::Create(*kvm_);
    ASSERT_OK(vm);
    vm_.emplace(std::move(*vm));
  }

  std::optional<KvmSystem> kvm_;
  std::optional<Vm> vm_;
};

enum class DataSlotMode {
  kGmem,  // KVM_MEM_GUEST_MEMFD slot: KVM refuses dirty logging on it
  kHva,   // classic slot whose userspace_addr is the guest_memfd mapping: dirty logging works
};

struct TestVmOptions {
  uint64_t data_bytes = 8ULL << 20;
  DataSlotMode slot_mode = DataSlotMode::kHva;
  bool log_dirty = false;       // ask for KVM_MEM_LOG_DIRTY_PAGES on the data slot
  bool manual_protect = false;  // enable KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 before the slots
  uint32_t ring_bytes = 0;      // > 0: enable the dirty ring before creating the vCPU
};

class TestVm {
 public:
  static constexpr uint64_t kBootBytes = 2ULL << 20;
  static constexpr uint64_t kDataGpa = 16ULL << 20;
  static constexpr uint32_t kBootSlot = 0;
  static constexpr uint32_t kDataSlot = 1;

  static Expected<std::unique_ptr<TestVm>> Create(const TestVmOptions& options);

  Vm& vm() { return vm_; }
  const GuestMemfd& data_gmem() const { return data_gmem_; }
  GuestMemfdMapping& data_mapping() { return data_map_; }
  uint64_t data_npages() const { return data_map_.npages(); }
  int vcpu_fd() const { return vcpu_.get(); }
  // Whether the data slot really has dirty logging, and what KVM said when it was asked for it.
  bool data_slot_logs_dirty() const { return data_logs_dirty_; }
  const Status& log_dirty_status() const { return log_dirty_status_; }

  // Runs the guest once: it stores the 8-byte values seed, seed + 1, ... at the start of each
  // listed data page (indices into the data region), in order, then exits with OUT to port 0x10.
  // `on_ring_full` is called on KVM_EXIT_DIRTY_RING_FULL before re-entering.
  Status WritePages(std::span<const uint64_t> data_pages, uint64_t seed,
                    const std::function<Status()>& on_ring_full = nullptr);

 private:
  TestVm(KvmSystem kvm, Vm vm, GuestMemfd boot, GuestMemfdMapping boot_map, GuestMemfd data, GuestMemfdMapping data_map)
      : kvm_(std::move(kvm)),
        vm_(std::move(vm)),
        boot_gmem_(std::move(boot)),
        boot_map_(std::move(boot_map)),
        data_gmem_(std::move(data)),
        data_map_(std::move(data_map)) {}
  Status SetUpSlots(const TestVmOptions& options);
  Status SetUpVcpu();
  Status Run(const std::function<Status()>& on_ring_full);

  KvmSystem kvm_;
  Vm vm_;
  GuestMemfd boot_gmem_;
  GuestMemfdMapping boot_map_;
  GuestMemfd data_gmem_;
  GuestMemfdMapping data_map_;
  UniqueFd vcpu_;
  Mapping run_;  // struct kvm_run
  bool data_logs_dirty_ = false;
  Status log_dirty_status_;
  bool started_ = false;
};

}  // namespace gmem::memory::testing
