#include "base/bytes.h"

#include "tests/testutil/testutil.h"

namespace gmem {
namespace {

using ::gmem::testing::StatusIs;

TEST(BytesTest, LittleEndianRoundTrip) {
  Bytes buf;
  ByteWriter w(buf);
  w.U8(0x01);
  w.U16(0x0302);
  w.U32(0x07060504);
  w.U64(0x0f0e0d0c0b0a0908ull);
  ASSERT_EQ(buf.size(), 15u);
  for (size_t i = 0; i < buf.size(); ++i) EXPECT_EQ(std::to_integer<int>(buf[i]), static_cast<int>(i + 1));
  ByteReader r(buf);
  EXPECT_EQ(r.U8("a"), 0x01);
  EXPECT_EQ(r.U16("b"), 0x0302);
  EXPECT_EQ(r.U32("c"), 0x07060504u);
  EXPECT_EQ(r.U64("d"), 0x0f0e0d0c0b0a0908ull);
  EXPECT_OK(r.ExpectEnd("buf"));
}

TEST(BytesTest, ShortReadIsStickyCorruptError) {
  Bytes buf(3);
  ByteReader r(buf);
  EXPECT_EQ(r.U32("count"), 0u);
  EXPECT_EQ(r.U8("next"), 0u);
  EXPECT_THAT(r.status(), StatusIs(Code::kCorrupt, "truncated count at offset 0"));
}

TEST(BytesTest, TrailingBytesAreReported) {
  Bytes buf(5);
  ByteReader r(buf);
  r.U32("x");
  EXPECT_THAT(r.ExpectEnd("record"), StatusIs(Code::kCorrupt, "1 trailing bytes"));
}

TEST(BytesTest, ReservedMustBeZero) {
  Bytes buf = {std::byte{0}, std::byte{1}};
  ByteReader r(buf);
  EXPECT_FALSE(r.ZerosOk(2, "pad"));
  EXPECT_THAT(r.status(), StatusIs(Code::kCorrupt, "reserved field pad"));
}

TEST(BytesTest, HexRoundTripAndRejects) {
  Bytes in = {std::byte{0x00}, std::byte{0xab}, std::byte{0xff}};
  EXPECT_EQ(ToHex(in), "00abff");
  Bytes out(3);
  EXPECT_TRUE(FromHex("00ABff", out));
  EXPECT_EQ(out, in);
  EXPECT_FALSE(FromHex("00abf", out));
  EXPECT_FALSE(FromHex("00abfg", out));
}

}  // namespace
}  // namespace gmem
