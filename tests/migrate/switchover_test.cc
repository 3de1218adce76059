// SwitchoverLink: messages round-trip, and a forged or altered message is rejected.

#include "migrate/switchover.h"

#include "base/io.h"
#include "tests/testutil/testutil.h"

namespace gmem::migrate {
namespace {

using ::gmem::testing::StatusIs;

SecretBytes Key(uint8_t fill) {
  SecretBytes key(32);
  for (std::byte& b : key.span()) b = std::byte{fill};
  return key;
}

TEST(SwitchoverLinkTest, MessagesRoundTrip) {
  SecretBytes key = Key(7);
  transport::SessionId session{};
  session[0] = std::byte{1};
  MemorySink wire;
  MemorySource none({});
  SwitchoverLink writer(wire, none, key, session);
  ASSERT_OK(writer.Send({SwitchoverType::kReady, ""}));
  ASSERT_OK(writer.Send({SwitchoverType::kAbort, "disk on fire"}));
  MemorySource in(wire.bytes());
  SwitchoverLink reader(wire, in, key, session);
  EXPECT_OK(reader.Expect(SwitchoverType::kReady));
  EXPECT_THAT(reader.Expect(SwitchoverType::kCommit), StatusIs(Code::kPeerAborted, "the peer aborted: disk on fire"));
  EXPECT_THAT(reader.Receive(), StatusIs(Code::kPeerAborted, "closed the connection"));
}

TEST(SwitchoverLinkTest, AnotherKeyOrSessionOrAFlippedBitIsRejected) {
  SecretBytes key = Key(7);
  transport::SessionId session{};
  MemorySink wire;
  MemorySource none({});
  ASSERT_OK(SwitchoverLink(wire, none, key, session).Send({SwitchoverType::kCommit, ""}));

  SecretBytes other = Key(8);
  MemorySource a(wire.bytes());
  EXPECT_THAT(SwitchoverLink(wire, a, other, session).Receive(), StatusIs(Code::kAuth, "COMMIT"));

  transport::SessionId replayed{};
  replayed[15] = std::byte{9};
  MemorySource b(wire.bytes());
  EXPECT_THAT(SwitchoverLink(wire, b, key, replayed).Receive(), StatusIs(Code::kAuth, "authentication failed"));

  // READY (1) forged from COMMIT (3) by flipping a type bit.
  Bytes forged = gmem::testing::FlipByte(wire.bytes(), 8, 0x02);
  MemorySource c(forged);
  EXPECT_THAT(SwitchoverLink(wire, c, key, session).Receive(), StatusIs(Code::kAuth, "READY"));

  Bytes truncated = gmem::testing::Truncate(wire.bytes(), 20);
  MemorySource d(truncated);
  EXPECT_THAT(SwitchoverLink(wire, d, key, session).Receive(), StatusIs(Code::kPeerAborted, "inside"));
}

TEST(SwitchoverLinkTest, GarbageIsAProtocolError) {
  SecretBytes key = Key(7);
  Bytes garbage(64, std::byte{'x'});
  MemorySink sink;
  MemorySource in(garbage);
  EXPECT_THAT(SwitchoverLink(sink, in, key, {}).Receive(), StatusIs(Code::kProtocol, "bad magic"));
}

}  // namespace
}  // namespace gmem::migrate
