#include "format/records.h"

#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::format {
namespace {

using ::gmem::testing::StatusIs;
using testing::TwoRegionLayout;

TEST(LayoutTest, RoundTrip) {
  LayoutRecord layout = TwoRegionLayout();
  auto decoded = DecodeLayout(EncodeLayout(layout));
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, layout);
}

TEST(LayoutTest, MaximalLayoutRoundTrips) {
  LayoutRecord layout;
  for (uint32_t i = 0; i < kMaxRegions; ++i) layout.regions.push_back(Region{i, 4096, uint64_t{i} << 30, 1u << 20, 0, 3});
  auto decoded = DecodeLayout(EncodeLayout(layout));
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, layout);
  layout.regions.push_back(Region{999, 4096, 1ull << 40, 4096, 0, 0});
  EXPECT_THAT(DecodeLayout(EncodeLayout(layout)), StatusIs(Code::kCorrupt, "region_count 257"));
}

TEST(LayoutTest, RejectsEachBrokenRule) {
  auto check = [](LayoutRecord l, const char* msg) {
    EXPECT_THAT(DecodeLayout(EncodeLayout(l)), StatusIs(Code::kCorrupt, msg)) << msg;
  };
  check(LayoutRecord{}, "region_count 0");
  LayoutRecord l = TwoRegionLayout();
  l.regions[1].id = 1;
  check(l, "appears twice");
  l = TwoRegionLayout();
  l.regions[0].page_size = 3000;
  check(l, "page size 3000");
  l = TwoRegionLayout();
  l.regions[0].size_bytes = 4097;
  check(l, "size 4097");
  l = TwoRegionLayout();
  l.regions[0].size_bytes = 0;
  check(l, "size 0");
  l = TwoRegionLayout();
  l.regions[0].gpa_base = 100;
  check(l, "not page aligned");
  l = TwoRegionLayout();
  l.regions[1].gpa_base = 4096;
  check(l, "overlapping");
  l = TwoRegionLayout();
  l.regions[0].gpa_base = UINT64_MAX - 4095;
  check(l, "overflows");
}

TEST(LayoutTest, RejectsReservedAndLengthMismatch) {
  Bytes b = EncodeLayout(TwoRegionLayout());
  Bytes reserved = b;
  reserved[4] = std::byte{1};
  EXPECT_THAT(DecodeLayout(reserved), StatusIs(Code::kCorrupt, "reserved"));
  Bytes entry_reserved = b;
  entry_reserved[8 + 47] = std::byte{1};
  EXPECT_THAT(DecodeLayout(entry_reserved), StatusIs(Code::kCorrupt, "reserved"));
  b.push_back(std::byte{0});
  EXPECT_THAT(DecodeLayout(b), StatusIs(Code::kCorrupt, "bytes for 2 regions"));
  EXPECT_THAT(DecodeLayout(Bytes(3)), StatusIs(Code::kCorrupt, "truncated"));
}

TEST(AttrsTest, RoundTripIncludingEmpty) {
  LayoutRecord layout = TwoRegionLayout();
  for (const AttrsRecord& rec :
       {AttrsRecord{1, 5, {}}, AttrsRecord{7, 1, {{0, 16, PageAttr::kPrivate}}},
        AttrsRecord{1, 2, {{0, 1, PageAttr::kShared}, {1, 1, PageAttr::kPrivate}, {63, 1, PageAttr::kShared}}}}) {
    auto bytes = EncodeAttrs(rec, *layout.Find(rec.region_id));
    ASSERT_OK(bytes);
    auto decoded = DecodeAttrs(*bytes, layout);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, rec);
  }
}

TEST(AttrsTest, MaximalRunCountFitsPublicPart) {
  LayoutRecord layout;
  layout.regions.push_back(Region{1, 4096, 0, uint64_t{kMaxAttrRuns} * 2 * 4096, 0, 0});
  AttrsRecord rec{1, 1, {}};
  for (uint64_t i = 0; i < kMaxAttrRuns; ++i) rec.runs.push_back({2 * i, 1, i % 2 ? PageAttr::kPrivate : PageAttr::kShared});
  auto bytes = EncodeAttrs(rec, layout.regions[0]);
  ASSERT_OK(bytes);
  EXPECT_LE(bytes->size(), kMaxPublicLength);
  auto decoded = DecodeAttrs(*bytes, layout);
  ASSERT_OK(decoded);
  EXPECT_EQ(decoded->runs.size(), kMaxAttrRuns);
  rec.runs.push_back({2 * uint64_t{kMaxAttrRuns} - 1, 1, PageAttr::kShared});
  EXPECT_THAT(EncodeAttrs(rec, layout.regions[0]), StatusIs(Code::kInvalidArgument, "too many attribute runs"));
}

TEST(AttrsTest, RejectsBadRuns) {
  LayoutRecord layout = TwoRegionLayout();
  const Region& r = *layout.Find(7);
  EXPECT_THAT(EncodeAttrs({7, 1, {{0, 17, PageAttr::kShared}}}, r), StatusIs(Code::kInvalidArgument, "outside region 7"));
  EXPECT_THAT(EncodeAttrs({7, 1, {{4, 2, PageAttr::kShared}, {5, 1, PageAttr::kShared}}}, r),
              StatusIs(Code::kInvalidArgument, "out of order"));
  EXPECT_THAT(EncodeAttrs({7, 1, {{4, 0, PageAttr::kShared}}}, r), StatusIs(Code::kInvalidArgument, "empty"));
  EXPECT_THAT(EncodeAttrs({7, 1, {{4, 1, PageAttr::kInvalid}}}, r), StatusIs(Code::kInvalidArgument, "unknown attribute"));
  // Decoder: region missing from layout, count/length mismatch, overflow of first_page + npages.
  auto ok = EncodeAttrs({7, 1, {{0, 1, PageAttr::kShared}}}, r);
  ASSERT_OK(ok);
  Bytes bad = *ok;
  StoreLe<uint32_t>(bad.data(), 8);
  EXPECT_THAT(DecodeAttrs(bad, layout), StatusIs(Code::kCorrupt, "region 8 is not in the layout"));
  bad = *ok;
  StoreLe<uint32_t>(bad.data() + 4, 2);
  EXPECT_THAT(DecodeAttrs(bad, layout), StatusIs(Code::kCorrupt, "run_count 2"));
  bad = *ok;
  StoreLe<uint64_t>(bad.data() + 16, UINT64_MAX);
  EXPECT_THAT(DecodeAttrs(bad, layout), StatusIs(Code::kCorrupt, "outside region 7"));
}

TEST(PrivateTest, RoundTripIncludingMaximal) {
  LayoutRecord layout;
  layout.regions.push_back(Region{2, 4096, 0, uint64_t{kMaxBlobs} * 4096, 0, 0});
  PrivateRecord rec{2, 3, 4, {}};
  for (uint64_t i = 0; i < kMaxBlobs; ++i) rec.blobs.push_back({i, Bytes(1 + i % 64, std::byte(i))});
  rec.blobs.back().blob = Bytes(kMaxBlobBytes, std::byte{9});
  Bytes pub, sealed;
  ASSERT_OK(EncodePrivate(rec, layout.regions[0], pub, sealed));
  auto decoded = DecodePrivate(pub, sealed, layout);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, rec);
}

TEST(PrivateTest, RejectsBadBlobs) {
  LayoutRecord layout = TwoRegionLayout();
  const Region& r = *layout.Find(7);
  Bytes pub, sealed;
  EXPECT_THAT(EncodePrivate({7, 1, 1, {}}, r, pub, sealed), StatusIs(Code::kInvalidArgument, "blob_count 0"));
  EXPECT_THAT(EncodePrivate({7, 1, 1, {{16, Bytes(1)}}}, r, pub, sealed), StatusIs(Code::kInvalidArgument, "outside region"));
  EXPECT_THAT(EncodePrivate({7, 1, 1, {{2, Bytes(1)}, {2, Bytes(1)}}}, r, pub, sealed),
              StatusIs(Code::kInvalidArgument, "out of order"));
  EXPECT_THAT(EncodePrivate({7, 1, 1, {{2, Bytes()}}}, r, pub, sealed), StatusIs(Code::kInvalidArgument, "length 0"));
  EXPECT_THAT(EncodePrivate({7, 1, 1, {{2, Bytes(kMaxBlobBytes + 1)}}}, r, pub, sealed),
              StatusIs(Code::kInvalidArgument, "length 65537"));

  ASSERT_OK(EncodePrivate({7, 1, 1, {{2, Bytes(4)}}}, r, pub, sealed));
  Bytes big_count = pub;
  StoreLe<uint32_t>(big_count.data() + 4, kMaxBlobs);
  EXPECT_THAT(DecodePrivate(big_count, sealed, layout), StatusIs(Code::kCorrupt, "does not fit"));
  Bytes big_len = sealed;
  StoreLe<uint32_t>(big_len.data() + 8, 0xffffffffu);
  EXPECT_THAT(DecodePrivate(pub, big_len, layout), StatusIs(Code::kCorrupt, "blob length 4294967295"));
  Bytes short_len = sealed;
  StoreLe<uint32_t>(short_len.data() + 8, 3);
  EXPECT_THAT(DecodePrivate(pub, short_len, layout), StatusIs(Code::kCorrupt, "trailing"));
}

TEST(PassTest, RoundTripAndRejects) {
  PassRecord rec{3, kPassFlagFinal, 1, 2, 3, 4, 5, 6, 7};
  auto bytes = EncodePass(rec);
  ASSERT_OK(bytes);
  ASSERT_EQ(bytes->size(), kPassSize);
  auto decoded = DecodePass(*bytes);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, rec);
  EXPECT_TRUE(decoded->final());
  Bytes bad = *bytes;
  StoreLe<uint32_t>(bad.data() + 4, 2);
  EXPECT_THAT(DecodePass(bad), StatusIs(Code::kCorrupt, "unknown flags"));
  StoreLe<uint32_t>(bad.data(), 0);
  EXPECT_THAT(DecodePass(bad), StatusIs(Code::kCorrupt, "PASS number 0"));
  EXPECT_THAT(EncodePass(PassRecord{0}), StatusIs(Code::kInvalidArgument, "start at 1"));
  EXPECT_THAT(DecodePass(Bytes(63)), StatusIs(Code::kCorrupt, "truncated"));
}

TEST(StateTest, RoundTripAndRejects) {
  StateRecord rec{{{"vcpu/0", Bytes(512, std::byte{3})}, {"empty", Bytes()}, {std::string(64, 'a'), Bytes(1)}}};
  Bytes pub, sealed;
  ASSERT_OK(EncodeState(rec, pub, sealed));
  auto decoded = DecodeState(pub, sealed);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, rec);

  EXPECT_THAT(EncodeState(StateRecord{}, pub, sealed), StatusIs(Code::kInvalidArgument, "entry count 0"));
  EXPECT_THAT(EncodeState({{{"Bad Name", Bytes()}}}, pub, sealed), StatusIs(Code::kInvalidArgument, "name"));
  EXPECT_THAT(EncodeState({{{"a", Bytes()}, {"a", Bytes()}}}, pub, sealed), StatusIs(Code::kInvalidArgument, "twice"));
  EXPECT_THAT(EncodeState({{{std::string(65, 'a'), Bytes()}}}, pub, sealed), StatusIs(Code::kInvalidArgument, "name"));

  ASSERT_OK(EncodeState({{{"x", Bytes(2)}}}, pub, sealed));
  Bytes bad = sealed;
  StoreLe<uint32_t>(bad.data() + 4, 0xffffffffu);
  EXPECT_THAT(DecodeState(pub, bad), StatusIs(Code::kCorrupt, "lengths out of range"));
  bad = sealed;
  bad[8] = std::byte{'X'};
  EXPECT_THAT(DecodeState(pub, bad), StatusIs(Code::kCorrupt, "name"));
  Bytes big_count = pub;
  StoreLe<uint32_t>(big_count.data(), 200);
  EXPECT_THAT(DecodeState(big_count, sealed), StatusIs(Code::kCorrupt, "does not fit"));
}

TEST(EndTest, RoundTrip) {
  EndRecord rec{9, 8, 7, 6, 5, {}};
  rec.digest[0] = std::byte{0xee};
  Bytes b = EncodeEnd(rec);
  ASSERT_EQ(b.size(), kEndSize);
  auto decoded = DecodeEnd(b);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, rec);
  b.push_back(std::byte{0});
  EXPECT_THAT(DecodeEnd(b), StatusIs(Code::kCorrupt, "trailing"));
}

}  // namespace
}  // namespace gmem::format
