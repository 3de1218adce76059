// agent/blob.{h,cc}: the sealed page format of docs/agent-protocol.md §6.

#include "agent/blob.h"

#include <random>

#include "tests/agent/agent_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::agent {
namespace {

using ::gmem::testing::FlipByte;
using ::gmem::testing::StatusIs;
using ::gmem::testing::Truncate;

SecretBytes Key(uint8_t fill) {
  SecretBytes k(kKeyBytes);
  for (size_t i = 0; i < k.size(); ++i) k.data()[i] = static_cast<std::byte>(fill + i);
  return k;
}

Bytes Page(uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes p = ::gmem::testing::RandomBytes(rng, kPageBytes);
  auto canary = AsBytes(testing::kPrivateCanary);
  std::copy(canary.begin(), canary.end(), p.begin());
  return p;
}

Bytes Seal(BlobCipher& c, const BlobHeader& h, const Bytes& page) {
  Bytes blob(kBlobBytes);
  EXPECT_OK(c.Seal(h, page, blob));
  return blob;
}

TEST(BlobTest, SealOpenRoundTripBindsTheHeader) {
  auto c = BlobCipher::Create(Key(1));
  ASSERT_OK(c);
  Bytes page = Page(7);
  BlobHeader h{0x12345, 3, 99, kBlobAttrPrivate};
  Bytes blob = Seal(*c, h, page);
  EXPECT_EQ(blob.size(), kBlobBytes);
  EXPECT_FALSE(testing::Contains(blob, testing::kPrivateCanary)) << "a blob carries no plaintext";
  auto header = DecodeBlobHeader(blob);
  ASSERT_OK(header);
  EXPECT_EQ(*header, h);
  Bytes out(kPageBytes);
  auto opened = c->Open(blob, out);
  ASSERT_OK(opened);
  EXPECT_EQ(*opened, h);
  EXPECT_EQ(out, page);
}

TEST(BlobTest, SameSequenceUnderOneKeyIsTheOnlyWayToRepeatANonce) {
  // Different sequences give different ciphertexts of the same page: the nonce moves with them.
  auto c = BlobCipher::Create(Key(1));
  ASSERT_OK(c);
  Bytes page = Page(1);
  Bytes a = Seal(*c, BlobHeader{5, 1, 1}, page);
  Bytes b = Seal(*c, BlobHeader{5, 1, 2}, page);
  EXPECT_NE(Bytes(a.begin() + kBlobHeaderBytes, a.end()), Bytes(b.begin() + kBlobHeaderBytes, b.end()));
}

TEST(BlobTest, EveryAlteredByteFailsAuthentication) {
  auto c = BlobCipher::Create(Key(2));
  ASSERT_OK(c);
  Bytes blob = Seal(*c, BlobHeader{77, 4, 10}, Page(3));
  Bytes out(kPageBytes);
  // gfn, epoch and sequence in the header (AAD), a ciphertext byte, a tag byte.
  for (size_t offset : {size_t{8}, size_t{16}, size_t{24}, kBlobHeaderBytes + 100, kBlobBytes - 1}) {
    Bytes bad = FlipByte(blob, offset);
    EXPECT_THAT(c->Open(bad, out), StatusIs(Code::kAuth, "failed authentication")) << "offset " << offset;
  }
}

TEST(BlobTest, AnotherKeyFailsAuthentication) {
  auto c1 = BlobCipher::Create(Key(3));
  auto c2 = BlobCipher::Create(Key(4));
  ASSERT_OK(c1);
  ASSERT_OK(c2);
  Bytes blob = Seal(*c1, BlobHeader{1, 1, 1}, Page(4));
  Bytes out(kPageBytes);
  EXPECT_THAT(c2->Open(blob, out), StatusIs(Code::kAuth, "failed authentication"));
  EXPECT_EQ(out, Bytes(kPageBytes)) << "a rejected page is wiped";
}

TEST(BlobTest, MalformedBlobsAreRejectedBeforeDecryption) {
  auto c = BlobCipher::Create(Key(5));
  ASSERT_OK(c);
  Bytes blob = Seal(*c, BlobHeader{1, 1, 1}, Page(5));
  Bytes out(kPageBytes);
  EXPECT_THAT(c->Open(Truncate(blob, kBlobBytes - 1), out), StatusIs(Code::kCorrupt, "4144 bytes"));
  EXPECT_THAT(c->Open(Truncate(blob, 20), out), StatusIs(Code::kCorrupt, "4144 bytes"));
  Bytes longer = blob;
  longer.push_back(std::byte{0});
  EXPECT_THAT(c->Open(longer, out), StatusIs(Code::kCorrupt, "4144 bytes"));
  EXPECT_THAT(c->Open(FlipByte(blob, 0), out), StatusIs(Code::kCorrupt, "bad magic"));
  EXPECT_THAT(c->Open(FlipByte(blob, 4), out), StatusIs(Code::kIncompatible, "blob version"));
  EXPECT_THAT(c->Open(FlipByte(blob, 5), out), StatusIs(Code::kCorrupt, "attribute"));
  EXPECT_THAT(c->Open(FlipByte(blob, 6), out), StatusIs(Code::kCorrupt, "page_shift"));
  EXPECT_THAT(c->Open(FlipByte(blob, 7), out), StatusIs(Code::kCorrupt, "reserved"));
  EXPECT_THAT(c->Open(FlipByte(blob, 20), out), StatusIs(Code::kCorrupt, "reserved"));
}

TEST(BlobTest, SequenceZeroIsReserved) {
  auto c = BlobCipher::Create(Key(6));
  ASSERT_OK(c);
  Bytes blob(kBlobBytes);
  EXPECT_THAT(c->Seal(BlobHeader{1, 1, 0}, Page(6), blob), StatusIs(Code::kInvalidArgument, "sequence 0"));
}

}  // namespace
}  // namespace gmem::agent
