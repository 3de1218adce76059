#include "format/page_batch.h"

#include <zstd.h>

#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::format {
namespace {

using ::gmem::testing::StatusIs;
using testing::MakePage;
using testing::PageKind;

LayoutRecord BigLayout() {
  LayoutRecord layout;
  layout.regions.push_back(Region{1, 4096, 0, 1ull << 30, 0, 3});
  return layout;
}

struct Encoded {
  Bytes pub, sealed;
};

Encoded Encode(const PageBatchInput& in, Compression c, const LayoutRecord& layout) {
  auto enc = PageBatchEncoder::Create(c, 1);
  EXPECT_TRUE(enc.ok());
  Encoded out;
  Status st = enc->Encode(in, *layout.Find(in.region_id), out.pub, out.sealed);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

PagesRecord Decode(const Encoded& e, Compression c, const LayoutRecord& layout) {
  auto dec = PageBatchDecoder::Create();
  EXPECT_TRUE(dec.ok());
  PagesRecord rec;
  Status st = dec->Decode(e.pub, e.sealed, layout, c, rec);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return rec;
}

Bytes Concat(const std::vector<Bytes>& pages) {
  Bytes all;
  for (const Bytes& p : pages) all.insert(all.end(), p.begin(), p.end());
  return all;
}

class PageKindTest : public ::testing::TestWithParam<std::tuple<PageKind, Compression>> {};

TEST_P(PageKindTest, RoundTrip) {
  auto [kind, compression] = GetParam();
  LayoutRecord layout = BigLayout();
  std::vector<Bytes> pages;
  for (int i = 0; i < 64; ++i) pages.push_back(MakePage(kind, i));
  PageBatchInput in{1, 2, {{100, 64, RunKind::kData}, {200, 1000, RunKind::kZero}}, {}};
  for (const Bytes& p : pages) in.data.push_back(p);
  Encoded e = Encode(in, compression, layout);
  PagesRecord rec = Decode(e, compression, layout);
  EXPECT_EQ(Bytes(rec.data.begin(), rec.data.end()), Concat(pages));
  EXPECT_EQ(rec.runs, in.runs);
  EXPECT_EQ(rec.data_pages, 64u);
  EXPECT_EQ(rec.zero_pages, 1000u);
  EXPECT_EQ(rec.generation, 2u);
  // zstd is used exactly when it pays: never for random pages, always for the others.
  bool expect_zstd = compression == Compression::kZstd && kind != PageKind::kRandom;
  EXPECT_EQ(rec.encoding, expect_zstd ? PageEncoding::kZstd : PageEncoding::kRaw);
  EXPECT_LE(e.sealed.size(), 2 * kPageRunSize + 64 * 4096);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, PageKindTest,
                         ::testing::Combine(::testing::Values(PageKind::kZero, PageKind::kText, PageKind::kStructured,
                                                              PageKind::kRandom),
                                            ::testing::Values(Compression::kZstd, Compression::kNone)));

TEST(PageBatchTest, ZeroOnlyBatchCarriesNoData) {
  LayoutRecord layout = BigLayout();
  PageBatchInput in{1, 1, {{0, 262144, RunKind::kZero}}, {}};
  Encoded e = Encode(in, Compression::kZstd, layout);
  EXPECT_EQ(e.sealed.size(), kPageRunSize);
  PagesRecord rec = Decode(e, Compression::kZstd, layout);
  EXPECT_TRUE(rec.data.empty());
  EXPECT_EQ(rec.zero_pages, 262144u);
}

TEST(PageBatchTest, MaximalBatches) {
  LayoutRecord layout = BigLayout();
  // 16 MiB of data in one run.
  std::vector<Bytes> pages;
  for (int i = 0; i < 4096; ++i) pages.push_back(MakePage(PageKind::kStructured, i));
  PageBatchInput in{1, 1, {{0, 4096, RunKind::kData}}, {}};
  for (const Bytes& p : pages) in.data.push_back(p);
  PagesRecord big = Decode(Encode(in, Compression::kZstd, layout), Compression::kZstd, layout);
  EXPECT_EQ(Bytes(big.data.begin(), big.data.end()), Concat(pages));
  // 4096 runs, alternating data and zero.
  PageBatchInput many{1, 1, {}, {}};
  std::vector<Bytes> data;
  for (uint32_t i = 0; i < kMaxPageRuns; ++i) {
    bool is_data = i % 2 == 0;
    many.runs.push_back({uint64_t{i} * 2, 1, is_data ? RunKind::kData : RunKind::kZero});
    if (is_data) data.push_back(MakePage(PageKind::kText, i));
  }
  for (const Bytes& p : data) many.data.push_back(p);
  Encoded encoded = Encode(many, Compression::kNone, layout);  // a raw record's data is a view of it
  PagesRecord rec = Decode(encoded, Compression::kNone, layout);
  EXPECT_EQ(rec.runs.size(), kMaxPageRuns);
  EXPECT_EQ(Bytes(rec.data.begin(), rec.data.end()), Concat(data));
}

// A raw batch whose pages follow the caller's headroom is encoded in place: the sealed payload is
// the headroom's tail and the pages themselves, byte for byte what a copying encode gives.
TEST(PageBatchTest, RawBatchInHeadroomIsEncodedInPlace) {
  LayoutRecord layout = BigLayout();
  constexpr size_t kHeadroom = 4 * kPageRunSize;
  Bytes buffer(kHeadroom + 3 * 4096);
  std::vector<Bytes> pages;
  for (int i = 0; i < 3; ++i) {
    pages.push_back(MakePage(PageKind::kRandom, i));
    std::copy(pages[i].begin(), pages[i].end(), buffer.begin() + kHeadroom + i * 4096);
  }
  PageBatchInput in{1, 7, {{10, 2, RunKind::kData}, {12, 5, RunKind::kZero}, {20, 1, RunKind::kData}}, {}};
  for (int i = 0; i < 3; ++i) in.data.push_back(ByteSpan(buffer.data() + kHeadroom + i * 4096, 4096));
  Encoded copied = Encode(in, Compression::kZstd, layout);

  in.headroom = MutableByteSpan(buffer.data(), kHeadroom);
  auto enc = PageBatchEncoder::Create(Compression::kZstd, 1);
  ASSERT_OK(enc);
  Bytes pub, scratch;
  MutableByteSpan sealed;
  ASSERT_OK(enc->EncodeInto(in, *layout.Find(1), pub, scratch, sealed));
  EXPECT_EQ(sealed.data(), buffer.data() + kHeadroom - 3 * kPageRunSize);  // random pages stay raw
  EXPECT_EQ(sealed.data() + sealed.size(), buffer.data() + buffer.size());
  EXPECT_EQ(pub, copied.pub);
  EXPECT_EQ(Bytes(sealed.begin(), sealed.end()), copied.sealed);

  // Pages that are not back to back after the headroom, or too little headroom: a copy.
  in.headroom = MutableByteSpan(buffer.data(), 2 * kPageRunSize);
  ASSERT_OK(enc->EncodeInto(in, *layout.Find(1), pub, scratch, sealed));
  EXPECT_EQ(sealed.data(), scratch.data());
  EXPECT_EQ(Bytes(sealed.begin(), sealed.end()), copied.sealed);
  std::swap(in.data[0], in.data[1]);
  in.headroom = MutableByteSpan(buffer.data(), kHeadroom);
  ASSERT_OK(enc->EncodeInto(in, *layout.Find(1), pub, scratch, sealed));
  EXPECT_EQ(sealed.data(), scratch.data());
}

TEST(PageBatchTest, EncoderRejectsBadInput) {
  LayoutRecord layout = BigLayout();
  auto enc = PageBatchEncoder::Create(Compression::kZstd, 1);
  ASSERT_OK(enc);
  Bytes pub, sealed;
  Bytes page(4096);
  PageBatchInput too_much{1, 1, {{0, 4097, RunKind::kData}}, {}};
  EXPECT_THAT(enc->Encode(too_much, layout.regions[0], pub, sealed), StatusIs(Code::kInvalidArgument, "more than 16 MiB"));
  PageBatchInput missing{1, 1, {{0, 2, RunKind::kData}}, {page}};
  EXPECT_THAT(enc->Encode(missing, layout.regions[0], pub, sealed), StatusIs(Code::kInvalidArgument, "1 data spans for 2"));
  PageBatchInput short_page{1, 1, {{0, 1, RunKind::kData}}, {ByteSpan(page).first(100)}};
  EXPECT_THAT(enc->Encode(short_page, layout.regions[0], pub, sealed), StatusIs(Code::kInvalidArgument, "not one page"));
  PageBatchInput empty{1, 1, {}, {}};
  EXPECT_THAT(enc->Encode(empty, layout.regions[0], pub, sealed), StatusIs(Code::kInvalidArgument, "run_count 0"));
  EXPECT_THAT(PageBatchEncoder::Create(Compression::kZstd, 99), StatusIs(Code::kInvalidArgument, "zstd level 99"));
}

TEST(PageBatchTest, DecoderRejectsInconsistentBatches) {
  LayoutRecord layout = BigLayout();
  std::vector<Bytes> pages = {MakePage(PageKind::kText, 1), MakePage(PageKind::kText, 2)};
  PageBatchInput in{1, 1, {{0, 2, RunKind::kData}}, {pages[0], pages[1]}};
  Encoded e = Encode(in, Compression::kZstd, layout);
  auto dec = PageBatchDecoder::Create();
  ASSERT_OK(dec);
  PagesRecord rec;

  EXPECT_THAT(dec->Decode(e.pub, e.sealed, layout, Compression::kNone, rec),
              StatusIs(Code::kCorrupt, "header says no compression"));

  Bytes pub = e.pub;
  StoreLe<uint32_t>(pub.data() + 24, 3);  // data_pages
  EXPECT_THAT(dec->Decode(pub, e.sealed, layout, Compression::kZstd, rec), StatusIs(Code::kCorrupt, "summary says"));

  pub = e.pub;
  StoreLe<uint32_t>(pub.data() + 4, 8192);  // page_size
  EXPECT_THAT(dec->Decode(pub, e.sealed, layout, Compression::kZstd, rec), StatusIs(Code::kCorrupt, "page size 8192"));

  pub = e.pub;
  StoreLe<uint32_t>(pub.data() + 20, 0xffffffffu);  // run_count
  EXPECT_THAT(dec->Decode(pub, e.sealed, layout, Compression::kZstd, rec), StatusIs(Code::kCorrupt, "run_count"));

  Bytes sealed = e.sealed;
  sealed.push_back(std::byte{0});
  EXPECT_THAT(dec->Decode(e.pub, sealed, layout, Compression::kZstd, rec), StatusIs(Code::kCorrupt, "fill the record"));

  // A valid zstd frame of the wrong size.
  Bytes small(4096, std::byte{1});
  Bytes frame(ZSTD_compressBound(small.size()));
  frame.resize(ZSTD_compress(frame.data(), frame.size(), small.data(), small.size(), 1));
  sealed.assign(e.sealed.begin(), e.sealed.begin() + kPageRunSize);
  sealed.insert(sealed.end(), frame.begin(), frame.end());
  EXPECT_THAT(dec->Decode(e.pub, sealed, layout, Compression::kZstd, rec), StatusIs(Code::kCorrupt, "declares 4096"));

  // Raw data of the wrong length.
  Encoded raw = Encode(in, Compression::kNone, layout);
  sealed = raw.sealed;
  sealed.pop_back();
  EXPECT_THAT(dec->Decode(raw.pub, sealed, layout, Compression::kNone, rec), StatusIs(Code::kCorrupt, "raw data"));

  // Unknown encoding and run kind.
  pub = raw.pub;
  pub[16] = std::byte{3};
  EXPECT_THAT(dec->Decode(pub, raw.sealed, layout, Compression::kNone, rec), StatusIs(Code::kCorrupt, "unknown encoding"));
  sealed = raw.sealed;
  sealed[12] = std::byte{9};
  EXPECT_THAT(dec->Decode(raw.pub, sealed, layout, Compression::kNone, rec), StatusIs(Code::kCorrupt, "unknown kind"));
}

TEST(PageBatchTest, HugeDeclaredCountsAreRejectedWithoutAllocation) {
  LayoutRecord layout = BigLayout();
  // A run declaring 2^32-1 data pages: rejected by the 16 MiB bound before any buffer grows.
  Bytes pub, sealed;
  ByteWriter p(pub);
  p.U32(1); p.U32(4096); p.U64(1); p.U8(1); p.Zeros(3); p.U32(1); p.U32(0xffffffffu); p.U32(0);
  ByteWriter s(sealed);
  s.U64(0); s.U32(0xffffffffu); s.U8(1); s.Zeros(3);
  auto dec = PageBatchDecoder::Create();
  ASSERT_OK(dec);
  PagesRecord rec;
  EXPECT_THAT(dec->Decode(pub, sealed, layout, Compression::kNone, rec), StatusIs(Code::kCorrupt, "outside region"));
  EXPECT_LT(rec.storage.capacity(), 1u << 20);
}

}  // namespace
}  // namespace gmem::format
