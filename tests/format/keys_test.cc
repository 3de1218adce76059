#include "format/keys.h"

#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::format {
namespace {

using ::gmem::testing::StatusIs;

std::string Text(const SecretBytes& s) { return std::string(reinterpret_cast<const char*>(s.data()), s.size()); }

TEST(KeyFileTest, FormatParseRoundTrip) {
  auto key = GenerateKey();
  ASSERT_OK(key);
  SecretBytes text = FormatKeyFile(*key);
  EXPECT_EQ(Text(text).substr(0, 15), "gmemkit-key-v1:");
  EXPECT_EQ(text.size(), 80u);
  EXPECT_EQ(Text(text).back(), '\n');
  auto parsed = ParseKeyFile(text.span());
  ASSERT_OK(parsed);
  EXPECT_TRUE(std::equal(parsed->data(), parsed->data() + 32, key->data()));
}

TEST(KeyFileTest, AcceptsUppercaseAndNoNewline) {
  std::string text = "gmemkit-key-v1:" + std::string(64, 'A');
  auto parsed = ParseKeyFile(AsBytes(text));
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->data()[0], std::byte{0xaa});
}

TEST(KeyFileTest, RejectsEverythingElse) {
  for (std::string bad : {std::string(""), std::string("gmemkit-key-v1:"), "gmemkit-key-v1:" + std::string(63, 'a'),
                          "gmemkit-key-v1:" + std::string(65, 'a'), "gmemkit-key-v1:" + std::string(63, 'a') + "g",
                          "gmemkit-key-v2:" + std::string(64, 'a'), "gmemkit-key-v1:" + std::string(64, 'a') + "\n\n",
                          " gmemkit-key-v1:" + std::string(64, 'a')}) {
    EXPECT_THAT(ParseKeyFile(AsBytes(bad)), StatusIs(Code::kInvalidArgument, "")) << bad;
  }
}

TEST(KeySourceTest, KeyIdIsStableAndDistinct) {
  auto a1 = testing::FixedKeySource(0).KeyId();
  auto a2 = testing::FixedKeySource(0).KeyId();
  auto b = testing::FixedKeySource(1).KeyId();
  ASSERT_OK(a1);
  ASSERT_OK(b);
  EXPECT_EQ(*a1, *a2);
  EXPECT_NE(*a1, *b);
  EXPECT_THAT(testing::TestPassphrase("x").KeyId(), StatusIs(Code::kInvalidArgument, "only key files"));
}

TEST(KeySourceTest, KekDependsOnSaltAndSecret) {
  std::array<std::byte, 16> salt1{}, salt2{};
  salt2[0] = std::byte{1};
  auto k1 = testing::FixedKeySource(0).DeriveKek(salt1, {});
  auto k2 = testing::FixedKeySource(0).DeriveKek(salt2, {});
  auto k3 = testing::FixedKeySource(1).DeriveKek(salt1, {});
  ASSERT_OK(k1);
  ASSERT_OK(k2);
  ASSERT_OK(k3);
  EXPECT_FALSE(std::equal(k1->data(), k1->data() + 32, k2->data()));
  EXPECT_FALSE(std::equal(k1->data(), k1->data() + 32, k3->data()));
  ScryptCost cheap{10, 8, 1};
  auto p1 = testing::TestPassphrase("one").DeriveKek(salt1, cheap);
  auto p2 = testing::TestPassphrase("two").DeriveKek(salt1, cheap);
  ASSERT_OK(p1);
  ASSERT_OK(p2);
  EXPECT_FALSE(std::equal(p1->data(), p1->data() + 32, p2->data()));
  EXPECT_THAT(KeySource::FromPassphrase(SecretBytes()).DeriveKek(salt1, cheap),
              StatusIs(Code::kInvalidArgument, "empty passphrase"));
}

}  // namespace
}  // namespace gmem::format
