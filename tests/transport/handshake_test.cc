#include "transport/handshake.h"

#include <sys/socket.h>

#include <thread>

#include "tests/testutil/testutil.h"
#include "transport/fd_channel.h"

namespace gmem::transport {
namespace {

using ::gmem::testing::StatusIs;
using Role = HandshakeOptions::Role;

SecretBytes Key(uint8_t v) {
  SecretBytes k(32);
  for (size_t i = 0; i < 32; ++i) k.data()[i] = static_cast<std::byte>(v + i);
  return k;
}

struct Outcome {
  Expected<HandshakeResult> initiator = Status(Code::kCancelled, "not run");
  Expected<HandshakeResult> responder = Status(Code::kCancelled, "not run");
};

Outcome RunBoth(const SecretBytes& ki, HandshakeOptions oi, const SecretBytes& kr, HandshakeOptions orr) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  FdChannel a(UniqueFd(sv[0]), "initiator"), b(UniqueFd(sv[1]), "responder");
  oi.role = Role::kInitiator;
  orr.role = Role::kResponder;
  Outcome out;
  std::thread t([&] { out.responder = Handshake(b, b, kr, orr); });
  out.initiator = Handshake(a, a, ki, oi);
  t.join();
  return out;
}

TEST(HandshakeTest, SameKeyAgreesOnAFreshSessionId) {
  Outcome o1 = RunBoth(Key(1), {}, Key(1), {});
  ASSERT_OK(o1.initiator);
  ASSERT_OK(o1.responder);
  EXPECT_EQ(o1.initiator->session_id, o1.responder->session_id);
  Outcome o2 = RunBoth(Key(1), {}, Key(1), {});
  ASSERT_OK(o2.initiator);
  EXPECT_NE(o1.initiator->session_id, o2.initiator->session_id);
}

TEST(HandshakeTest, WrongKeyFailsClearlyOnBothSides) {
  Outcome o = RunBoth(Key(1), {}, Key(2), {});
  EXPECT_THAT(o.initiator, StatusIs(Code::kAuth, "the two ends hold different keys"));
  EXPECT_THAT(o.responder, StatusIs(Code::kAuth, "the peer says: the two ends hold different keys"));
}

TEST(HandshakeTest, InsecureModeMustMatch) {
  HandshakeOptions insecure;
  insecure.insecure = true;
  Outcome mismatch = RunBoth(SecretBytes(), insecure, Key(1), {});
  EXPECT_THAT(mismatch.initiator, StatusIs(Code::kAuth, "--insecure-no-encryption"));
  EXPECT_THAT(mismatch.responder, StatusIs(Code::kAuth, "--insecure-no-encryption"));
  Outcome both = RunBoth(SecretBytes(), insecure, SecretBytes(), insecure);
  EXPECT_OK(both.initiator);
  EXPECT_OK(both.responder);
}

TEST(HandshakeTest, ExtraChannelsMustCarryTheSessionId) {
  Outcome first = RunBoth(Key(1), {}, Key(1), {});
  ASSERT_OK(first.initiator);
  HandshakeOptions ch1;
  ch1.channel = 1;
  ch1.channel_count = 2;
  ch1.session_id = first.initiator->session_id;
  Outcome good = RunBoth(Key(1), ch1, Key(1), ch1);
  EXPECT_OK(good.initiator);
  EXPECT_OK(good.responder);
  HandshakeOptions stranger = ch1;
  stranger.session_id[0] ^= std::byte{1};
  Outcome bad = RunBoth(Key(1), stranger, Key(1), ch1);
  EXPECT_THAT(bad.initiator, StatusIs(Code::kAuth, "another migration"));
  EXPECT_THAT(bad.responder, StatusIs(Code::kAuth, "another migration"));
}

TEST(HandshakeTest, PeerThatHangsUpOrSpeaksGarbage) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  FdChannel a(UniqueFd(sv[0]), "a");
  FdChannel b(UniqueFd(sv[1]), "b");
  ASSERT_OK(b.Write(Bytes(80, std::byte{'x'})));
  HandshakeOptions o;
  EXPECT_THAT(Handshake(a, a, Key(1), o), StatusIs(Code::kProtocol, "not a gmemkit handshake"));

  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  FdChannel c(UniqueFd(sv[0]), "c");
  { FdChannel d(UniqueFd(sv[1]), "d"); }
  o.role = Role::kResponder;
  EXPECT_THAT(Handshake(c, c, Key(1), o), StatusIs(Code::kPeerAborted, "closed the connection"));
}

}  // namespace
}  // namespace gmem::transport
