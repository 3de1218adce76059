#include "memory/content_hash_source.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include "memory/dirty_tracker.h"
#include "memory/guest_reported_source.h"
#include "memory/kvm_uapi.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;
using testing::DataSlotMode;
using testing::TestVm;
using testing::TestVmOptions;
constexpr PageAttr kS = PageAttr::kShared;
constexpr PageAttr kP = PageAttr::kPrivate;
constexpr uint64_t kGmemFlags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

void Fill(GuestMemfdMapping& m, uint64_t page, uint8_t value) { std::memset(m.PageAddress(page), value, kPageSize); }

class ContentHashTest : public testing::RealVmTest {
 protected:
  const char* SkipReason() const override { return "hashes a real guest_memfd mapping"; }
  void MapPages(uint64_t npages, bool populate = false) {
    auto g = GuestMemfd::Create(*vm_, npages * kPageSize, kGmemFlags);
    ASSERT_OK(g);
    auto m = GuestMemfdMapping::Map(*g, MapOptions{.populate = populate});
    ASSERT_OK(m);
    map_.emplace(std::move(*m));
  }
  std::optional<GuestMemfdMapping> map_;
};

TEST_F(ContentHashTest, FindsExactlyThePagesChangedHostSide) {
  MapPages(256);
  for (uint64_t p = 0; p < 256; ++p) Fill(*map_, p, static_cast<uint8_t>(p));
  // Pages [100, 110) are private: PROT_NONE, so any read of them by the hash would crash the test.
  AttributeMap attrs(256, kS);
  ASSERT_OK(attrs.SetRange(100, 10, kP));
  ASSERT_OK(map_->ApplyAttributes(attrs, 0));

  DirtyTracker t(attrs);
  auto hash = std::make_unique<ContentHashSource>(*map_, 0, 256);
  ContentHashSource* h = hash.get();
  t.AddSource(std::move(hash));
  Coverage agent;
  agent.pages = PageRange{0, 256};
  agent.sees_private = true;
  t.AddSource(std::make_unique<GuestReportedSource>(256, agent));

  auto first = t.BeginPass(attrs);
  ASSERT_OK(first);
  EXPECT_EQ(first->count(), 256u);
  EXPECT_EQ(h->last_hashed_pages(), 246u);
  ASSERT_OK(t.MarkSent(first->dirty));
  auto quiet = t.BeginPass(attrs);
  ASSERT_OK(quiet);
  EXPECT_EQ(quiet->count(), 0u) << quiet->ToString();

  const std::vector<uint64_t> changed = {0, 5, 63, 64, 99, 110, 200, 255};
  for (uint64_t p : changed) map_->PageAddress(p)[p % kPageSize] ^= std::byte{0x80};
  map_->PageAddress(7)[9] = map_->PageAddress(7)[9];  // a write of the same value is no change
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->dirty.ToVector(), changed);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kContentHash), changed.size());
  EXPECT_EQ(r->dirty_private, 0u);
  ASSERT_OK(t.MarkSent(r->dirty));
  EXPECT_EQ(t.BeginPass(attrs)->count(), 0u);
}

TEST_F(ContentHashTest, ThreadedPassFindsTheSamePages) {
  MapPages(20000);
  for (uint64_t p = 0; p < 20000; ++p) Fill(*map_, p, static_cast<uint8_t>(p * 7));
  AttributeMap attrs(20000, kS);
  ASSERT_OK(attrs.SetRange(5000, 64, kP));
  ASSERT_OK(map_->ApplyAttributes(attrs, 0));
  DirtyTracker t(attrs);
  t.AddSource(std::make_unique<ContentHashSource>(*map_, 0, 20000, ContentHashOptions{.threads = 2}));
  Coverage agent;  // the private pages are the agent's (else they would be dirty every pass)
  agent.pages = PageRange{0, 20000};
  agent.sees_private = true;
  t.AddSource(std::make_unique<GuestReportedSource>(20000, agent));
  ASSERT_OK(t.MarkSent(t.BeginPass(attrs)->dirty));
  std::mt19937_64 rng(99);
  PageBitmap want(20000);
  for (int i = 0; i < 500; ++i) {
    uint64_t p = rng() % 20000;
    if (attrs.Get(p) == kP) continue;
    map_->PageAddress(p)[rng() % kPageSize] = static_cast<std::byte>(static_cast<uint8_t>(p * 7) ^ 0xff);
    want.Set(p);
  }
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  PageBitmap got = r->dirty;
  got.AndNot(want);
  EXPECT_TRUE(got.None());
  want.AndNot(r->dirty);
  EXPECT_TRUE(want.None());
}

// The engine copies pages out with CopyForSend: what is recorded is what was copied, so a change
// made after the pass but before the copy, then undone, is still seen.
TEST_F(ContentHashTest, CopyForSendRecordsTheBytesSent) {
  MapPages(4);
  Fill(*map_, 1, 0xA);
  AttributeMap attrs(4, kS);
  DirtyTracker t(attrs);
  auto hash = std::make_unique<ContentHashSource>(*map_, 0, 4);
  ContentHashSource* h = hash.get();
  t.AddSource(std::move(hash));
  auto r = t.BeginPass(attrs);  // hashes page 1 holding A
  ASSERT_OK(r);
  Fill(*map_, 1, 0xB);  // the guest writes B before the engine reads
  std::vector<std::byte> buf(kPageSize);
  ASSERT_OK(h->CopyForSend(1, buf));
  EXPECT_EQ(std::to_integer<int>(buf[0]), 0xB);
  ASSERT_OK(t.MarkSent(r->dirty));
  Fill(*map_, 1, 0xA);  // ... and back to A after the send: the target has B
  auto next = t.BeginPass(attrs);
  ASSERT_OK(next);
  EXPECT_EQ(next->dirty.ToVector(), (std::vector<uint64_t>{1}));
}

TEST_F(ContentHashTest, NeverCopiesAPrivatePage) {
  MapPages(4);
  AttributeMap attrs(4, kS);
  ASSERT_OK(attrs.SetRange(2, 1, kP));
  ASSERT_OK(map_->ApplyAttributes(attrs, 0));
  ContentHashSource h(*map_, 0, 4);
  PageBitmap candidates(4), changed(4);
  candidates.SetRange(0, 4);  // even if asked, the private page is not read
  ASSERT_OK(h.Collect(CollectContext{attrs, candidates}, changed));
  EXPECT_EQ(h.last_hashed_pages(), 3u);
  EXPECT_EQ(changed.ToVector(), (std::vector<uint64_t>{0, 1, 3}));
  std::vector<std::byte> buf(kPageSize);
  EXPECT_THAT(h.CopyForSend(2, buf), StatusIs(Code::kInvalidArgument, "page 2 is not shared"));
  EXPECT_THAT(h.CopyForSend(4, buf), StatusIs(Code::kInvalidArgument, "outside"));
  std::vector<std::byte> small(100);
  EXPECT_THAT(h.CopyForSend(0, small), StatusIs(Code::kInvalidArgument, "not one page"));
}

// The migration engine copies every page through CopyForSend / NoteHoleForSend, so a pass need not
// read pages the target has no hash for; and holes are never touched (reading one would allocate it).
TEST_F(ContentHashTest, WithoutHashUnsentPass1ReadsNothingAndHolesStayHoles) {
  MapPages(1024);
  for (uint64_t p = 0; p < 512; ++p) Fill(*map_, p, 0x5A);  // pages 512.. are holes
  AttributeMap attrs(1024, kS);
  ContentHashSource h(*map_, 0, 1024, ContentHashOptions{.threads = 2, .hash_unsent = false});
  PageBitmap all(1024), changed(1024);
  all.SetRange(0, 1024);
  ASSERT_OK(h.Collect(CollectContext{attrs, all}, changed));
  EXPECT_EQ(h.last_hashed_pages(), 0u);  // nothing has a hash yet: everything changed, unread
  EXPECT_EQ(changed.Count(), 1024u);

  std::vector<unsigned char> resident(1024);
  ASSERT_OK(map_->Residency(0, 1024, resident));
  std::vector<std::byte> buf(kPageSize);
  for (uint64_t p = 0; p < 1024; ++p) {
    if (resident[p] & 1) {
      ASSERT_OK(h.CopyForSend(p, buf));
    } else {
      ASSERT_OK(h.NoteHoleForSend(p));
    }
    h.OnSent(p, kS);
  }
  EXPECT_EQ(PageBitmap(1024), [&] {
    PageBitmap c(1024);
    EXPECT_OK(h.Collect(CollectContext{attrs, all}, c));
    return c;
  }());
  ASSERT_OK(map_->Residency(0, 1024, resident));
  for (uint64_t p = 512; p < 1024; ++p) ASSERT_EQ(resident[p] & 1, 0) << "page " << p << " was allocated";

  Fill(*map_, 700, 0x01);  // a hole written after it was "sent" as zeros
  Fill(*map_, 3, 0x02);
  changed.ClearAll();
  ASSERT_OK(h.Collect(CollectContext{attrs, all}, changed));
  EXPECT_EQ(changed.ToVector(), (std::vector<uint64_t>{3, 700}));
}

TEST_F(ContentHashTest, PopulateAndResidencyOfARange) {
  MapPages(64);
  std::vector<unsigned char> resident(64);
  ASSERT_OK(map_->Residency(0, 64, resident));
  for (unsigned char r : resident) EXPECT_EQ(r & 1, 0);
  ASSERT_OK(map_->PopulateWrite(8, 4));
  ASSERT_OK(map_->Residency(0, 64, resident));
  for (uint64_t p = 0; p < 64; ++p) EXPECT_EQ(resident[p] & 1, p >= 8 && p < 12 ? 1 : 0) << "page " << p;
  EXPECT_OK(map_->PopulateRead(8, 4));
  EXPECT_THAT(map_->Residency(60, 8, resident), StatusIs(Code::kInvalidArgument, "outside"));
  EXPECT_THAT(map_->PopulateWrite(63, 2), StatusIs(Code::kInvalidArgument, "outside"));
}

// KVM keeps no dirty log for guest_memfd memslots (EINVAL); the content hash is the source then,
// and it must find exactly the pages a real guest wrote.
TEST(ContentHashGuestTest, GuestWritesOnAGmemSlotAreFoundByHashing) {
  GMEM_SKIP_WITHOUT_KVM("runs a real vCPU");
  TestVmOptions opts;
  opts.slot_mode = DataSlotMode::kGmem;
  opts.log_dirty = true;
  auto vm = TestVm::Create(opts);
  ASSERT_OK(vm);
  TestVm& v = **vm;
  EXPECT_FALSE(v.data_slot_logs_dirty());
  EXPECT_EQ(v.log_dirty_status().sys_errno(), EINVAL) << v.log_dirty_status().ToString();

  const uint64_t n = v.data_npages();
  AttributeMap attrs(n, kS);
  DirtyTracker t(attrs);
  t.AddSource(std::make_unique<ContentHashSource>(v.data_mapping(), 0, n));
  ASSERT_OK(t.MarkSent(t.BeginPass(attrs)->dirty));

  for (uint64_t round = 0; round < 3; ++round) {
    std::vector<uint64_t> pages;
    for (uint64_t p = round; p < n; p += 7 + round) pages.push_back(p);
    pages.push_back(n - 1);
    ASSERT_OK(v.WritePages(pages, 0x1000 * (round + 1)));
    auto r = t.BeginPass(attrs);
    ASSERT_OK(r);
    PageBitmap want(n);
    for (uint64_t p : pages) want.Set(p);
    EXPECT_EQ(r->dirty, want) << "round " << round << ": " << r->ToString();
    EXPECT_EQ(r->flagged_by(DirtySourceKind::kContentHash), want.Count());
    std::printf("[ info ] gmem slot, round %llu: guest wrote %llu pages, content hash found %llu\n",
                static_cast<unsigned long long>(round), static_cast<unsigned long long>(want.Count()),
                static_cast<unsigned long long>(r->count()));
    ASSERT_OK(t.MarkSent(r->dirty));
  }
}

// Informational: how fast a hash pass over 1 GiB runs. Checks correctness only.
TEST_F(ContentHashTest, HashPassOverOneGiB) {
  constexpr uint64_t kPages = (1ULL << 30) / kPageSize;
  MapPages(kPages, /*populate=*/true);
  for (uint64_t p = 0; p < kPages; ++p) {
    uint64_t v = p * 0x9e3779b97f4a7c15ULL;
    std::memcpy(map_->PageAddress(p), &v, sizeof(v));  // distinct pages, like real memory
  }
  // Baseline: copying the same memory page by page, as a send would.
  std::vector<std::byte> page(kPageSize);
  auto copy_start = std::chrono::steady_clock::now();
  for (uint64_t p = 0; p < kPages; ++p) std::memcpy(page.data(), map_->PageAddress(p), kPageSize);
  double copy_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - copy_start).count();
  std::printf("[ info ] memcpy of 1 GiB page by page (baseline): %.3f s (%.2f GB/s)\n", copy_s, 1.073741824 / copy_s);
  AttributeMap attrs(kPages, kS);
  for (unsigned threads : {1u, 2u}) {
    DirtyTracker t(attrs);
    auto hash = std::make_unique<ContentHashSource>(*map_, 0, kPages, ContentHashOptions{.threads = threads});
    t.AddSource(std::move(hash));
    auto start = std::chrono::steady_clock::now();
    auto first = t.BeginPass(attrs);
    double first_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_OK(first);
    ASSERT_EQ(first->count(), kPages);
    ASSERT_OK(t.MarkSent(first->dirty));
    map_->PageAddress(12345)[100] ^= std::byte{1};
    start = std::chrono::steady_clock::now();
    auto second = t.BeginPass(attrs);
    double second_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_OK(second);
    EXPECT_EQ(second->dirty.ToVector(), (std::vector<uint64_t>{12345}));
    std::printf(
        "[ info ] hash pass over 1 GiB, %u thread(s): first pass %.3f s (%.2f GB/s), "
        "compare pass %.3f s (%.2f GB/s)\n",
        threads, first_s, 1.073741824 / first_s, second_s, 1.073741824 / second_s);
  }
}

}  // namespace
}  // namespace gmem::memory
