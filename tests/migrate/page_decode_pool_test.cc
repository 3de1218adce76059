#include "migrate/page_decode_pool.h"

#include <atomic>
#include <map>
#include <mutex>

#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::migrate {
namespace {

using ::gmem::testing::StatusIs;

format::LayoutRecord Layout() {
  format::LayoutRecord layout;
  layout.regions.push_back(format::Region{1, 4096, 0, 1024 * 4096, 0, 3});
  return layout;
}

// An encoded and deferred-decoded zstd batch of two text pages at `first`.
struct Deferred {
  Bytes pub, sealed;
  format::PagesRecord record;
};
Deferred MakeDeferred(uint64_t first, format::PageBatchDecoder& decoder) {
  Deferred d;
  Bytes a = format::testing::MakePage(format::testing::PageKind::kText, first);
  Bytes b = format::testing::MakePage(format::testing::PageKind::kText, first + 1);
  format::PageBatchInput in{1, 3, {{first, 2, format::RunKind::kData}}, {a, b}};
  auto enc = format::PageBatchEncoder::Create(format::Compression::kZstd, 1);
  EXPECT_OK(enc);
  EXPECT_OK(enc->Encode(in, Layout().regions[0], d.pub, d.sealed));
  EXPECT_OK(decoder.Decode(d.pub, d.sealed, Layout(), format::Compression::kZstd, d.record, /*defer_zstd=*/true));
  return d;
}

// What the tests below submit: 100 batches of two text pages at 0, 2, ... 198.
void ExpectEveryBatchApplied(std::map<uint64_t, Bytes>& applied) {
  ASSERT_EQ(applied.size(), 100u);
  for (uint64_t first = 0; first < 200; first += 2) {
    Bytes want = format::testing::MakePage(format::testing::PageKind::kText, first);
    Bytes second = format::testing::MakePage(format::testing::PageKind::kText, first + 1);
    want.insert(want.end(), second.begin(), second.end());
    EXPECT_EQ(applied[first], want) << "batch at " << first;
  }
}

// A pool of two workers that records each applied batch's pages by its first page.
struct RecordingPool {
  std::mutex mu;
  std::map<uint64_t, Bytes> applied;
  PageDecodePool pool{2, [this](const format::PagesRecord& r) {
                        std::lock_guard<std::mutex> lock(mu);
                        applied[r.runs[0].first_page] = Bytes(r.data.begin(), r.data.end());
                        return Status::Ok();
                      }};
};

TEST(PageDecodePoolTest, EveryDeferredBatchIsDecompressedAndApplied) {
  auto decoder = format::PageBatchDecoder::Create();
  ASSERT_OK(decoder);
  RecordingPool recording;
  PageDecodePool& pool = recording.pool;
  for (uint64_t first = 0; first < 200; first += 2) {
    Deferred d = MakeDeferred(first, *decoder);
    ASSERT_FALSE(d.record.zstd_frame.empty());
    ASSERT_TRUE(d.record.data.empty());
    ASSERT_OK(pool.Submit(d.record));  // d goes away at once: the pool keeps its own copy
  }
  ASSERT_OK(pool.Drain());
  ExpectEveryBatchApplied(recording.applied);
}

// The reader's side of ImageReader::ExchangeBuffer: a buffer it reads each record into.
TEST(PageDecodePoolTest, AFrameTakenInExchangeIsNotCopiedAndSurvivesTheReaderReadingOn) {
  auto decoder = format::PageBatchDecoder::Create();
  ASSERT_OK(decoder);
  RecordingPool recording;
  PageDecodePool& pool = recording.pool;
  Bytes reader_buffer;
  for (uint64_t first = 0; first < 200; first += 2) {
    Deferred d = MakeDeferred(first, *decoder);
    reader_buffer.assign(d.record.zstd_frame.begin(), d.record.zstd_frame.end());
    d.record.zstd_frame = reader_buffer;
    const std::byte* frame_at = reader_buffer.data();
    const std::byte* taken_at = nullptr;
    ASSERT_OK(pool.Submit(d.record, [&](Bytes& spare) {
      reader_buffer.swap(spare);
      taken_at = spare.data();
    }));
    EXPECT_EQ(taken_at, frame_at) << "the pool took the buffer itself";
    // The reader reads its next record into the spare it got back.
    std::fill(reader_buffer.begin(), reader_buffer.end(), std::byte{0xff});
  }
  ASSERT_OK(pool.Drain());
  ExpectEveryBatchApplied(recording.applied);
}

TEST(PageDecodePoolTest, TheFirstFailureStopsSubmitAndDrain) {
  auto decoder = format::PageBatchDecoder::Create();
  ASSERT_OK(decoder);
  std::atomic<int> calls{0};
  PageDecodePool pool(2, [&](const format::PagesRecord&) {
    ++calls;
    return Status(Code::kIo, "apply failed");
  });
  Deferred d = MakeDeferred(0, *decoder);
  Status st;
  for (int i = 0; i < 100 && st.ok(); ++i) st = pool.Submit(d.record);
  if (st.ok()) st = pool.Drain();
  EXPECT_THAT(st, StatusIs(Code::kIo, "apply failed"));
  EXPECT_GE(calls.load(), 1);
}

TEST(PageDecodePoolTest, ADamagedFrameIsCorrupt) {
  auto decoder = format::PageBatchDecoder::Create();
  ASSERT_OK(decoder);
  PageDecodePool pool(1, [](const format::PagesRecord&) { return Status::Ok(); });
  Deferred d = MakeDeferred(0, *decoder);
  Bytes frame(d.record.zstd_frame.begin(), d.record.zstd_frame.end());
  frame[frame.size() / 2] ^= std::byte{0x5a};
  frame[frame.size() / 2 + 1] ^= std::byte{0xa5};
  d.record.zstd_frame = frame;
  ASSERT_OK(pool.Submit(d.record));
  EXPECT_THAT(pool.Drain(), StatusIs(Code::kCorrupt, "PAGES zstd frame"));
}

}  // namespace
}  // namespace gmem::migrate
