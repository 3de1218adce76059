#include "format/stream_keys.h"

#include "format/crypto.h"
#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::format {
namespace {

using ::gmem::testing::StatusIs;
using testing::FixedKeySource;
using testing::TestPassphrase;

TEST(ImageHeaderTest, EncodeDecodeRoundTrip) {
  auto keys = CreateStream({}, FixedKeySource());
  ASSERT_OK(keys);
  Bytes bytes = EncodeHeader(keys->header());
  ASSERT_EQ(bytes.size(), kHeaderSize);
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), keys->header_bytes().begin()));
  auto decoded = DecodeHeader(bytes);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, keys->header());
}

TEST(ImageHeaderTest, RejectsStructuralErrors) {
  auto keys = CreateStream({}, FixedKeySource());
  ASSERT_OK(keys);
  Bytes good(keys->header_bytes().begin(), keys->header_bytes().end());
  auto with = [&](size_t offset, uint8_t value) {
    Bytes b = good;
    b[offset] = std::byte{value};
    return DecodeHeader(b);
  };
  EXPECT_THAT(with(0, 'X'), StatusIs(Code::kCorrupt, "bad magic"));
  EXPECT_THAT(with(8, 2), StatusIs(Code::kIncompatible, "version 2.0"));
  EXPECT_THAT(with(10, 1), StatusIs(Code::kIncompatible, "version 1.1"));
  EXPECT_THAT(with(12, 193), StatusIs(Code::kIncompatible, "header size"));
  EXPECT_THAT(with(16, 9), StatusIs(Code::kIncompatible, "unknown cipher"));
  EXPECT_THAT(with(17, 9), StatusIs(Code::kIncompatible, "unknown compression"));
  EXPECT_THAT(with(18, 9), StatusIs(Code::kIncompatible, "unknown key wrap"));
  EXPECT_THAT(with(18, 3), StatusIs(Code::kCorrupt, "does not fit cipher"));
  EXPECT_THAT(with(19, 2), StatusIs(Code::kCorrupt, "unknown flags"));
  EXPECT_THAT(with(20, 0), StatusIs(Code::kCorrupt, "channel count 0"));
  EXPECT_THAT(with(20, 65), StatusIs(Code::kCorrupt, "channel count 65"));
  EXPECT_THAT(with(22, 1), StatusIs(Code::kCorrupt, "reserved"));
  EXPECT_THAT(with(40, 1), StatusIs(Code::kCorrupt, "parent fields"));
  EXPECT_THAT(with(104, 15), StatusIs(Code::kCorrupt, "scrypt costs set"));
  EXPECT_THAT(with(124, 1), StatusIs(Code::kCorrupt, "reserved"));
  EXPECT_THAT(DecodeHeader(Bytes(191)), StatusIs(Code::kCorrupt, "191 bytes"));
}

TEST(StreamKeysTest, KeyFileOpens) {
  StreamParams params;
  params.channel_count = 4;
  auto keys = CreateStream(params, FixedKeySource());
  ASSERT_OK(keys);
  auto opened = OpenStream(keys->header_bytes(), FixedKeySource(), false);
  ASSERT_OK(opened);
  EXPECT_TRUE(std::equal(opened->data_key().data(), opened->data_key().data() + 32, keys->data_key().data()));
  EXPECT_EQ(opened->header_digest(), keys->header_digest());
  EXPECT_EQ(opened->header().channel_count, 4);
}

TEST(StreamKeysTest, WrongKeyIsReportedAsWrongKey) {
  auto keys = CreateStream({}, FixedKeySource(0));
  ASSERT_OK(keys);
  EXPECT_THAT(OpenStream(keys->header_bytes(), FixedKeySource(1), false), StatusIs(Code::kAuth, "wrong key"));
  EXPECT_THAT(OpenStream(keys->header_bytes(), TestPassphrase("x"), false), StatusIs(Code::kAuth, "not a passphrase"));
  EXPECT_THAT(OpenStream(keys->header_bytes(), KeySource::Insecure(), false), StatusIs(Code::kAuth, "needed"));
}

TEST(StreamKeysTest, PassphraseOpensAndWrongPassphraseFails) {
  auto keys = CreateStream({}, TestPassphrase("correct horse"));
  ASSERT_OK(keys);
  EXPECT_EQ(keys->header().scrypt_log2_n, 10);
  ASSERT_OK(OpenStream(keys->header_bytes(), TestPassphrase("correct horse"), false));
  EXPECT_THAT(OpenStream(keys->header_bytes(), TestPassphrase("correct horsf"), false),
              StatusIs(Code::kAuth, "wrong passphrase"));
  EXPECT_THAT(OpenStream(keys->header_bytes(), FixedKeySource(), false), StatusIs(Code::kAuth, "not a key file"));
}

TEST(StreamKeysTest, ScryptCostsAreBounded) {
  auto too_big = KeySource::FromPassphrase(SecretBytes::CopyOf(AsBytes("p")), ScryptCost{20, 16, 1});
  EXPECT_THAT(CreateStream({}, too_big), StatusIs(Code::kCorrupt, "scrypt costs out of bounds"));
  auto too_small = KeySource::FromPassphrase(SecretBytes::CopyOf(AsBytes("p")), ScryptCost{9, 8, 1});
  EXPECT_THAT(CreateStream({}, too_small), StatusIs(Code::kCorrupt, "scrypt costs out of bounds"));
}

TEST(StreamKeysTest, EveryHeaderByteIsAuthenticated) {
  auto keys = CreateStream({}, FixedKeySource());
  ASSERT_OK(keys);
  Bytes good(keys->header_bytes().begin(), keys->header_bytes().end());
  for (size_t i = 0; i < kHeaderSize; ++i) {
    Bytes bad = ::gmem::testing::FlipByte(good, i);
    EXPECT_FALSE(OpenStream(bad, FixedKeySource(), false).ok()) << "header byte " << i;
  }
}

TEST(StreamKeysTest, InsecureNeedsPermissionAndIsChecksummed) {
  auto keys = CreateStream({}, KeySource::Insecure());
  ASSERT_OK(keys);
  EXPECT_EQ(keys->cipher(), Cipher::kNone);
  EXPECT_THAT(OpenStream(keys->header_bytes(), KeySource::Insecure(), false),
              StatusIs(Code::kIncompatible, "not encrypted"));
  ASSERT_OK(OpenStream(keys->header_bytes(), KeySource::Insecure(), true));
  // An unencrypted image opens whatever key the caller holds, once allowed.
  ASSERT_OK(OpenStream(keys->header_bytes(), FixedKeySource(), true));
  Bytes bad = ::gmem::testing::FlipByte(keys->header_bytes(), 30);
  EXPECT_THAT(OpenStream(bad, KeySource::Insecure(), true), StatusIs(Code::kCorrupt, "checksum"));
}

TEST(StreamKeysTest, ParentIsRecorded) {
  StreamParams params;
  StreamId parent{};
  parent[0] = std::byte{1};
  Digest digest{};
  digest[31] = std::byte{2};
  params.parent = {parent, digest};
  auto keys = CreateStream(params, FixedKeySource());
  ASSERT_OK(keys);
  auto opened = OpenStream(keys->header_bytes(), FixedKeySource(), false);
  ASSERT_OK(opened);
  EXPECT_TRUE(opened->header().has_parent());
  EXPECT_EQ(opened->header().parent_stream_id, parent);
  EXPECT_EQ(opened->header().parent_digest, digest);
}

TEST(StreamKeysTest, StreamIdsAndDataKeysAreFresh) {
  auto a = CreateStream({}, FixedKeySource());
  auto b = CreateStream({}, FixedKeySource());
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_NE(a->header().stream_id, b->header().stream_id);
  EXPECT_FALSE(std::equal(a->data_key().data(), a->data_key().data() + 32, b->data_key().data()));
}

}  // namespace
}  // namespace gmem::format
