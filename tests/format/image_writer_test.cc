#include "format/image_writer.h"

#include <mutex>
#include <thread>
#include <vector>

#include "format/image_reader.h"

#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::format {
namespace {

using ::gmem::testing::FailingSink;
using ::gmem::testing::StatusIs;
using testing::FixedKeySource;

std::shared_ptr<const StreamKeys> Keys(Compression c = Compression::kZstd) {
  StreamParams params;
  params.compression = c;
  auto keys = CreateStream(params, FixedKeySource());
  EXPECT_TRUE(keys.ok());
  return std::make_shared<const StreamKeys>(std::move(keys).value());
}

TEST(ImageWriterTest, EnforcesGrammar) {
  MemorySink sink;
  auto w = ImageWriter::Create(sink, Keys(), {});
  ASSERT_OK(w);
  EXPECT_THAT(w->WriteLayout(testing::TwoRegionLayout()), StatusIs(Code::kInvalidArgument, "Begin() must come first"));
  ASSERT_OK(w->Begin());
  EXPECT_THAT(w->Begin(), StatusIs(Code::kInvalidArgument, "twice"));
  EXPECT_THAT(w->WritePass(PassRecord{}), StatusIs(Code::kInvalidArgument, "PASS before LAYOUT"));
  EXPECT_THAT(w->WriteLayout(LayoutRecord{}), StatusIs(Code::kInvalidArgument, "layout"));
  ASSERT_OK(w->WriteLayout(testing::TwoRegionLayout()));
  EXPECT_THAT(w->WriteLayout(testing::TwoRegionLayout()), StatusIs(Code::kInvalidArgument, "already written"));
  EXPECT_THAT(w->WriteAttrs({99, 1, {}}), StatusIs(Code::kInvalidArgument, "region 99"));
  ASSERT_OK(w->Finish());
  EXPECT_THAT(w->WritePass(PassRecord{}), StatusIs(Code::kInvalidArgument, "already finished"));
  EXPECT_THAT(ImageWriter::Create(sink, Keys(), {3, 1}), StatusIs(Code::kInvalidArgument, "channel 3"));
}

TEST(ImageWriterTest, SinkFailureIsReportedAndSticky) {
  FailingSink sink(400);
  auto w = ImageWriter::Create(sink, Keys(), {});
  ASSERT_OK(w);
  ASSERT_OK(w->Begin());
  ASSERT_OK(w->WriteLayout(testing::TwoRegionLayout()));  // header 192 + LAYOUT 144 fit in 400
  Bytes page = testing::MakePage(testing::PageKind::kRandom, 1);
  Status st = w->WritePages({1, 1, {{0, 1, RunKind::kData}}, {page}});
  EXPECT_THAT(st, StatusIs(Code::kIo, "injected write failure"));
  // Sticky, and it still says why (a second thread on the channel reports the cause).
  EXPECT_THAT(w->WritePass(PassRecord{}), StatusIs(Code::kIo, "an earlier write failed: record 1 (PAGES)"));
  EXPECT_THAT(w->WritePass(PassRecord{}), StatusIs(Code::kIo, "injected write failure"));
}

TEST(ImageWriterTest, NoCompressionStreamNeverEmitsZstd) {
  MemorySink sink;
  auto keys = Keys(Compression::kNone);
  auto w = ImageWriter::Create(sink, keys, {});
  ASSERT_OK(w);
  ASSERT_OK(w->Begin());
  ASSERT_OK(w->WriteLayout(testing::TwoRegionLayout()));
  Bytes page(4096, std::byte{'a'});
  ASSERT_OK(w->WritePages({1, 1, {{0, 1, RunKind::kData}}, {page}}));
  ASSERT_OK(w->Finish());
  MemorySource source(sink.bytes());
  auto r = ImageReader::Open(source, FixedKeySource(), {});
  ASSERT_OK(r);
  ASSERT_OK(r->Next());
  auto rec = r->Next();
  ASSERT_OK(rec);
  EXPECT_EQ(std::get<PagesRecord>((*rec)->body).encoding, PageEncoding::kRaw);
}

TEST(ImageWriterTest, CountsBytesAndRecords) {
  MemorySink sink;
  auto w = ImageWriter::Create(sink, Keys(), {});
  ASSERT_OK(w);
  ASSERT_OK(w->Begin());
  ASSERT_OK(w->WriteLayout(testing::TwoRegionLayout()));
  auto end = w->Finish();
  ASSERT_OK(end);
  EXPECT_EQ(end->record_count, 1u);
  EXPECT_EQ(w->records_written(), 2u);
  EXPECT_EQ(w->bytes_written(), sink.bytes().size());
}

// Two threads encode into one channel with their own encoders and take turns writing: the image
// reads back with every page, in the order written, and END's totals and digest agree.
TEST(ImageWriterTest, BatchesEncodedOnSeveralThreadsWriteOneValidChannel) {
  MemorySink sink;
  auto w = ImageWriter::Create(sink, Keys(), {});
  ASSERT_OK(w);
  ASSERT_OK(w->Begin());
  ASSERT_OK(w->WriteLayout(testing::TwoRegionLayout()));
  constexpr int kBatches = 40;
  std::vector<Bytes> pages;
  for (int i = 0; i < kBatches; ++i) {
    pages.push_back(testing::MakePage(i % 2 == 0 ? testing::PageKind::kText : testing::PageKind::kRandom, i));
  }
  std::mutex turn;
  std::vector<Status> results(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      auto encoder = w->NewEncoder();
      if (!encoder.ok()) {
        results[t] = encoder.status();
        return;
      }
      ImageWriter::EncodedPages encoded;
      for (int i = t; i < kBatches; i += 2) {
        PageBatchInput batch{1, 1, {{uint64_t(i), 1, RunKind::kData}, {uint64_t(kBatches + i % 20), 1, RunKind::kZero}}, {pages[i]}};
        Status st = w->EncodePages(batch, /*try_compress=*/i % 4 == 0, *encoder, encoded);
        if (st.ok()) {
          std::lock_guard<std::mutex> lock(turn);
          st = w->WriteEncoded(encoded);
        }
        if (!st.ok()) {
          results[t] = st;
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_OK(results[0]);
  ASSERT_OK(results[1]);
  EXPECT_EQ(w->pages_records(), uint64_t{kBatches});
  EXPECT_EQ(w->zstd_records(), 10u);  // text pages offered to zstd: i % 4 == 0
  auto end = w->Finish();
  ASSERT_OK(end);
  EXPECT_EQ(end->data_pages, uint64_t{kBatches});
  EXPECT_EQ(end->zero_pages, uint64_t{kBatches});

  MemorySource source(sink.bytes());
  auto r = ImageReader::Open(source, FixedKeySource(), {});
  ASSERT_OK(r);
  int seen = 0;
  while (!r->finished()) {
    auto rec = r->Next();
    ASSERT_OK(rec);
    if (const auto* p = std::get_if<PagesRecord>(&(*rec)->body)) {
      uint64_t i = p->runs[0].first_page;
      ASSERT_LT(i, uint64_t{kBatches});
      EXPECT_EQ(Bytes(p->data.begin(), p->data.end()), pages[i]) << "batch " << i;
      ++seen;
    }
  }
  EXPECT_EQ(seen, kBatches);
}

}  // namespace
}  // namespace gmem::format
