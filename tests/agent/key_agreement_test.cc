// agent/key_agreement.{h,cc} and agent/platform_key.{h,cc}: shares, signatures, X25519 and the
// key derivations of docs/agent-protocol.md §5.

#include "agent/key_agreement.h"

#include <sys/stat.h>

#include <fstream>

#include "tests/agent/agent_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::agent {
namespace {

using ::gmem::testing::FlipByte;
using ::gmem::testing::StatusIs;
using testing::NewPlatformKey;
using testing::TestMeasurement;
using testing::TestSession;

Share SampleShare() {
  Share s;
  s.role = Role::kExport;
  s.mode = Mode::kTransport;
  s.epoch = 7;
  s.session_id = TestSession(1);
  s.measurement = TestMeasurement("a");
  for (size_t i = 0; i < 32; ++i) s.key_material[i] = static_cast<std::byte>(i);
  return s;
}

TEST(PlatformKeyTest, FileRoundTripAndRefusals) {
  ::gmem::testing::TempDir dir;
  auto key = PlatformKey::Generate();
  ASSERT_OK(key);
  ASSERT_OK(key->WriteFile(dir.File("pk"), false));
  struct stat st {};
  ASSERT_EQ(::stat(dir.File("pk").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = PlatformKey::LoadFile(dir.File("pk"));
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->public_key(), key->public_key());
  EXPECT_THAT(key->WriteFile(dir.File("pk"), false), StatusIs(Code::kIo, "already exists"));

  ::chmod(dir.File("pk").c_str(), 0644);
  EXPECT_FALSE(PlatformKey::LoadFile(dir.File("pk")).ok()) << "a key others may read is refused";
  { std::ofstream(dir.File("bad")) << "gmemkit-key-v1:" << std::string(64, 'a') << "\n"; }
  ::chmod(dir.File("bad").c_str(), 0600);
  EXPECT_THAT(PlatformKey::LoadFile(dir.File("bad")), StatusIs(Code::kCorrupt, "platform key"));
  EXPECT_THAT(PlatformKey::Parse(AsBytes(std::string(kPlatformKeyPrefix) + std::string(64, 'x'))),
              StatusIs(Code::kCorrupt, "hex"));
}

TEST(PlatformKeyTest, SignaturesVerifyOnlyUnderTheirKey) {
  auto a = NewPlatformKey();
  auto b = NewPlatformKey();
  auto sig = a->Sign(AsBytes("message"));
  ASSERT_OK(sig);
  EXPECT_TRUE(a->Verify(AsBytes("message"), *sig));
  EXPECT_FALSE(a->Verify(AsBytes("messagE"), *sig));
  EXPECT_FALSE(b->Verify(AsBytes("message"), *sig));
  EXPECT_TRUE(VerifyEd25519(a->public_key(), AsBytes("message"), *sig));
}

TEST(ShareTest, EncodeDecodeAndStrictness) {
  Share s = SampleShare();
  Bytes bytes = EncodeShare(s);
  ASSERT_EQ(bytes.size(), kShareBytes);
  auto back = DecodeShare(bytes);
  ASSERT_OK(back);
  EXPECT_EQ(EncodeShare(*back), bytes);
  EXPECT_THAT(DecodeShare(ByteSpan(bytes).first(239)), StatusIs(Code::kCorrupt, "240 bytes"));
  EXPECT_THAT(DecodeShare(FlipByte(bytes, 0)), StatusIs(Code::kCorrupt, "magic"));
  EXPECT_THAT(DecodeShare(FlipByte(bytes, 4)), StatusIs(Code::kIncompatible, "version"));
  EXPECT_THAT(DecodeShare(FlipByte(bytes, 8, 0x04)), StatusIs(Code::kCorrupt, "role"));
  EXPECT_THAT(DecodeShare(FlipByte(bytes, 9, 0x04)), StatusIs(Code::kCorrupt, "mode"));
  EXPECT_THAT(DecodeShare(FlipByte(bytes, 10)), StatusIs(Code::kCorrupt, "reserved"));
}

TEST(ShareTest, SignatureCoversEveryField) {
  auto key = NewPlatformKey();
  Share s = SampleShare();
  ASSERT_OK(SignShare(s, *key));
  EXPECT_OK(VerifyShare(s, *key));
  Bytes bytes = EncodeShare(s);
  for (size_t offset : {12, 16, 48, 80, 112, 144, 200}) {
    auto altered = DecodeShare(FlipByte(bytes, offset));
    ASSERT_OK(altered);
    EXPECT_THAT(VerifyShare(*altered, *key), StatusIs(Code::kAuth, "not signed")) << "offset " << offset;
  }
  EXPECT_THAT(VerifyShare(s, *NewPlatformKey()), StatusIs(Code::kAuth, "not signed by this platform"));
}

TEST(KeyDerivationTest, X25519BothSidesDeriveTheSameTransportKey) {
  auto a = X25519Key::Generate();
  auto b = X25519Key::Generate();
  auto c = X25519Key::Generate();
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  auto ab = a->Agree(b->public_key());
  auto ba = b->Agree(a->public_key());
  auto ac = a->Agree(c->public_key());
  ASSERT_OK(ab);
  ASSERT_OK(ba);
  ASSERT_OK(ac);
  SessionId sid = TestSession(3);
  Bytes e = EncodeShare(SampleShare()), i = EncodeShare(SampleShare());
  i[12] = std::byte{1};
  auto k1 = DeriveTransportKey(*ab, sid, e, i);
  auto k2 = DeriveTransportKey(*ba, sid, e, i);
  auto k3 = DeriveTransportKey(*ac, sid, e, i);
  auto k4 = DeriveTransportKey(*ab, TestSession(4), e, i);
  auto k5 = DeriveTransportKey(*ab, sid, i, e);
  ASSERT_OK(k1);
  ASSERT_OK(k2);
  ASSERT_OK(k3);
  ASSERT_OK(k4);
  ASSERT_OK(k5);
  EXPECT_EQ(*KeyId(*k1), *KeyId(*k2));
  EXPECT_NE(*KeyId(*k1), *KeyId(*k3)) << "another peer, another key";
  EXPECT_NE(*KeyId(*k1), *KeyId(*k4)) << "another session, another key";
  EXPECT_NE(*KeyId(*k1), *KeyId(*k5)) << "the shares are bound in order";
}

TEST(KeyDerivationTest, LowOrderPeerKeyIsRejected) {
  auto a = X25519Key::Generate();
  ASSERT_OK(a);
  Key32 zero{};
  EXPECT_THAT(a->Agree(zero), StatusIs(Code::kAuth, "X25519"));
}

TEST(KeyDerivationTest, SealingKeySameIdentitySameKeyOtherIdentityOtherKey) {
  auto platform = NewPlatformKey();
  auto other_platform = NewPlatformKey();
  Key32 salt{};
  salt[0] = std::byte{9};
  SessionId sid = TestSession(5);
  auto k = DeriveSealingKey(*platform, TestMeasurement("guest"), salt, sid, 1);
  auto same = DeriveSealingKey(*platform, TestMeasurement("guest"), salt, sid, 1);
  auto other_guest = DeriveSealingKey(*platform, TestMeasurement("other guest"), salt, sid, 1);
  auto other_host = DeriveSealingKey(*other_platform, TestMeasurement("guest"), salt, sid, 1);
  auto other_epoch = DeriveSealingKey(*platform, TestMeasurement("guest"), salt, sid, 2);
  ASSERT_OK(k);
  ASSERT_OK(same);
  ASSERT_OK(other_guest);
  ASSERT_OK(other_host);
  ASSERT_OK(other_epoch);
  EXPECT_EQ(*KeyId(*k), *KeyId(*same));
  EXPECT_NE(*KeyId(*k), *KeyId(*other_guest));
  EXPECT_NE(*KeyId(*k), *KeyId(*other_host));
  EXPECT_NE(*KeyId(*k), *KeyId(*other_epoch));
}

}  // namespace
}  // namespace gmem::agent
