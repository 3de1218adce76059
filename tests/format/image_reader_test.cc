#include "format/image_reader.h"

#include "base/io.h"
#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::format {
namespace {

using ::gmem::testing::FlipByte;
using ::gmem::testing::StatusIs;
using ::gmem::testing::Truncate;
using ::testing::HasSubstr;
using testing::FixedKeySource;
using testing::ReadAll;
using testing::SampleImage;
using testing::WriteSample;

// Splits an image into its header and the byte ranges of its records.
std::vector<Bytes> SplitRecords(const Bytes& image) {
  std::vector<Bytes> parts;
  parts.emplace_back(image.begin(), image.begin() + kHeaderSize);
  size_t at = kHeaderSize;
  while (at < image.size()) {
    uint32_t pub = LoadLe<uint32_t>(image.data() + at + 4);
    uint32_t sealed = LoadLe<uint32_t>(image.data() + at + 16);
    size_t len = kFrameSize + pub + sealed + kTagSize;
    parts.emplace_back(image.begin() + at, image.begin() + at + len);
    at += len;
  }
  return parts;
}

Bytes Join(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(ImageReaderTest, ReadsEveryRecordTypeBack) {
  SampleImage s = WriteSample(FixedKeySource());
  MemorySource source(s.bytes);
  auto reader = ImageReader::Open(source, FixedKeySource(), {});
  ASSERT_OK(reader);
  EXPECT_EQ(reader->header().stream_id, s.keys->header().stream_id);
  std::vector<RecordType> types;
  while (!reader->finished()) {
    auto rec = reader->Next();
    ASSERT_OK(rec);
    const Record& r = **rec;
    types.push_back(r.type);
    switch (r.type) {
      case RecordType::kLayout: EXPECT_EQ(std::get<LayoutRecord>(r.body), s.layout); break;
      case RecordType::kAttrs: EXPECT_EQ(std::get<AttrsRecord>(r.body), s.attrs); break;
      case RecordType::kPages: {
        const PagesRecord& p = std::get<PagesRecord>(r.body);
        Bytes expected;
        for (const Bytes& page : s.pages) expected.insert(expected.end(), page.begin(), page.end());
        EXPECT_EQ(Bytes(p.data.begin(), p.data.end()), expected);
        EXPECT_EQ(p.zero_pages, 5u);
        break;
      }
      case RecordType::kPrivate: EXPECT_EQ(std::get<PrivateRecord>(r.body), s.priv); break;
      case RecordType::kPass: EXPECT_EQ(std::get<PassRecord>(r.body), s.pass); break;
      case RecordType::kState: EXPECT_EQ(std::get<StateRecord>(r.body), s.state); break;
      case RecordType::kEnd: EXPECT_EQ(std::get<EndRecord>(r.body), s.end); break;
      default: ADD_FAILURE() << "unexpected record";
    }
  }
  EXPECT_EQ(types, (std::vector<RecordType>{RecordType::kLayout, RecordType::kAttrs, RecordType::kPages,
                                            RecordType::kPrivate, RecordType::kPass, RecordType::kState,
                                            RecordType::kEnd}));
  EXPECT_THAT(reader->Next(), StatusIs(Code::kProtocol, "past END"));
  EXPECT_EQ(s.end.record_count, 6u);
  EXPECT_EQ(s.end.data_pages, 3u);
  EXPECT_EQ(s.end.private_pages, 2u);
}

// Flipping any single byte anywhere in a sealed image is reported, never accepted.
TEST(ImageReaderTest, EverySingleByteFlipIsDetected) {
  SampleImage s = WriteSample(FixedKeySource());
  ASSERT_OK(ReadAll(s.bytes, FixedKeySource()));
  for (size_t i = 0; i < s.bytes.size(); ++i) {
    auto result = ReadAll(FlipByte(s.bytes, i, 0x80), FixedKeySource());
    ASSERT_FALSE(result.ok()) << "flip at byte " << i << " of " << s.bytes.size() << " was accepted";
  }
}

TEST(ImageReaderTest, EverySingleByteFlipIsDetectedUnencrypted) {
  SampleImage s = WriteSample(KeySource::Insecure());
  ASSERT_OK(ReadAll(s.bytes, KeySource::Insecure(), true));
  for (size_t i = 0; i < s.bytes.size(); ++i) {
    ASSERT_FALSE(ReadAll(FlipByte(s.bytes, i, 0x01), KeySource::Insecure(), true).ok()) << "byte " << i;
  }
}

TEST(ImageReaderTest, TruncationAtEveryOffsetIsReported) {
  SampleImage s = WriteSample(FixedKeySource());
  for (size_t n = 0; n < s.bytes.size(); ++n) {
    auto result = ReadAll(Truncate(s.bytes, n), FixedKeySource());
    ASSERT_FALSE(result.ok()) << "truncated to " << n << " bytes was accepted";
    const char* expect = n == 0 ? "empty input" : "truncated";
    ASSERT_THAT(result, StatusIs(Code::kCorrupt, expect)) << "at " << n;
  }
}

TEST(ImageReaderTest, DroppedDuplicatedAndReorderedRecordsAreReported) {
  SampleImage s = WriteSample(FixedKeySource());
  std::vector<Bytes> parts = SplitRecords(s.bytes);
  ASSERT_EQ(parts.size(), 8u);  // header + 7 records
  for (size_t k = 2; k < parts.size(); ++k) {
    std::vector<Bytes> dropped = parts;
    dropped.erase(dropped.begin() + static_cast<ptrdiff_t>(k));
    EXPECT_FALSE(ReadAll(Join(dropped), FixedKeySource()).ok()) << "dropping record " << k - 1;

    std::vector<Bytes> duplicated = parts;
    duplicated.insert(duplicated.begin() + static_cast<ptrdiff_t>(k), parts[k - 1]);
    EXPECT_THAT(ReadAll(Join(duplicated), FixedKeySource()), StatusIs(Code::kProtocol, "out of sequence"))
        << "duplicating record " << k - 2;
  }
  for (size_t k = 1; k + 1 < parts.size(); ++k) {
    std::vector<Bytes> swapped = parts;
    std::swap(swapped[k], swapped[k + 1]);
    EXPECT_FALSE(ReadAll(Join(swapped), FixedKeySource()).ok()) << "swapping records " << k - 1 << " and " << k;
  }
  // Dropping a middle record names what happened.
  std::vector<Bytes> dropped = parts;
  dropped.erase(dropped.begin() + 3);
  EXPECT_THAT(ReadAll(Join(dropped), FixedKeySource()), StatusIs(Code::kProtocol, "expected record 2, got 3"));
}

TEST(ImageReaderTest, RecordSplicedFromAnotherImageWithTheSameKeyIsRejected) {
  SampleImage a = WriteSample(FixedKeySource());
  SampleImage b = WriteSample(FixedKeySource());
  std::vector<Bytes> pa = SplitRecords(a.bytes);
  std::vector<Bytes> pb = SplitRecords(b.bytes);
  for (size_t k = 1; k < pa.size(); ++k) {
    std::vector<Bytes> spliced = pa;
    spliced[k] = pb[k];
    EXPECT_THAT(ReadAll(Join(spliced), FixedKeySource()), StatusIs(Code::kAuth, "authentication failed"))
        << "record " << k - 1;
  }
  // Unencrypted images: the header digest in every checksum still catches a splice.
  SampleImage c = WriteSample(KeySource::Insecure());
  SampleImage d = WriteSample(KeySource::Insecure());
  std::vector<Bytes> pc = SplitRecords(c.bytes);
  pc[3] = SplitRecords(d.bytes)[3];
  EXPECT_THAT(ReadAll(Join(pc), KeySource::Insecure(), true), StatusIs(Code::kCorrupt, "checksum mismatch"));
}

TEST(ImageReaderTest, ErrorsNameRecordTypeAndOffset) {
  SampleImage s = WriteSample(FixedKeySource());
  std::vector<Bytes> parts = SplitRecords(s.bytes);
  size_t pages_offset = parts[0].size() + parts[1].size() + parts[2].size();
  Bytes bad = FlipByte(s.bytes, pages_offset + kFrameSize + kPagesSummarySize + 5);
  char where[64];
  snprintf(where, sizeof where, "record 2 (PAGES) at 0x%zx: authentication failed", pages_offset);
  EXPECT_THAT(ReadAll(bad, FixedKeySource()), StatusIs(Code::kAuth, where));
}

TEST(ImageReaderTest, WrongKeyFailsBeforeAnyRecord) {
  SampleImage s = WriteSample(FixedKeySource(0));
  MemorySource source(s.bytes);
  EXPECT_THAT(ImageReader::Open(source, FixedKeySource(5), {}), StatusIs(Code::kAuth, "wrong key"));
  EXPECT_EQ(source.offset(), kHeaderSize);  // nothing past the header was read

  SampleImage p = WriteSample(testing::TestPassphrase("right"));
  MemorySource psource(p.bytes);
  EXPECT_THAT(ImageReader::Open(psource, testing::TestPassphrase("wrong"), {}),
              StatusIs(Code::kAuth, "wrong passphrase"));
  EXPECT_EQ(psource.offset(), kHeaderSize);
  ASSERT_OK(ReadAll(p.bytes, testing::TestPassphrase("right")));
}

TEST(ImageReaderTest, TrailingBytesAfterEndAreRejectedUnlessLive) {
  SampleImage s = WriteSample(FixedKeySource());
  Bytes extra = s.bytes;
  extra.push_back(std::byte{0});
  EXPECT_THAT(ReadAll(extra, FixedKeySource()), StatusIs(Code::kCorrupt, "after END"));
  MemorySource source(extra);
  ReaderOptions live;
  live.expect_eof_after_end = false;
  auto reader = ImageReader::Open(source, FixedKeySource(), live);
  ASSERT_OK(reader);
  while (!reader->finished()) ASSERT_OK(reader->Next());
}

TEST(ImageReaderTest, OversizeLengthsAreRejectedWithoutAllocating) {
  SampleImage s = WriteSample(FixedKeySource());
  std::vector<Bytes> parts = SplitRecords(s.bytes);
  Bytes image = parts[0];
  Bytes frame = parts[1];
  StoreLe<uint32_t>(frame.data() + 16, 0xffffffffu);  // sealed_length
  image.insert(image.end(), frame.begin(), frame.end());
  EXPECT_THAT(ReadAll(image, FixedKeySource()), StatusIs(Code::kCorrupt, "exceeds 64 MiB"));
  frame = parts[1];
  StoreLe<uint32_t>(frame.data() + 4, 0x7fffffffu);  // public_length
  image = parts[0];
  image.insert(image.end(), frame.begin(), frame.end());
  EXPECT_THAT(ReadAll(image, FixedKeySource()), StatusIs(Code::kCorrupt, "exceeds 64 KiB"));
  // A length within limits but beyond the data is truncation, found after a bounded allocation.
  frame = parts[1];
  StoreLe<uint32_t>(frame.data() + 4, kMaxPublicLength);
  image = parts[0];
  image.insert(image.end(), frame.begin(), frame.end());
  EXPECT_THAT(ReadAll(image, FixedKeySource()), StatusIs(Code::kCorrupt, "truncated"));
}

TEST(ImageReaderTest, ClaimedLengthDoesNotAllocateAheadOfTheData) {
  SampleImage s = WriteSample(KeySource::Insecure());
  std::vector<Bytes> parts = SplitRecords(s.bytes);
  Bytes image = parts[0];
  image.insert(image.end(), parts[1].begin(), parts[1].end());  // a valid LAYOUT
  Bytes frame = parts[3];                                        // the PAGES frame ...
  StoreLe<uint32_t>(frame.data() + 16, kMaxSealedLength);        // ... claiming 64 MiB
  StoreLe<uint64_t>(frame.data() + 8, 1);                         // as the second record
  image.insert(image.end(), frame.begin(), frame.begin() + 100);
  MemorySource source(image);
  ReaderOptions options;
  options.allow_insecure = true;
  auto reader = ImageReader::Open(source, KeySource::Insecure(), options);
  ASSERT_OK(reader);
  ASSERT_OK(reader->Next());
  EXPECT_THAT(reader->Next(), StatusIs(Code::kCorrupt, "truncated"));
  EXPECT_LE(reader->buffer_bytes(), size_t{2} << 20);
}

TEST(ImageReaderTest, UnknownRecordTypeAndReservedBitsAreRejected) {
  SampleImage s = WriteSample(FixedKeySource());
  Bytes bad = s.bytes;
  bad[kHeaderSize] = std::byte{8};
  EXPECT_THAT(ReadAll(bad, FixedKeySource()), StatusIs(Code::kCorrupt, "unknown record type 8"));
  bad = s.bytes;
  bad[kHeaderSize] = std::byte{0};
  EXPECT_THAT(ReadAll(bad, FixedKeySource()), StatusIs(Code::kCorrupt, "unknown record type 0"));
  bad = s.bytes;
  bad[kHeaderSize + 1] = std::byte{1};
  EXPECT_THAT(ReadAll(bad, FixedKeySource()), StatusIs(Code::kCorrupt, "reserved"));
}

TEST(ImageReaderTest, InsecureImageNeedsPermission) {
  SampleImage s = WriteSample(KeySource::Insecure());
  EXPECT_THAT(ReadAll(s.bytes, KeySource::Insecure(), false), StatusIs(Code::kIncompatible, "not encrypted"));
  ASSERT_OK(ReadAll(s.bytes, KeySource::Insecure(), true));
}

TEST(ImageReaderTest, ChannelsShareKeysAndCheckTheirHeader) {
  StreamParams params;
  params.channel_count = 2;
  auto created = CreateStream(params, FixedKeySource());
  ASSERT_OK(created);
  auto keys = std::make_shared<const StreamKeys>(std::move(created).value());
  LayoutRecord layout = testing::TwoRegionLayout();

  MemorySink sink0, sink1;
  auto w0 = ImageWriter::Create(sink0, keys, {0, 1});
  auto w1 = ImageWriter::Create(sink1, keys, {1, 1});
  ASSERT_OK(w0);
  ASSERT_OK(w1);
  ASSERT_OK(w0->Begin());
  ASSERT_OK(w0->WriteLayout(layout));
  EXPECT_THAT(w1->Begin(), StatusIs(Code::kInvalidArgument, "need the layout"));
  ASSERT_OK(w1->Begin(&layout));
  EXPECT_THAT(w1->WriteLayout(layout), StatusIs(Code::kInvalidArgument, "channel 0"));
  Bytes page = testing::MakePage(testing::PageKind::kText, 1);
  ASSERT_OK(w1->WritePages({7, 2, {{3, 1, RunKind::kData}}, {page}}));
  ASSERT_OK(w0->Finish());
  ASSERT_OK(w1->Finish());

  MemorySource src0(sink0.bytes());
  auto r0 = ImageReader::Open(src0, FixedKeySource(), {});
  ASSERT_OK(r0);
  ASSERT_OK(r0->Next());
  MemorySource src1(sink1.bytes());
  auto r1 = ImageReader::OpenChannel(src1, r0->keys(), r0->layout(), {1});
  ASSERT_OK(r1);
  auto rec = r1->Next();
  ASSERT_OK(rec);
  const ByteSpan got = std::get<PagesRecord>((*rec)->body).data;
  EXPECT_EQ(Bytes(got.begin(), got.end()), page);
  ASSERT_OK(r1->Next());
  EXPECT_TRUE(r1->finished());

  // A channel-1 stream read as channel 0 fails its sequence or channel check; a channel of
  // another stream is refused by its header.
  EXPECT_THAT(ReadAll(sink1.bytes(), FixedKeySource()), StatusIs(Code::kProtocol, "channel 1, expected 0"));
  SampleImage other = WriteSample(FixedKeySource());
  MemorySource src_other(other.bytes);
  EXPECT_THAT(ImageReader::OpenChannel(src_other, r0->keys(), r0->layout(), {1}),
              StatusIs(Code::kProtocol, "another stream"));
}

}  // namespace
}  // namespace gmem::format
