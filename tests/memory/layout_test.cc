#include "memory/layout.h"

#include "memory/kvm_uapi.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;
constexpr uint64_t kMiB = 1ULL << 20;

Region R(uint32_t id, uint64_t gpa, uint64_t size, uint32_t page_size = 4096, uint64_t offset = 0) {
  Region r;
  r.id = id;
  r.gpa_base = gpa;
  r.size_bytes = size;
  r.gmem_offset = offset;
  r.page_size = page_size;
  r.gmem_flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
  return r;
}

TEST(MemoryLayoutTest, ValidLayouts) {
  EXPECT_OK(Layout().Validate());
  Layout l({R(1, 0, 2 * kMiB), R(2, 2 * kMiB, 4 * kMiB), R(7, 1ULL << 32, 2 * kMiB, 2 * kMiB, 2 * kMiB)});
  EXPECT_OK(l.Validate());  // touching regions are fine
  EXPECT_EQ(l.TotalBytes(), 8 * kMiB);
  EXPECT_EQ(l.FindById(2)->gpa_base, 2 * kMiB);
  EXPECT_EQ(l.FindById(3), nullptr);
  EXPECT_EQ(l.FindByGpa(2 * kMiB)->id, 2u);
  EXPECT_EQ(l.FindByGpa(2 * kMiB - 1)->id, 1u);
  EXPECT_EQ(l.FindByGpa(6 * kMiB), nullptr);
  EXPECT_EQ(l.regions()[1].npages(), 1024u);
}

TEST(MemoryLayoutTest, EachRuleHasItsError) {
  EXPECT_THAT(Layout({R(1, 0, 0)}).Validate(), StatusIs(Code::kInvalidArgument, "region 1: size is 0"));
  EXPECT_THAT(Layout({R(1, 0x800, 4096)}).Validate(),
              StatusIs(Code::kInvalidArgument, "gpa_base 0x800 not page aligned"));
  EXPECT_THAT(Layout({R(1, 0, 4096, 2 * kMiB)}).Validate(),
              StatusIs(Code::kInvalidArgument, "size 0x1000 not page aligned"));
  EXPECT_THAT(Layout({R(1, 0, 8192, 4096, 100)}).Validate(),
              StatusIs(Code::kInvalidArgument, "gmem_offset 0x64 not page aligned"));
  EXPECT_THAT(Layout({R(1, 0, 12288, 12288)}).Validate(), StatusIs(Code::kInvalidArgument, "page size 12288"));
  EXPECT_THAT(Layout({R(1, 0, 4096, 2048)}).Validate(), StatusIs(Code::kInvalidArgument, "page size 2048"));
  EXPECT_THAT(Layout({R(1, 0, 4096, 1u << 31)}).Validate(), StatusIs(Code::kInvalidArgument, "page size"));
  EXPECT_THAT(Layout({R(1, 0, 4 * kMiB), R(2, 2 * kMiB, 4 * kMiB)}).Validate(),
              StatusIs(Code::kInvalidArgument, "regions 1 and 2 overlap at GPA 0x200000"));
  EXPECT_THAT(Layout({R(1, 0, 4096), R(1, 8192, 4096)}).Validate(),
              StatusIs(Code::kInvalidArgument, "region id 1 appears twice"));
  EXPECT_THAT(Layout({R(1, ~0ULL - 4095, 8192)}).Validate(), StatusIs(Code::kInvalidArgument, "GPA range overflows"));
  EXPECT_THAT(Layout({R(1, 0, 8192, 4096, ~0ULL - 4095)}).Validate(),
              StatusIs(Code::kInvalidArgument, "gmem range overflows"));
  EXPECT_THAT(Layout({R(1, 0, kMaxRegionBytes + 4096)}).Validate(),
              StatusIs(Code::kInvalidArgument, "exceeds the limit"));
  Region flags = R(1, 0, 4096);
  flags.gmem_flags |= 1ULL << 2;  // GUEST_MEMFD_FLAG_NO_DIRECT_MAP: proposed, not in 6.18
  EXPECT_THAT(Layout({flags}).Validate(), StatusIs(Code::kInvalidArgument, "unknown guest_memfd flags 0x4"));
}

TEST(MemoryLayoutTest, OverlapIsFoundWhateverTheOrder) {
  EXPECT_THAT(Layout({R(5, 10 * kMiB, kMiB), R(1, 0, kMiB), R(3, 10 * kMiB + 4096, 4096)}).Validate(),
              StatusIs(Code::kInvalidArgument, "regions 5 and 3 overlap"));
}

TEST(MemoryLayoutTest, RegionCountIsBounded) {
  Layout l;
  for (uint32_t i = 0; i < kMaxRegions; ++i) l.Add(R(i, uint64_t{i} * 4096, 4096));
  EXPECT_OK(l.Validate());
  l.Add(R(kMaxRegions, uint64_t{kMaxRegions} * 4096, 4096));
  EXPECT_THAT(l.Validate(), StatusIs(Code::kInvalidArgument, "257 regions, limit 256"));
}

}  // namespace
}  // namespace gmem::memory
