#include "transport/fd_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "tests/testutil/testutil.h"

namespace gmem::transport {
namespace {

using ::gmem::testing::StatusIs;

std::pair<FdChannel, FdChannel> SocketPair() {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  return {FdChannel(UniqueFd(sv[0]), "a"), FdChannel(UniqueFd(sv[1]), "b")};
}

TEST(FdChannelTest, MovesLargeBuffersBothWays) {
  auto [a, b] = SocketPair();
  std::mt19937_64 rng(1);
  Bytes data = ::gmem::testing::RandomBytes(rng, 8 << 20);
  std::thread writer([&] {
    EXPECT_OK(a.Write(data));
    a.ShutdownWrite();
  });
  Bytes got(data.size());
  auto n = ReadFull(b, got);
  writer.join();
  ASSERT_OK(n);
  EXPECT_EQ(*n, data.size());
  EXPECT_EQ(got, data);
  std::byte extra[1];
  auto eof = b.Read(extra);
  ASSERT_OK(eof);
  EXPECT_EQ(*eof, 0u);
  EXPECT_EQ(a.bytes_written(), data.size());
  EXPECT_EQ(b.bytes_read(), data.size());
}

TEST(FdChannelTest, WriteToClosedPeerIsAnErrorNotASignal) {
  auto [a, b] = SocketPair();
  { FdChannel gone = std::move(b); }
  Bytes data(1 << 20);
  EXPECT_THAT(a.Write(data), StatusIs(Code::kIo, "a: connection closed by peer"));
}

TEST(FdChannelTest, WorksOnPipes) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  FdChannel w(UniqueFd(p[1]), "pipe-w");
  FdChannel r(UniqueFd(p[0]), "pipe-r");
  ASSERT_OK(w.Write(AsBytes("hello")));
  Bytes got(5);
  auto n = ReadFull(r, got);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 5u);
}

}  // namespace
}  // namespace gmem::transport
