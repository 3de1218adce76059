#include "transport/sockets.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "tests/testutil/testutil.h"
#include "transport/fd_channel.h"

namespace gmem::transport {
namespace {

using ::gmem::testing::StatusIs;
using ::gmem::testing::TempDir;

TEST(SocketsTest, TcpLoopbackConnectAcceptAndTransfer) {
  auto listener = Listener::Tcp("127.0.0.1", 0);
  ASSERT_OK(listener);
  ASSERT_NE(listener->port(), 0);
  std::thread client([port = listener->port()] {
    auto fd = ConnectTcp("127.0.0.1", port, 2000);
    ASSERT_OK(fd);
    FdChannel ch(std::move(fd).value(), "client");
    EXPECT_OK(ch.Write(AsBytes("ping")));
  });
  auto conn = Listener(std::move(listener).value()).Accept(2000);
  ASSERT_OK(conn);
  FdChannel server(std::move(conn).value(), "server");
  Bytes got(4);
  auto n = ReadFull(server, got);
  client.join();
  ASSERT_OK(n);
  EXPECT_EQ(*n, 4u);
}

TEST(SocketsTest, ConnectToClosedPortFailsClearly) {
  auto listener = Listener::Tcp("127.0.0.1", 0);
  ASSERT_OK(listener);
  uint16_t port = listener->port();
  { Listener closed = std::move(listener).value(); }
  EXPECT_THAT(ConnectTcp("127.0.0.1", port, 1000), StatusIs(Code::kIo, "connect to tcp:127.0.0.1:"));
}

TEST(SocketsTest, AcceptTimesOut) {
  auto listener = Listener::Tcp("127.0.0.1", 0);
  ASSERT_OK(listener);
  EXPECT_THAT(listener->Accept(50), StatusIs(Code::kIo, "timed out after 50 ms"));
}

// An inherited listening socket (systemd's fd 3): accepted on, and left open for its owner.
TEST(SocketsTest, AnAdoptedListenerAcceptsAndLeavesTheFdToItsOwner) {
  TempDir dir;
  std::string path = dir.File("activated.sock");
  auto owner = Listener::Unix(path);  // stands in for systemd's socket
  ASSERT_OK(owner);
  {
    auto adopted = Listener::Adopt(owner->fd());
    ASSERT_OK(adopted);
    std::thread client([&] { EXPECT_OK(ConnectUnix(path)); });
    EXPECT_OK(adopted->Accept(2000));
    client.join();
  }
  EXPECT_GE(fcntl(owner->fd(), F_GETFD), 0) << "the adopted listener closed its owner's fd";
  EXPECT_EQ(access(path.c_str(), F_OK), 0) << "the adopted listener removed the socket file";
  int file = open(dir.File("plain").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(file, 0);
  EXPECT_THAT(Listener::Adopt(file), StatusIs(Code::kIo, "listen on fd:"));
  close(file);
}

TEST(SocketsTest, UnixSocketPassesFileDescriptors) {
  TempDir dir;
  std::string path = dir.File("ctl.sock");
  auto listener = Listener::Unix(path);
  ASSERT_OK(listener);
  std::string file = dir.File("data");
  int fd = open(file.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "xyz", 3), 3);
  std::thread client([&] {
    auto sock = ConnectUnix(path);
    ASSERT_OK(sock);
    int fds[] = {fd, fd};
    EXPECT_OK(SendWithFds(sock->get(), AsBytes("{\"fds\":2}\n"), fds));
  });
  auto conn = listener->Accept(2000);
  ASSERT_OK(conn);
  Bytes buf(64);
  std::vector<UniqueFd> got;
  auto n = RecvWithFds(conn->get(), buf, got, 4);
  client.join();
  close(fd);
  ASSERT_OK(n);
  ASSERT_EQ(got.size(), 2u);
  char back[3];
  ASSERT_EQ(pread(got[0].get(), back, 3, 0), 3);
  EXPECT_EQ(std::string(back, 3), "xyz");
}

TEST(SocketsTest, TooManyPassedFdsAreRejectedAndClosed) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  int fds[] = {a.get(), a.get(), a.get()};
  ASSERT_OK(SendWithFds(a.get(), AsBytes("x"), fds));
  Bytes buf(8);
  std::vector<UniqueFd> got;
  EXPECT_THAT(RecvWithFds(b.get(), buf, got, 1), StatusIs(Code::kProtocol, "more file descriptors"));
  EXPECT_TRUE(got.empty());
}

TEST(SocketsTest, UnixListenerRemovesItsSocketFile) {
  TempDir dir;
  std::string path = dir.File("s");
  {
    auto listener = Listener::Unix(path);
    ASSERT_OK(listener);
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0);
  }
  struct stat st {};
  EXPECT_NE(stat(path.c_str(), &st), 0);
  EXPECT_THAT(Listener::Unix(std::string(200, 'x')), StatusIs(Code::kInvalidArgument, "longer than"));
}

}  // namespace
}  // namespace gmem::transport
