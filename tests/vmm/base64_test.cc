#include "vmm/base64.h"

#include "tests/testutil/testutil.h"

namespace gmem::vmm {
namespace {

using ::gmem::testing::StatusIs;

TEST(Base64Test, KnownVectors) {
  EXPECT_EQ(Base64Encode(AsBytes("")), "");
  EXPECT_EQ(Base64Encode(AsBytes("f")), "Zg==");
  EXPECT_EQ(Base64Encode(AsBytes("fo")), "Zm8=");
  EXPECT_EQ(Base64Encode(AsBytes("foo")), "Zm9v");
  EXPECT_EQ(Base64Encode(AsBytes("foobar")), "Zm9vYmFy");
}

TEST(Base64Test, RoundTripsEveryLength) {
  std::mt19937_64 rng(1);
  for (size_t n = 0; n < 70; ++n) {
    Bytes data = ::gmem::testing::RandomBytes(rng, n);
    auto back = Base64Decode(Base64Encode(data));
    ASSERT_OK(back);
    EXPECT_EQ(*back, data);
  }
}

TEST(Base64Test, RejectsMalformedText) {
  EXPECT_THAT(Base64Decode("Zm9"), StatusIs(Code::kInvalidArgument, "multiple of 4"));
  EXPECT_THAT(Base64Decode("Zm9*"), StatusIs(Code::kInvalidArgument, "base64"));
  EXPECT_THAT(Base64Decode("Z=9v"), StatusIs(Code::kInvalidArgument, "base64"));
  EXPECT_THAT(Base64Decode("Zm8=Zm8="), StatusIs(Code::kInvalidArgument, "base64"));
  EXPECT_THAT(Base64Decode("Zh=="), StatusIs(Code::kInvalidArgument, "canonical"));
  EXPECT_THAT(Base64Decode(" Zm9"), StatusIs(Code::kInvalidArgument, "base64"));
}

}  // namespace
}  // namespace gmem::vmm
