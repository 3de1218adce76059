#include "format/image_writer.h"

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
  EXPECT_THAT(w->WritePass(PassRecord{}), StatusIs(Code::kInvalidArgument, "earlier write failed"));
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

}  // namespace
}  // namespace gmem::format
