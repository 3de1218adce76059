#include "snapshot/image_summary.h"

#include "base/io.h"
#include "tests/format/image_fixture.h"
#include "tests/snapshot/snapshot_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::snapshot {
namespace {

using ::gmem::testing::StatusIs;
using format::RecordType;
using format::testing::FixedKeySource;
using format::testing::WriteSample;

TEST(ImageSummaryTest, SummarizeNeedsNoKeyAndCountsEverything) {
  auto s = WriteSample(FixedKeySource());
  MemorySource source(s.bytes);
  auto sum = Summarize(source);
  ASSERT_OK(sum);
  EXPECT_EQ(sum->header.stream_id, s.keys->header().stream_id);
  ASSERT_TRUE(sum->layout.has_value());
  EXPECT_EQ(*sum->layout, s.layout);
  EXPECT_EQ(sum->records, 7u);
  EXPECT_EQ(sum->records_by_type[static_cast<size_t>(RecordType::kPages)], 1u);
  EXPECT_EQ(sum->data_pages, 3u);
  EXPECT_EQ(sum->zero_pages, 5u);
  EXPECT_EQ(sum->private_pages, 2u);
  EXPECT_EQ(sum->raw_bytes, 3u * 4096);
  EXPECT_GT(sum->stored_bytes, 0u);
  EXPECT_EQ(sum->image_bytes, s.bytes.size());
  ASSERT_TRUE(sum->end.has_value());
  EXPECT_EQ(*sum->end, s.end);
}

TEST(ImageSummaryTest, VerifyAuthenticatesAndAgreesWithSummarize) {
  auto s = WriteSample(FixedKeySource());
  MemorySource a(s.bytes);
  auto verified = Verify(a, FixedKeySource(), false);
  ASSERT_OK(verified);
  MemorySource b(s.bytes);
  auto summary = Summarize(b);
  ASSERT_OK(summary);
  EXPECT_EQ(verified->records_by_type, summary->records_by_type);
  EXPECT_EQ(verified->data_pages, summary->data_pages);
  EXPECT_EQ(verified->private_pages, summary->private_pages);
  EXPECT_EQ(verified->image_bytes, s.bytes.size());
}

TEST(ImageSummaryTest, VerifyCatchesWhatSummarizeCannot) {
  auto s = WriteSample(FixedKeySource());
  // A flipped byte in a sealed part: the keyless walk cannot see it, verification must.
  Bytes bad = ::gmem::testing::FlipByte(s.bytes, s.bytes.size() / 2);
  MemorySource a(bad);
  EXPECT_OK(Summarize(a));
  MemorySource b(bad);
  EXPECT_THAT(Verify(b, FixedKeySource(), false), StatusIs(Code::kAuth, "authentication failed"));
  MemorySource c(s.bytes);
  EXPECT_THAT(Verify(c, FixedKeySource(9), false), StatusIs(Code::kAuth, "wrong key"));
}

TEST(ImageSummaryTest, EveryFlippedHeaderByteFailsVerify) {
  auto s = WriteSample(FixedKeySource());
  for (size_t i = 0; i < format::kHeaderSize; ++i) {
    Bytes bad = ::gmem::testing::FlipByte(s.bytes, i);
    MemorySource source(bad);
    auto verified = Verify(source, FixedKeySource(), false);
    ASSERT_FALSE(verified.ok()) << "byte " << i;
    EXPECT_THAT(verified.status().code(), ::testing::AnyOf(Code::kCorrupt, Code::kAuth, Code::kIncompatible))
        << "byte " << i << ": " << verified.status().ToString();
  }
}

TEST(ImageSummaryTest, RecordsOutOfOrderAreCorruptionInAFile) {
  auto s = WriteSample(FixedKeySource());
  // Records 1 (ATTRS) and 2 (PAGES) exchanged: on a live stream a protocol error, in a file damage.
  Bytes swapped = testing::SwapRecords(s.bytes, 1, 2);
  MemorySource a(swapped);
  EXPECT_THAT(Verify(a, FixedKeySource(), false), StatusIs(Code::kCorrupt, "out of sequence"));
  MemorySource b(swapped);
  EXPECT_THAT(Summarize(b), StatusIs(Code::kCorrupt, "out of sequence"));
}

}  // namespace
}  // namespace gmem::snapshot
