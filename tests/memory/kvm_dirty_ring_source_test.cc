#include "memory/kvm_dirty_ring_source.h"

#include <cstdio>
#include <vector>

#include "memory/dirty_tracker.h"
#include "memory/kvm_dirty_ring.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;
using testing::DataSlotMode;
using testing::TestVm;
using testing::TestVmOptions;

struct RingVm {
  std::unique_ptr<TestVm> vm;
  std::shared_ptr<KvmDirtyRing> ring;
};

RingVm MakeRingVm(uint32_t ring_bytes, uint64_t data_bytes) {
  TestVmOptions opts;
  opts.slot_mode = DataSlotMode::kHva;
  opts.log_dirty = true;
  opts.ring_bytes = ring_bytes;
  opts.data_bytes = data_bytes;
  auto vm = TestVm::Create(opts);
  EXPECT_OK(vm);
  if (!vm.ok()) return {};
  int vcpu = (*vm)->vcpu_fd();
  auto ring = KvmDirtyRing::Map((*vm)->vm(), std::span<const int>(&vcpu, 1), ring_bytes);
  EXPECT_OK(ring);
  if (!ring.ok()) return {};
  return RingVm{std::move(*vm), std::shared_ptr<KvmDirtyRing>(std::move(*ring))};
}

TEST(KvmDirtyRingSourceTest, ReportsExactlyTheGuestWrittenPages) {
  GMEM_SKIP_WITHOUT_KVM("runs a real vCPU with a dirty ring");
  RingVm rv = MakeRingVm(65536, 8ULL << 20);
  ASSERT_TRUE(rv.vm && rv.ring);
  TestVm& v = *rv.vm;
  const uint64_t n = v.data_npages();
  AttributeMap attrs(n, PageAttr::kShared);
  DirtyTracker t(attrs);
  t.AddSource(std::make_unique<KvmDirtyRingSource>(rv.ring, TestVm::kDataSlot, n, 0));
  ASSERT_OK(t.MarkSent(t.BeginPass(attrs)->dirty));

  for (uint64_t round = 0; round < 3; ++round) {
    std::vector<uint64_t> pages;
    for (uint64_t p = 64 * round; p < 64 * round + 300; ++p) pages.push_back(p);  // as probe pd_dirty
    for (uint64_t p = 1000 + round; p < n; p += 97) pages.push_back(p);
    ASSERT_OK(v.WritePages(pages, 0x200 * (round + 1)));
    auto r = t.BeginPass(attrs);
    ASSERT_OK(r);
    PageBitmap want(n);
    for (uint64_t p : pages) want.Set(p);
    EXPECT_EQ(r->dirty, want) << "round " << round << ": " << r->ToString();
    EXPECT_EQ(r->flagged_by(DirtySourceKind::kKvmDirtyRing), want.Count());
    std::printf("[ info ] dirty ring, round %llu: guest wrote %llu pages, ring reported %llu\n",
                static_cast<unsigned long long>(round), static_cast<unsigned long long>(want.Count()),
                static_cast<unsigned long long>(r->flagged_by(DirtySourceKind::kKvmDirtyRing)));
    ASSERT_OK(t.MarkSent(r->dirty));
  }
  EXPECT_EQ(t.BeginPass(attrs)->count(), 0u);
  EXPECT_EQ(rv.ring->dropped_entries(), 0u);
}

// A ring smaller than what the guest dirties between exits. Upstream KVM stops the vCPU at the
// ring's soft limit (KVM_EXIT_DIRTY_RING_FULL), the VMM harvests, and no entry is lost. kvm_pvm
// on this host lets the ring wrap instead (measured: 3000 writes into 1024 entries, the exit
// comes only after the wrap); the harvester then detects the overflow, marks every watched page
// dirty and fails from then on. Either way no written page may be missing.
TEST(KvmDirtyRingSourceTest, ASmallRingLosesNoPage) {
  GMEM_SKIP_WITHOUT_KVM("runs a real vCPU with a dirty ring");
  RingVm rv = MakeRingVm(16384, 16ULL << 20);  // 1024 entries
  ASSERT_TRUE(rv.vm && rv.ring);
  TestVm& v = *rv.vm;
  const uint64_t n = v.data_npages();
  KvmDirtyRingSource source(rv.ring, TestVm::kDataSlot, n, 0);
  std::vector<uint64_t> pages;
  for (uint64_t p = 0; p < 3000; ++p) pages.push_back(p);
  int full_exits = 0;
  Status run = v.WritePages(pages, 7, [&]() -> Status {
    ++full_exits;
    return rv.ring->Harvest().status();  // an overflow stops the guest here
  });
  AttributeMap attrs(n, PageAttr::kShared);
  PageBitmap candidates(n), changed(n);
  Status collected = source.Collect(CollectContext{attrs, candidates}, changed);
  if (rv.ring->overflowed()) {
    EXPECT_THAT(run, StatusIs(Code::kKvm, "overflowed"));
    EXPECT_THAT(collected, StatusIs(Code::kKvm, "overflowed"));
    EXPECT_EQ(changed.Count(), n) << "after an overflow every watched page must be reported dirty";
    std::printf(
        "[ info ] dirty ring of 1024 entries, 3000 pages written: the ring wrapped (%d ring-full "
        "exit(s)); overflow detected, all %llu pages reported dirty\n",
        full_exits, static_cast<unsigned long long>(n));
    return;
  }
  ASSERT_OK(run);
  ASSERT_OK(collected);
  EXPECT_EQ(changed.Count(), 3000u);
  EXPECT_EQ(changed.NextClear(0), 3000u);
  std::printf("[ info ] dirty ring of 1024 entries: 3000 pages written, %d ring-full exits, all reported\n",
              full_exits);
}

TEST(KvmDirtyRingTest, RejectsBadSizes) {
  GMEM_SKIP_WITHOUT_KVM("enables the ring on a real VM");
  auto kvm = KvmSystem::Open();
  ASSERT_OK(kvm);
  auto vm = Vm::Create(*kvm);
  ASSERT_OK(vm);
  EXPECT_THAT(KvmDirtyRing::Enable(*vm, 12288), StatusIs(Code::kInvalidArgument, "not a power of two"));
  EXPECT_THAT(KvmDirtyRing::Enable(*vm, 1u << 30), StatusIs(Code::kInvalidArgument, "exceeds KVM's maximum"));
}

}  // namespace
}  // namespace gmem::memory
