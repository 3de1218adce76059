#include "memory/attribute_map.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;
constexpr PageAttr kS = PageAttr::kShared;
constexpr PageAttr kP = PageAttr::kPrivate;

std::vector<AttrRun> R(std::initializer_list<AttrRun> runs) { return runs; }

TEST(AttributeMapTest, NewMapIsOneRun) {
  AttributeMap m(100, kS);
  EXPECT_EQ(m.npages(), 100u);
  EXPECT_EQ(m.Runs(), R({{0, 100, kS}}));
  EXPECT_EQ(m.CountPrivate(), 0u);
  EXPECT_EQ(m.CountShared(), 100u);
  AttributeMap p(7, kP);
  EXPECT_EQ(p.CountPrivate(), 7u);
  EXPECT_EQ(p.Get(6), kP);
}

TEST(AttributeMapTest, EmptyMap) {
  AttributeMap m(0, kS);
  EXPECT_TRUE(m.Runs().empty());
  EXPECT_OK(m.SetRange(0, 0, kP));
  EXPECT_THAT(m.SetRange(0, 1, kP), StatusIs(Code::kInvalidArgument, "outside"));
  EXPECT_EQ(AttributeMap(), m);
}

TEST(AttributeMapTest, SetRangeSplitsInTheMiddle) {
  AttributeMap m(100, kS);
  ASSERT_OK(m.SetRange(10, 5, kP));
  EXPECT_EQ(m.Runs(), R({{0, 10, kS}, {10, 5, kP}, {15, 85, kS}}));
  EXPECT_EQ(m.Get(9), kS);
  EXPECT_EQ(m.Get(10), kP);
  EXPECT_EQ(m.Get(14), kP);
  EXPECT_EQ(m.Get(15), kS);
  EXPECT_EQ(m.CountPrivate(), 5u);
}

TEST(AttributeMapTest, SetRangeAtTheEdges) {
  AttributeMap m(10, kS);
  ASSERT_OK(m.SetRange(0, 1, kP));
  ASSERT_OK(m.SetRange(9, 1, kP));
  EXPECT_EQ(m.Runs(), R({{0, 1, kP}, {1, 8, kS}, {9, 1, kP}}));
  ASSERT_OK(m.SetRange(0, 10, kS));
  EXPECT_EQ(m.Runs(), R({{0, 10, kS}}));
  ASSERT_OK(m.SetRange(0, 10, kP));
  EXPECT_EQ(m.Runs(), R({{0, 10, kP}}));
  EXPECT_EQ(m.CountPrivate(), 10u);
}

TEST(AttributeMapTest, AdjacentEqualRunsCoalesce) {
  AttributeMap m(30, kS);
  ASSERT_OK(m.SetRange(10, 5, kP));
  ASSERT_OK(m.SetRange(15, 5, kP));  // touches the previous run on the right
  EXPECT_EQ(m.Runs(), R({{0, 10, kS}, {10, 10, kP}, {20, 10, kS}}));
  ASSERT_OK(m.SetRange(5, 5, kP));  // touches on the left
  EXPECT_EQ(m.Runs(), R({{0, 5, kS}, {5, 15, kP}, {20, 10, kS}}));
  ASSERT_OK(m.SetRange(5, 15, kS));  // fills the gap: everything merges back
  EXPECT_EQ(m.Runs(), R({{0, 30, kS}}));
  EXPECT_EQ(m.run_count(), 1u);
}

TEST(AttributeMapTest, RangeSpanningSeveralRunsReplacesThem) {
  AttributeMap m(20, kS);
  ASSERT_OK(m.SetRange(2, 2, kP));
  ASSERT_OK(m.SetRange(6, 2, kP));
  ASSERT_OK(m.SetRange(10, 2, kP));
  ASSERT_OK(m.SetRange(3, 8, kS));  // cuts into the first and last private runs
  EXPECT_EQ(m.Runs(), R({{0, 2, kS}, {2, 1, kP}, {3, 8, kS}, {11, 1, kP}, {12, 8, kS}}));
  EXPECT_EQ(m.CountPrivate(), 2u);
}

TEST(AttributeMapTest, SettingTheSameAttributeChangesNothing) {
  AttributeMap m(20, kS);
  ASSERT_OK(m.SetRange(5, 5, kP));
  AttributeMap before = m;
  ASSERT_OK(m.SetRange(6, 2, kP));
  ASSERT_OK(m.SetRange(0, 3, kS));
  EXPECT_EQ(m, before);
}

TEST(AttributeMapTest, BadRangesAndAttributesAreRejectedWithoutChange) {
  AttributeMap m(10, kS);
  ASSERT_OK(m.SetRange(3, 2, kP));
  AttributeMap before = m;
  EXPECT_THAT(m.SetRange(11, 0, kP), StatusIs(Code::kInvalidArgument, "outside"));
  EXPECT_THAT(m.SetRange(5, 6, kP), StatusIs(Code::kInvalidArgument, "outside"));
  EXPECT_THAT(m.SetRange(5, UINT64_MAX, kP), StatusIs(Code::kInvalidArgument, "outside"));  // wraps
  EXPECT_THAT(m.SetRange(0, 1, static_cast<PageAttr>(0)), StatusIs(Code::kInvalidArgument, "invalid"));
  EXPECT_THAT(m.SetRange(0, 1, static_cast<PageAttr>(3)), StatusIs(Code::kInvalidArgument, "invalid"));
  EXPECT_OK(m.SetRange(10, 0, kP));  // empty range at the end is fine
  EXPECT_EQ(m, before);
}

TEST(AttributeMapTest, CompareListsMaximalDifferingRanges) {
  AttributeMap a(50, kS);
  AttributeMap b(50, kS);
  EXPECT_TRUE(a.Compare(b)->empty());
  ASSERT_OK(a.SetRange(0, 5, kP));
  ASSERT_OK(b.SetRange(10, 5, kP));
  ASSERT_OK(a.SetRange(20, 10, kP));
  ASSERT_OK(b.SetRange(25, 10, kP));  // overlap 25..29 is equal (private)
  ASSERT_OK(a.SetRange(49, 1, kP));
  auto diff = a.Compare(b);
  ASSERT_OK(diff);
  std::vector<PageRange> want = {{0, 5}, {10, 5}, {20, 5}, {30, 5}, {49, 1}};
  EXPECT_EQ(*diff, want);
  EXPECT_EQ(*b.Compare(a), want);  // symmetric
}

TEST(AttributeMapTest, CompareMergesAcrossRunBoundaries) {
  // a: P P S S ; b: S S P P -> every page differs, one range even though runs change at page 2.
  AttributeMap a(4, kS);
  AttributeMap b(4, kS);
  ASSERT_OK(a.SetRange(0, 2, kP));
  ASSERT_OK(b.SetRange(2, 2, kP));
  EXPECT_EQ(*a.Compare(b), (std::vector<PageRange>{{0, 4}}));
}

TEST(AttributeMapTest, CompareRejectsDifferentSizes) {
  EXPECT_THAT(AttributeMap(4, kS).Compare(AttributeMap(5, kS)), StatusIs(Code::kInvalidArgument, "4 and 5"));
}

TEST(AttributeMapTest, ForEachRunInClips) {
  AttributeMap m(20, kS);
  ASSERT_OK(m.SetRange(5, 10, kP));
  std::vector<AttrRun> got;
  m.ForEachRunIn(3, 5, [&](const AttrRun& r) { got.push_back(r); });
  EXPECT_EQ(got, R({{3, 2, kS}, {5, 3, kP}}));
  got.clear();
  m.ForEachRunIn(18, 100, [&](const AttrRun& r) { got.push_back(r); });  // clipped at the end
  EXPECT_EQ(got, R({{18, 2, kS}}));
  got.clear();
  m.ForEachRunIn(20, 5, [&](const AttrRun& r) { got.push_back(r); });
  EXPECT_TRUE(got.empty());
}

TEST(AttributeMapTest, FromRunsRoundTrips) {
  AttributeMap m(64, kS);
  ASSERT_OK(m.SetRange(1, 3, kP));
  ASSERT_OK(m.SetRange(40, 24, kP));
  auto back = AttributeMap::FromRuns(64, m.Runs());
  ASSERT_OK(back);
  EXPECT_EQ(*back, m);
  EXPECT_EQ(back->CountPrivate(), 27u);
}

TEST(AttributeMapTest, FromRunsMergesEqualNeighbours) {
  auto m = AttributeMap::FromRuns(10, R({{0, 3, kS}, {3, 3, kS}, {6, 4, kP}}));
  ASSERT_OK(m);
  EXPECT_EQ(m->Runs(), R({{0, 6, kS}, {6, 4, kP}}));
}

TEST(AttributeMapTest, FromRunsRejectsMalformedRuns) {
  EXPECT_THAT(AttributeMap::FromRuns(10, R({{0, 3, kS}, {4, 6, kP}})),
              StatusIs(Code::kInvalidArgument, "run 1: starts at page 4, expected 3"));
  EXPECT_THAT(AttributeMap::FromRuns(10, R({{0, 5, kS}, {3, 7, kP}})),
              StatusIs(Code::kInvalidArgument, "run 1: starts at page 3"));
  EXPECT_THAT(AttributeMap::FromRuns(10, R({{0, 0, kS}, {0, 10, kP}})),
              StatusIs(Code::kInvalidArgument, "run 0: empty run"));
  EXPECT_THAT(AttributeMap::FromRuns(10, R({{0, 10, static_cast<PageAttr>(0)}})),
              StatusIs(Code::kInvalidArgument, "invalid attribute 0"));
  EXPECT_THAT(AttributeMap::FromRuns(10, R({{0, 10, static_cast<PageAttr>(7)}})),
              StatusIs(Code::kInvalidArgument, "invalid attribute 7"));
  EXPECT_THAT(AttributeMap::FromRuns(10, R({{0, 9, kS}})), StatusIs(Code::kInvalidArgument, "cover 9 of 10"));
  EXPECT_THAT(AttributeMap::FromRuns(10, R({{0, 11, kS}})), StatusIs(Code::kInvalidArgument, "ends past"));
  EXPECT_THAT(AttributeMap::FromRuns(10, R({{0, 5, kS}, {5, UINT64_MAX, kP}})),
              StatusIs(Code::kInvalidArgument, "ends past"));
  EXPECT_THAT(AttributeMap::FromRuns(10, {}), StatusIs(Code::kInvalidArgument, "cover 0 of 10"));
}

// The map against the obvious model: one attribute per page in a vector.
class Model {
 public:
  Model(uint64_t n, PageAttr a) : pages_(n, a) {}
  void Set(uint64_t first, uint64_t count, PageAttr a) {
    for (uint64_t p = first; p < first + count; ++p) pages_[p] = a;
  }
  std::vector<AttrRun> Runs() const {
    std::vector<AttrRun> out;
    for (uint64_t p = 0; p < pages_.size(); ++p) {
      if (!out.empty() && out.back().attr == pages_[p]) {
        ++out.back().count;
      } else {
        out.push_back(AttrRun{p, 1, pages_[p]});
      }
    }
    return out;
  }
  uint64_t CountPrivate() const {
    uint64_t n = 0;
    for (PageAttr a : pages_) n += a == kP ? 1 : 0;
    return n;
  }
  std::vector<PageRange> Diff(const Model& o) const {
    std::vector<PageRange> out;
    for (uint64_t p = 0; p < pages_.size(); ++p) {
      if (pages_[p] == o.pages_[p]) continue;
      if (!out.empty() && out.back().end() == p) {
        ++out.back().count;
      } else {
        out.push_back(PageRange{p, 1});
      }
    }
    return out;
  }
  PageAttr Get(uint64_t p) const { return pages_[p]; }

 private:
  std::vector<PageAttr> pages_;
};

TEST(AttributeMapTest, RandomizedAgainstPerPageModel) {
  std::mt19937_64 rng(20240611);  // fixed seed: failures reproduce
  constexpr uint64_t kPages = 777;
  AttributeMap a(kPages, kS), b(kPages, kS);
  Model ma(kPages, kS), mb(kPages, kS);
  for (int op = 0; op < 20000; ++op) {
    // Mostly short ranges (many runs), sometimes long ones (mass merges), sometimes at the edges.
    uint64_t first = rng() % kPages;
    uint64_t max_len = (rng() % 8 == 0) ? kPages - first : std::min<uint64_t>(kPages - first, 16);
    uint64_t count = rng() % (max_len + 1);
    PageAttr attr = (rng() & 1) ? kP : kS;
    bool on_a = rng() & 1;
    ASSERT_OK((on_a ? a : b).SetRange(first, count, attr));
    (on_a ? ma : mb).Set(first, count, attr);
    if (op % 97 == 0) {
      ASSERT_EQ(a.Runs(), ma.Runs()) << "after op " << op;
      ASSERT_EQ(b.Runs(), mb.Runs()) << "after op " << op;
      ASSERT_EQ(a.CountPrivate(), ma.CountPrivate());
      ASSERT_EQ(*a.Compare(b), ma.Diff(mb)) << "after op " << op;
      for (int probe = 0; probe < 20; ++probe) {
        uint64_t p = rng() % kPages;
        ASSERT_EQ(a.Get(p), ma.Get(p)) << "page " << p << " after op " << op;
      }
      ASSERT_EQ(*AttributeMap::FromRuns(kPages, a.Runs()), a);
    }
  }
}

}  // namespace
}  // namespace gmem::memory
