#include "memory/page_bitmap.h"

#include <random>
#include <vector>

#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

TEST(PageBitmapTest, SetClearAndCountAcrossWords) {
  PageBitmap b(200);
  EXPECT_TRUE(b.None());
  b.SetRange(60, 80);  // crosses two word boundaries
  EXPECT_EQ(b.Count(), 80u);
  EXPECT_FALSE(b.Test(59));
  EXPECT_TRUE(b.Test(60));
  EXPECT_TRUE(b.Test(139));
  EXPECT_FALSE(b.Test(140));
  b.ClearRange(64, 64);
  EXPECT_EQ(b.Count(), 16u);
  EXPECT_EQ(b.CountRange(0, 64), 4u);
  EXPECT_EQ(b.CountRange(128, 72), 12u);
  b.ClearAll();
  EXPECT_TRUE(b.None());
}

TEST(PageBitmapTest, NextSetNextClearAndRuns) {
  PageBitmap b(130);
  b.Set(3);
  b.SetRange(64, 3);
  b.Set(129);
  EXPECT_EQ(b.NextSet(0), 3u);
  EXPECT_EQ(b.NextSet(4), 64u);
  EXPECT_EQ(b.NextClear(64), 67u);
  EXPECT_EQ(b.NextSet(67), 129u);
  EXPECT_EQ(b.NextSet(130), 130u);
  std::vector<PageRange> runs;
  b.ForEachRun([&](PageRange r) { runs.push_back(r); });
  EXPECT_EQ(runs, (std::vector<PageRange>{{3, 1}, {64, 3}, {129, 1}}));
  EXPECT_EQ(b.ToVector(), (std::vector<uint64_t>{3, 64, 65, 66, 129}));
  PageBitmap full(70);
  full.SetRange(0, 70);
  EXPECT_EQ(full.NextClear(0), 70u);  // bits past npages never count
  EXPECT_EQ(full.Count(), 70u);
}

TEST(PageBitmapTest, SetOperations) {
  PageBitmap a(100), b(100);
  a.SetRange(0, 50);
  b.SetRange(25, 50);
  PageBitmap o = a;
  o.Or(b);
  EXPECT_EQ(o.Count(), 75u);
  PageBitmap n = a;
  n.And(b);
  EXPECT_EQ(n.ToVector().front(), 25u);
  EXPECT_EQ(n.Count(), 25u);
  PageBitmap d = a;
  d.AndNot(b);
  EXPECT_EQ(d.Count(), 25u);
  EXPECT_EQ(d.NextClear(0), 25u);
}

TEST(PageBitmapTest, RandomizedAgainstVectorOfBool) {
  std::mt19937_64 rng(7);
  constexpr uint64_t kPages = 1000;
  PageBitmap b(kPages);
  std::vector<bool> m(kPages);
  for (int op = 0; op < 5000; ++op) {
    uint64_t first = rng() % kPages;
    uint64_t count = rng() % (kPages - first + 1);
    bool set = rng() & 1;
    if (set) {
      b.SetRange(first, count);
    } else {
      b.ClearRange(first, count);
    }
    for (uint64_t p = first; p < first + count; ++p) m[p] = set;
    uint64_t q = rng() % kPages;
    uint64_t len = rng() % (kPages - q + 1);
    uint64_t want = 0;
    for (uint64_t p = q; p < q + len; ++p) want += m[p] ? 1 : 0;
    ASSERT_EQ(b.CountRange(q, len), want);
    uint64_t next = q;
    while (next < kPages && !m[next]) ++next;
    ASSERT_EQ(b.NextSet(q), next);
  }
}

}  // namespace
}  // namespace gmem::memory
