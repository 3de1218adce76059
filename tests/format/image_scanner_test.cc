#include "format/image_scanner.h"

#include "base/io.h"
#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::format {
namespace {

using ::gmem::testing::StatusIs;
using ::gmem::testing::Truncate;

std::vector<ScannedRecord> ScanAll(ByteSpan bytes, Status* error = nullptr) {
  MemorySource source(bytes);
  std::vector<ScannedRecord> out;
  auto scanner = ImageScanner::Open(source);
  if (!scanner.ok()) {
    if (error != nullptr) *error = scanner.status();
    return out;
  }
  while (true) {
    auto rec = scanner->Next();
    if (!rec.ok()) {
      if (error != nullptr) *error = rec.status();
      return out;
    }
    if (!rec->has_value()) return out;
    out.push_back(std::move(**rec));
  }
}

TEST(ImageScannerTest, ListsEveryRecordWithoutAKey) {
  testing::SampleImage s = testing::WriteSample(testing::FixedKeySource());
  Status error;
  std::vector<ScannedRecord> recs = ScanAll(s.bytes, &error);
  ASSERT_OK(error);
  ASSERT_EQ(recs.size(), 7u);
  EXPECT_EQ(recs[0].frame.type, RecordType::kLayout);
  auto layout = DecodeLayout(recs[0].public_part);
  ASSERT_OK(layout);
  EXPECT_EQ(*layout, s.layout);
  EXPECT_EQ(recs[2].frame.type, RecordType::kPages);
  auto summary = DecodePagesSummary(recs[2].public_part);
  ASSERT_OK(summary);
  EXPECT_EQ(summary->data_pages, 3u);
  EXPECT_EQ(summary->zero_pages, 5u);
  EXPECT_EQ(recs[6].frame.type, RecordType::kEnd);
  auto end = DecodeEnd(recs[6].public_part);
  ASSERT_OK(end);
  EXPECT_EQ(*end, s.end);
  EXPECT_EQ(recs[1].offset, kHeaderSize + kFrameSize + recs[0].public_part.size() + kTagSize);
}

TEST(ImageScannerTest, ReportsTruncationAndTrailingBytes) {
  testing::SampleImage s = testing::WriteSample(testing::FixedKeySource());
  for (size_t n : {size_t{0}, size_t{100}, kHeaderSize, kHeaderSize + 10, s.bytes.size() - 1}) {
    Status error;
    ScanAll(Truncate(s.bytes, n), &error);
    EXPECT_THAT(error, StatusIs(Code::kCorrupt, n == 0 ? "empty input" : "truncated")) << n;
  }
  Bytes extra = s.bytes;
  extra.push_back(std::byte{1});
  Status error;
  ScanAll(extra, &error);
  EXPECT_THAT(error, StatusIs(Code::kCorrupt, "after END"));
}

}  // namespace
}  // namespace gmem::format
