// snapshot::ReadImageContents and snapshot::Compare on images written here with the format's
// writer, so each rule (newest generation wins, zero runs, attribute overlays, layout changes,
// state) is tested on its own. The end-to-end diff of real VMs is in save_restore_test.cc.

#include "snapshot/diff.h"

#include "base/io.h"
#include "tests/format/image_fixture.h"
#include "tests/snapshot/snapshot_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::snapshot {
namespace {

using format::AttrsRecord;
using format::PageAttr;
using format::Region;
using format::RunKind;
using format::testing::FixedKeySource;
using format::testing::MakePage;
using format::testing::PageKind;
using ::gmem::testing::StatusIs;

using testing::Batch;
using testing::kPage;
using testing::Layout;
using Spec = testing::ImageSpec;

Bytes Write(const Spec& spec) { return testing::WriteImage(spec, FixedKeySource()); }

Expected<ImageContents> Read(const Bytes& image, ContentsOptions options = {}) {
  MemorySource source(image);
  return ReadImageContents(source, FixedKeySource(), options);
}

DiffReport Diff(const Spec& a, const Spec& b) {
  auto ca = Read(Write(a));
  auto cb = Read(Write(b));
  EXPECT_OK(ca);
  EXPECT_OK(cb);
  if (!ca.ok() || !cb.ok()) return {};
  return Compare(*ca, *cb);
}

// Pages 0..n-1 of random contents (seeded), as one DATA run.
Batch DataPages(uint64_t first, uint32_t n, uint64_t seed, uint64_t generation = 1, uint32_t region = 0) {
  Batch b{region, generation, {{first, n, RunKind::kData}}, {}};
  for (uint32_t i = 0; i < n; ++i) b.pages.push_back(MakePage(PageKind::kRandom, seed + i));
  return b;
}

TEST(ImageContentsTest, IdenticalMemoryIsIdenticalWhateverTheStreamOrCompression) {
  Spec a;
  a.batches = {DataPages(0, 10, 100)};
  Spec b = a;
  b.params.compression = format::Compression::kNone;
  DiffReport d = Diff(a, b);
  EXPECT_TRUE(d.identical());
  ASSERT_EQ(d.regions.size(), 1u);
  EXPECT_EQ(d.regions[0].compared_pages, 64u);
  EXPECT_EQ(d.differ, 0u);
}

TEST(ImageContentsTest, ChangedPagesAreCountedByRegionAndByAttributeInB) {
  Spec a;
  a.layout = Layout({{0, 64}, {5, 32}});
  a.batches = {DataPages(0, 10, 100), DataPages(0, 4, 500, 1, 5)};
  Spec b = a;
  b.batches[0].pages[3] = MakePage(PageKind::kText, 3);   // region 0, page 3
  b.batches[0].pages[7] = MakePage(PageKind::kText, 7);   // region 0, page 7
  b.batches[1].pages[1] = MakePage(PageKind::kText, 11);  // region 5, page 1
  b.attrs = {AttrsRecord{0, 1, {{7, 1, PageAttr::kPrivate}}}};
  DiffReport d = Diff(a, b);
  EXPECT_FALSE(d.identical());
  ASSERT_EQ(d.regions.size(), 2u);
  EXPECT_EQ(d.regions[0].id, 0u);
  EXPECT_EQ(d.regions[0].differ, 2u);
  EXPECT_EQ(d.regions[0].differ_shared, 1u);
  EXPECT_EQ(d.regions[0].differ_private, 1u);
  EXPECT_EQ(d.regions[0].to_private, 1u);
  EXPECT_EQ(d.regions[1].id, 5u);
  EXPECT_EQ(d.regions[1].differ, 1u);
  EXPECT_EQ(d.differ, 3u);
  EXPECT_EQ(d.attr_changes, 1u);
  EXPECT_TRUE(d.layout_changes.empty());
  EXPECT_FALSE(d.state_differs);
}

TEST(ImageContentsTest, AZeroRunAZeroDataPageAndAnAbsentPageAreAllZero) {
  Spec a;  // page 5 absent
  Spec b;
  b.batches = {Batch{0, 1, {{5, 1, RunKind::kZero}}, {}}};
  Spec c;
  c.batches = {Batch{0, 1, {{5, 1, RunKind::kData}}, {Bytes(kPage)}}};
  EXPECT_TRUE(Diff(a, b).identical());
  EXPECT_TRUE(Diff(a, c).identical());
  // ...and a ZERO run really clears what an earlier batch wrote.
  Spec d;
  d.batches = {DataPages(5, 1, 9), Batch{0, 2, {{5, 1, RunKind::kZero}}, {}}};
  EXPECT_TRUE(Diff(a, d).identical());
  Spec e;
  e.batches = {DataPages(5, 1, 9)};
  EXPECT_EQ(Diff(a, e).differ, 1u);
}

TEST(ImageContentsTest, TheNewestGenerationOfAPageWins) {
  Spec newest;
  newest.batches = {DataPages(0, 1, 2)};
  // Generation 2 first, then a stale generation-1 write of the same page: the stale one loses.
  Spec raced;
  raced.batches = {DataPages(0, 1, 2, 2), DataPages(0, 1, 1, 1)};
  EXPECT_TRUE(Diff(newest, raced).identical());
  // Same generation: the later record wins (records of one channel apply in order).
  Spec later;
  later.batches = {DataPages(0, 1, 1, 3), DataPages(0, 1, 2, 3)};
  EXPECT_TRUE(Diff(newest, later).identical());
}

TEST(ImageContentsTest, AttrsOverlayTheirRunsAndTheNewestGenerationWins) {
  Spec a;
  a.attrs = {AttrsRecord{0, 1, {{0, 64, PageAttr::kShared}}}};
  Spec b;
  b.attrs = {AttrsRecord{0, 1, {{10, 4, PageAttr::kPrivate}}},
             AttrsRecord{0, 2, {{12, 1, PageAttr::kShared}}},  // overlays page 12 only
             AttrsRecord{0, 1, {{20, 30, PageAttr::kPrivate}}}};  // stale: ignored
  auto cb = Read(Write(b));
  ASSERT_OK(cb);
  EXPECT_EQ(cb->regions[0].attrs[10], PageAttr::kPrivate);
  EXPECT_EQ(cb->regions[0].attrs[12], PageAttr::kShared);
  EXPECT_EQ(cb->regions[0].attrs[13], PageAttr::kPrivate);
  EXPECT_EQ(cb->regions[0].attrs[20], PageAttr::kShared);
  DiffReport d = Diff(a, b);
  EXPECT_EQ(d.attr_changes, 3u);
  EXPECT_EQ(d.regions[0].to_private, 3u);
  EXPECT_EQ(d.differ, 0u);  // contents equal (all zero): only attributes changed
  EXPECT_FALSE(d.identical());
  DiffReport back = Diff(b, a);
  EXPECT_EQ(back.regions[0].to_shared, 3u);
}

TEST(ImageContentsTest, LayoutChangesAreReportedAndCommonPagesStillCompared) {
  Spec a;
  a.layout = Layout({{0, 64}, {1, 16}, {2, 16}});
  a.batches = {DataPages(0, 8, 1), DataPages(0, 16, 50, 1, 1)};
  Spec b;
  b.layout.regions = {Region{0, kPage, 0, 64 * kPage, 0, 3}, Region{1, kPage, 64 * kPage, 32 * kPage, 0, 3},
                      Region{3, kPage, 96 * kPage, 8 * kPage, 0, 3}};
  b.batches = {DataPages(0, 8, 1), DataPages(0, 16, 50, 1, 1)};
  b.batches[1].pages[15] = MakePage(PageKind::kText, 1);
  DiffReport d = Diff(a, b);
  ASSERT_EQ(d.layout_changes.size(), 3u);
  EXPECT_EQ(d.layout_changes[0].kind, RegionChange::Kind::kChanged);
  EXPECT_EQ(d.layout_changes[0].id, 1u);
  EXPECT_EQ(d.layout_changes[0].fields, std::vector<std::string>{"size"});
  EXPECT_EQ(d.layout_changes[1].kind, RegionChange::Kind::kRemoved);
  EXPECT_EQ(d.layout_changes[1].id, 2u);
  EXPECT_EQ(d.layout_changes[2].kind, RegionChange::Kind::kAdded);
  EXPECT_EQ(d.layout_changes[2].id, 3u);
  ASSERT_EQ(d.regions.size(), 2u);  // regions 0 and 1 are in both
  EXPECT_EQ(d.regions[1].compared_pages, 16u);
  EXPECT_EQ(d.regions[1].differ, 1u);
  EXPECT_FALSE(d.identical());
}

TEST(ImageContentsTest, StateIsComparedButTheStoredDigestIsNot) {
  Spec a;
  a.state = {{"vmm-state", Bytes(32, std::byte{7})}, {"vmm-digest", Bytes(8, std::byte{'a'})}};
  Spec b = a;
  b.state[1].blob = Bytes(8, std::byte{'b'});
  EXPECT_TRUE(Diff(a, b).identical());
  b.state[0].blob[31] = std::byte{8};
  DiffReport d = Diff(a, b);
  EXPECT_TRUE(d.state_differs);
  EXPECT_EQ(d.differ, 0u);
  EXPECT_FALSE(d.identical());
  auto ca = Read(Write(a));
  ASSERT_OK(ca);
  EXPECT_EQ(ca->vmm_digest, "aaaaaaaa");
}

TEST(ImageContentsTest, ThePageHashTableIsNotState) {
  // Like the digest, it follows from memory; and an image saved before page hashes has none.
  Spec a;
  Spec b = a;
  b.state.push_back({"page-hashes/0/0", Bytes(64 * 16, std::byte{3})});
  EXPECT_TRUE(Diff(a, b).identical());
  b.state.push_back({"vmm-extra", Bytes(1, std::byte{3})});
  EXPECT_TRUE(Diff(a, b).state_differs);
}

TEST(ImageContentsTest, ADamagedImageIsAnErrorNotADifference) {
  Spec a;
  a.batches = {DataPages(0, 4, 1), DataPages(10, 4, 2)};
  Bytes image = Write(a);
  auto spans = testing::RecordSpans(image);
  ASSERT_EQ(spans.size(), 5u);  // LAYOUT, PAGES, PAGES, STATE, END
  EXPECT_THAT(Read(::gmem::testing::FlipByte(image, spans[1].offset + spans[1].size / 2)),
              StatusIs(Code::kAuth, "record 1 (PAGES)"));
  EXPECT_THAT(Read(testing::SwapRecords(image, 1, 2)), StatusIs(Code::kCorrupt, "out of sequence"));
  EXPECT_THAT(Read(::gmem::testing::Truncate(image, image.size() - 1)), StatusIs(Code::kCorrupt, "truncated"));
  MemorySource source(image);
  EXPECT_THAT(ReadImageContents(source, FixedKeySource(9), {}), StatusIs(Code::kAuth, "wrong key"));
}

TEST(ImageContentsTest, IncrementalImagesAndHugeTablesAreRefused) {
  Spec child;
  child.params.parent = std::make_pair(format::StreamId{std::byte{1}}, format::Digest{});
  EXPECT_THAT(Read(Write(child)), StatusIs(Code::kUnsupported, "incremental image"));
  Spec big;
  big.layout = Layout({{0, 1024}});
  ContentsOptions small;
  small.max_table_bytes = 1000 * 13;
  EXPECT_THAT(Read(Write(big), small), StatusIs(Code::kUnsupported, "1024 pages"));
  small.max_table_bytes = 1024 * 13;
  EXPECT_OK(Read(Write(big), small));
}

}  // namespace
}  // namespace gmem::snapshot
