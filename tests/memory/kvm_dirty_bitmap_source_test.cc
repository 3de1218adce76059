#include "memory/kvm_dirty_bitmap_source.h"

#include <cstdio>
#include <cstring>
#include <vector>

#include "memory/content_hash_source.h"
#include "memory/dirty_tracker.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using testing::DataSlotMode;
using testing::TestVm;
using testing::TestVmOptions;

// Pages of pass `round`: a spread pattern, a contiguous run, and both ends of the region.
std::vector<uint64_t> PagesFor(uint64_t round, uint64_t n) {
  std::vector<uint64_t> pages;
  for (uint64_t p = round; p < n; p += 5 + round * 3) pages.push_back(p);
  for (uint64_t p = 300 + 64 * round; p < 300 + 64 * round + 100; ++p) pages.push_back(p);
  pages.push_back(0);
  pages.push_back(n - 1);
  return pages;
}

PageBitmap AsBitmap(const std::vector<uint64_t>& pages, uint64_t n) {
  PageBitmap b(n);
  for (uint64_t p : pages) b.Set(p);
  return b;
}

void RunBitmapPasses(bool manual_protect) {
  TestVmOptions opts;
  opts.slot_mode = DataSlotMode::kHva;
  opts.log_dirty = true;
  opts.manual_protect = manual_protect;
  auto vm = TestVm::Create(opts);
  ASSERT_OK(vm);
  TestVm& v = **vm;
  ASSERT_TRUE(v.data_slot_logs_dirty()) << v.log_dirty_status().ToString();
  const uint64_t n = v.data_npages();

  AttributeMap attrs(n, PageAttr::kShared);
  DirtyTracker t(attrs);
  auto src = KvmDirtyBitmapSource::Create(v.vm(), TestVm::kDataSlot, n, 0, manual_protect);
  ASSERT_OK(src);
  t.AddSource(std::move(*src));
  // The content hash is there too, but KVM covers every page: it must not read any.
  auto hash = std::make_unique<ContentHashSource>(v.data_mapping(), 0, n);
  ContentHashSource* h = hash.get();
  t.AddSource(std::move(hash));

  auto first = t.BeginPass(attrs);
  ASSERT_OK(first);
  EXPECT_EQ(first->count(), n);
  ASSERT_OK(t.MarkSent(first->dirty));

  for (uint64_t round = 0; round < 3; ++round) {
    std::vector<uint64_t> pages = PagesFor(round, n);
    ASSERT_OK(v.WritePages(pages, 0x100000 * (round + 1)));
    auto r = t.BeginPass(attrs);
    ASSERT_OK(r);
    PageBitmap want = AsBitmap(pages, n);
    EXPECT_EQ(r->dirty, want) << "round " << round << ": " << r->ToString();
    EXPECT_EQ(r->flagged_by(DirtySourceKind::kKvmDirtyBitmap), want.Count());
    EXPECT_EQ(r->dirty_shared, want.Count());
    EXPECT_EQ(h->last_hashed_pages(), 0u);
    std::printf("[ info ] dirty bitmap (%s), round %llu: guest wrote %llu pages, KVM reported %llu\n",
                manual_protect ? "KVM_CLEAR_DIRTY_LOG" : "get-and-clear", static_cast<unsigned long long>(round),
                static_cast<unsigned long long>(want.Count()),
                static_cast<unsigned long long>(r->flagged_by(DirtySourceKind::kKvmDirtyBitmap)));
    ASSERT_OK(t.MarkSent(r->dirty));
  }
  auto quiet = t.BeginPass(attrs);
  ASSERT_OK(quiet);
  EXPECT_EQ(quiet->count(), 0u) << quiet->ToString();
}

TEST(KvmDirtyBitmapSourceTest, ReportsExactlyTheGuestWrittenPagesWithClearDirtyLog) {
  GMEM_SKIP_WITHOUT_KVM("runs a real vCPU with dirty logging");
  RunBitmapPasses(/*manual_protect=*/true);
}

TEST(KvmDirtyBitmapSourceTest, ReportsExactlyTheGuestWrittenPagesWithGetAndClear) {
  GMEM_SKIP_WITHOUT_KVM("runs a real vCPU with dirty logging");
  RunBitmapPasses(/*manual_protect=*/false);
}

// KVM logs guest writes only (reference §4.1): the VMM's writes through its own mapping must be
// reported to the tracker by whoever makes them.
TEST(KvmDirtyBitmapSourceTest, HostWritesAreNotInTheBitmap) {
  GMEM_SKIP_WITHOUT_KVM("runs a real VM with dirty logging");
  TestVmOptions opts;
  opts.log_dirty = true;
  opts.manual_protect = true;
  auto vm = TestVm::Create(opts);
  ASSERT_OK(vm);
  TestVm& v = **vm;
  auto src = KvmDirtyBitmapSource::Create(v.vm(), TestVm::kDataSlot, v.data_npages(), 0, true);
  ASSERT_OK(src);
  ASSERT_OK((*src)->FetchAndClear());
  std::memset(v.data_mapping().PageAddress(10), 0x5a, kPageSize);
  auto host_only = (*src)->FetchAndClear();
  ASSERT_OK(host_only);
  EXPECT_TRUE(host_only->None());
  ASSERT_OK(v.WritePages(std::vector<uint64_t>{11}, 1));
  auto guest = (*src)->FetchAndClear();
  ASSERT_OK(guest);
  EXPECT_EQ(guest->ToVector(), (std::vector<uint64_t>{11}));
}

}  // namespace
}  // namespace gmem::memory
