#include "vmm/initial_contents.h"

#include <array>
#include <cstring>

#include "tests/testutil/testutil.h"

namespace gmem::vmm {
namespace {

TEST(InitialContentsTest, ClassMixFollowsTheBenchmarkImage) {
  std::array<uint64_t, 4> pages{};
  uint64_t total = 0, runs = 0;
  ForEachClassRun(7, 262144, [&](uint64_t first, uint64_t count, PageClass cls) {
    EXPECT_EQ(first, total);
    pages[static_cast<size_t>(cls)] += count;
    total += count;
    ++runs;
  });
  EXPECT_EQ(total, 262144u);
  const double want[4] = {0.35, 0.25, 0.20, 0.20};
  for (int c = 0; c < 4; ++c) EXPECT_NEAR(static_cast<double>(pages[c]) / total, want[c], 0.03) << "class " << c;
  EXPECT_GT(runs, 5000u);
}

TEST(InitialContentsTest, DeterministicPerSeedAndGfn) {
  std::vector<std::byte> a(4096), b(4096), c(4096);
  for (PageClass cls : {PageClass::kText, PageClass::kStruct, PageClass::kRandom}) {
    FillPage(a.data(), cls, 1, 100);
    FillPage(b.data(), cls, 1, 100);
    FillPage(c.data(), cls, 2, 100);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
  }
  FillPage(a.data(), PageClass::kText, 1, 5);
  for (std::byte x : a) {
    char ch = static_cast<char>(x);
    EXPECT_TRUE(ch == '\n' || ch == '\t' || (ch >= 32 && ch < 127)) << int(ch);
  }
}

uint64_t PagesIn(const std::vector<memory::PageRange>& runs) {
  uint64_t n = 0;
  for (const memory::PageRange& r : runs) n += r.count;
  return n;
}

TEST(InitialContentsTest, BootPrivateRunsAreTheAskedShareOfWholeAlignedRuns) {
  constexpr uint64_t kDataPages = (uint64_t{256} << 20) / 4096 - 512;  // --mem 256M
  for (uint32_t percent : {1u, 25u, 50u, 99u}) {
    std::vector<memory::PageRange> runs = BootPrivateRuns(3, kDataPages, percent);
    uint64_t want = kDataPages * percent / 100;
    EXPECT_LE(PagesIn(runs), want + kBootPrivateRunPages) << percent << " %";
    EXPECT_GE(PagesIn(runs) + kBootPrivateRunPages, want) << percent << " %";
    for (size_t i = 0; i < runs.size(); ++i) {
      EXPECT_EQ(runs[i].first % kBootPrivateRunPages, 0u);
      EXPECT_EQ(runs[i].count % kBootPrivateRunPages, 0u);
      EXPECT_LE(runs[i].end(), kDataPages);
      if (i > 0) {
        EXPECT_LT(runs[i - 1].end(), runs[i].first) << "neighbours not merged or out of order";
      }
    }
  }
  // Spread over all of memory, not packed at the start.
  std::vector<memory::PageRange> quarter = BootPrivateRuns(3, kDataPages, 25);
  ASSERT_FALSE(quarter.empty());
  EXPECT_LT(quarter.front().first, kDataPages / 8);
  EXPECT_GT(quarter.back().end(), kDataPages - kDataPages / 8);
  EXPECT_GT(quarter.size(), 100u);
}

TEST(InitialContentsTest, BootPrivateRunsDependOnlyOnTheSeed) {
  EXPECT_EQ(BootPrivateRuns(7, 16384, 30), BootPrivateRuns(7, 16384, 30));
  EXPECT_NE(BootPrivateRuns(7, 16384, 30), BootPrivateRuns(8, 16384, 30));
  EXPECT_TRUE(BootPrivateRuns(7, 16384, 0).empty());
  EXPECT_EQ(BootPrivateRuns(7, 16384, 100), (std::vector<memory::PageRange>{{0, 16384}}));
  // A partial run at the end is never chosen; fewer than one run's pages give none.
  EXPECT_EQ(BootPrivateRuns(7, 16384 + 15, 100), (std::vector<memory::PageRange>{{0, 16384}}));
  EXPECT_TRUE(BootPrivateRuns(7, 15, 100).empty());
}

TEST(InitialContentsTest, MarkPrivateInRecordSetsOneBitPerPage) {
  std::vector<std::byte> record(4);
  std::vector<memory::PageRange> runs = {{1, 2}, {8, 9}};
  ASSERT_OK(MarkPrivateInRecord(record, runs));
  EXPECT_EQ(record, (std::vector<std::byte>{std::byte{0x06}, std::byte{0xff}, std::byte{0x01}, std::byte{0}}));
  std::vector<memory::PageRange> too_far = {{30, 3}};
  EXPECT_THAT(MarkPrivateInRecord(record, too_far),
              ::gmem::testing::StatusIs(Code::kInvalidArgument, "do not fit the private-page record"));
}

}  // namespace
}  // namespace gmem::vmm
