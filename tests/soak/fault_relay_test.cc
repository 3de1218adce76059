#include "soak/fault_relay.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "tests/testutil/testutil.h"
#include "transport/sockets.h"
#include "transport/uri.h"

namespace gmem::soak {
namespace {

using Clock = std::chrono::steady_clock;
using ::gmem::testing::StatusIs;

transport::Uri Tcp(const std::string& host, uint16_t port) {
  transport::Uri uri;
  uri.kind = transport::Uri::Kind::kTcp;
  uri.host = host;
  uri.port = port;
  return uri;
}

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

bool WaitUntil(const std::function<bool()>& done, int timeout_ms) {
  Clock::time_point start = Clock::now();
  while (!done()) {
    if (MsSince(start) > timeout_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

uint64_t Fnv1a(const std::vector<uint8_t>& data) {
  uint64_t h = 14695981039346656037ull;
  for (uint8_t b : data) h = (h ^ b) * 1099511628211ull;
  return h;
}

std::vector<uint8_t> RandomData(uint64_t seed, size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> data(n);
  for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
  return data;
}

bool SendAll(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

bool RecvAll(int fd, void* data, size_t n) {
  auto* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    ssize_t k = ::recv(fd, p, n, 0);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

// A client connection; reads give up after 5 s so a broken relay fails the test, not hangs it.
UniqueFd Connect(uint16_t port) {
  Expected<UniqueFd> fd = transport::ConnectTcp("127.0.0.1", port, 1000);
  if (!fd.ok()) return UniqueFd();
  timeval tv{5, 0};
  ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return std::move(fd).value();
}

// Waits up to timeout_ms for `fd` to be closed or reset by its peer.
bool SeesClose(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

bool RoundTrip(int fd) {
  char c = 'x';
  return SendAll(fd, &c, 1) && RecvAll(fd, &c, 1) && c == 'x';
}

// A TCP server that serves each connection on its own thread with `handler` until destroyed. The
// handler gets the fd but the server owns it, so destruction can shut down handlers still reading.
class Server {
 public:
  using Handler = std::function<void(int fd)>;
  Server(transport::Listener listener, Handler handler)
      : listener_(std::move(listener)), handler_(std::move(handler)), acceptor_([this] { Loop(); }) {}
  explicit Server(Handler handler) : Server(std::move(transport::Listener::Tcp("127.0.0.1", 0).value()), std::move(handler)) {}
  ~Server() {
    stop_.store(true);
    acceptor_.join();
    for (const UniqueFd& fd : fds_) ::shutdown(fd.get(), SHUT_RDWR);
    for (std::thread& t : threads_) t.join();
  }
  uint16_t port() const { return listener_.port(); }

 private:
  void Loop() {
    while (!stop_.load()) {
      Expected<UniqueFd> fd = listener_.Accept(50);
      if (!fd.ok()) continue;
      int raw = fd->get();
      fds_.push_back(std::move(fd).value());
      threads_.emplace_back([this, raw] { handler_(raw); });
    }
  }
  transport::Listener listener_;
  Handler handler_;
  std::atomic<bool> stop_{false};
  std::vector<UniqueFd> fds_;         // acceptor only, until joined
  std::vector<std::thread> threads_;  // acceptor only, until joined
  std::thread acceptor_;
};

void Echo(int fd) {
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    if (!SendAll(fd, buf, static_cast<size_t>(n))) break;
  }
  ::shutdown(fd, SHUT_WR);
}

// Sends `data` on one thread while reading as many bytes back on this one; the echo's hash.
uint64_t EchoThrough(int fd, const std::vector<uint8_t>& data) {
  std::thread writer([&] { SendAll(fd, data.data(), data.size()); });
  std::vector<uint8_t> back(data.size());
  bool ok = RecvAll(fd, back.data(), back.size());
  writer.join();
  return ok ? Fnv1a(back) : 0;
}

TEST(FaultRelayTest, ForwardsBothDirectionsIntactOverConcurrentConnections) {
  Server echo(Echo);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {});
  ASSERT_OK(relay);
  EXPECT_EQ(relay->uri(), "tcp:127.0.0.1:" + std::to_string(relay->port()));
  constexpr int kConnections = 4;
  constexpr size_t kBytes = 3 << 20;
  std::vector<uint64_t> want(kConnections), got(kConnections);
  std::vector<std::thread> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.emplace_back([&, i] {
      std::vector<uint8_t> data = RandomData(i, kBytes);
      want[i] = Fnv1a(data);
      UniqueFd fd = Connect(relay->port());
      if (fd.valid()) got[i] = EchoThrough(fd.get(), data);
    });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < kConnections; ++i) EXPECT_EQ(got[i], want[i]) << "connection " << i;
  EXPECT_TRUE(WaitUntil([&] { return relay->stats().bytes_to_source == kConnections * kBytes; }, 1000));
  RelayStats stats = relay->stats();
  EXPECT_EQ(stats.bytes_to_target, kConnections * kBytes);
  EXPECT_EQ(stats.connections, uint64_t{kConnections});
  EXPECT_FALSE(stats.reset);
}

TEST(FaultRelayTest, LatencyDelaysBothDirections) {
  Server echo(Echo);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {.latency_ms = 100});
  ASSERT_OK(relay);
  UniqueFd fd = Connect(relay->port());
  ASSERT_TRUE(fd.valid());
  Clock::time_point start = Clock::now();
  ASSERT_TRUE(RoundTrip(fd.get()));
  EXPECT_GE(MsSince(start), 200);
  EXPECT_LT(MsSince(start), 1500);
}

TEST(FaultRelayTest, JitterKeepsOrder) {
  Server echo(Echo);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()),
                                  {.latency_ms = 2, .jitter_ms = 30, .seed = 42});
  ASSERT_OK(relay);
  UniqueFd fd = Connect(relay->port());
  ASSERT_TRUE(fd.valid());
  constexpr uint32_t kRecords = 300;
  std::thread writer([&] {
    for (uint32_t i = 0; i < kRecords; ++i) {  // one small send per record: one chunk each
      if (!SendAll(fd.get(), &i, sizeof i)) return;
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  for (uint32_t i = 0; i < kRecords; ++i) {
    uint32_t record = ~0u;
    ASSERT_TRUE(RecvAll(fd.get(), &record, sizeof record)) << "record " << i;
    ASSERT_EQ(record, i);
  }
  writer.join();
}

TEST(FaultRelayTest, JitterDelaysChunksWithinItsBound) {
  Server echo(Echo);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {.jitter_ms = 40, .seed = 7});
  ASSERT_OK(relay);
  UniqueFd fd = Connect(relay->port());
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(RoundTrip(fd.get()));
  Clock::time_point start = Clock::now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(RoundTrip(fd.get()));
  // 20 delays drawn from 0..40 ms average 400 ms in all; seed 7 draws more than 100 ms.
  EXPECT_GE(MsSince(start), 100);
  EXPECT_LT(MsSince(start), 20 * 40 + 500);
}

TEST(FaultRelayTest, StallHoldsTrafficThenResumes) {
  Server echo(Echo);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {});
  ASSERT_OK(relay);
  UniqueFd fd = Connect(relay->port());
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(RoundTrip(fd.get()));
  Clock::time_point start = Clock::now();
  relay->Stall(300);
  ASSERT_TRUE(RoundTrip(fd.get()));  // the same connection, still open
  EXPECT_GE(MsSince(start), 300);
  start = Clock::now();
  ASSERT_TRUE(RoundTrip(fd.get()));
  EXPECT_LT(MsSince(start), 250);
  EXPECT_EQ(relay->stats().stalls, 1u);
}

TEST(FaultRelayTest, ScheduledStallStartsAfterBytesOnce) {
  Server echo(Echo);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()),
                                  {.stall_after_bytes = 4096, .stall_ms = 300});
  ASSERT_OK(relay);
  UniqueFd fd = Connect(relay->port());
  ASSERT_TRUE(fd.valid());
  Clock::time_point start = Clock::now();
  std::vector<uint8_t> data = RandomData(7, 4096);
  EXPECT_EQ(EchoThrough(fd.get(), data), Fnv1a(data));
  EXPECT_GE(MsSince(start), 300);  // the reply waited for the stall
  start = Clock::now();
  ASSERT_TRUE(RoundTrip(fd.get()));
  EXPECT_LT(MsSince(start), 250);
  EXPECT_EQ(relay->stats().stalls, 1u);
}

TEST(FaultRelayTest, ResetAfterBytesClosesBothSidesAndRefusesNewConnections) {
  std::atomic<uint64_t> sink_bytes{0};
  std::atomic<bool> sink_closed{false};
  Server sink([&](int fd) {
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) sink_bytes += static_cast<uint64_t>(n);
    sink_closed.store(true);
  });
  constexpr uint64_t kLimit = 1 << 20;
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", sink.port()),
                                  {.reset_after_bytes = kLimit});
  ASSERT_OK(relay);
  UniqueFd fd = Connect(relay->port());
  ASSERT_TRUE(fd.valid());
  timeval tv{3, 0};  // a send blocked by a relay that no longer reads fails the test
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::vector<uint8_t> chunk(65536, 0xab);
  uint64_t sent = 0;
  while (sent < (64u << 20) && SendAll(fd.get(), chunk.data(), chunk.size())) sent += chunk.size();
  EXPECT_TRUE(errno == ECONNRESET || errno == EPIPE) << std::strerror(errno);
  EXPECT_GE(sent, kLimit / 2);
  EXPECT_TRUE(WaitUntil([&] { return sink_closed.load(); }, 1000));
  EXPECT_LE(sink_bytes.load(), kLimit);
  EXPECT_GT(sink_bytes.load(), 0u);
  RelayStats stats = relay->stats();
  EXPECT_TRUE(stats.reset);
  EXPECT_EQ(stats.bytes_to_target, kLimit);
  // A later connection is accepted and reset at once; the reset may even beat the connect's own
  // SO_ERROR check, failing it with ECONNRESET.
  UniqueFd late = Connect(relay->port());
  if (late.valid()) {
    EXPECT_TRUE(SeesClose(late.get(), 1000));
  }
  EXPECT_TRUE(WaitUntil([&] { return relay->stats().connections == 2; }, 1000));
}

TEST(FaultRelayTest, ResetNowResetsOpenConnections) {
  Server echo(Echo);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {});
  ASSERT_OK(relay);
  UniqueFd fd = Connect(relay->port());
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(RoundTrip(fd.get()));
  relay->ResetNow();
  EXPECT_TRUE(SeesClose(fd.get(), 1000));
  EXPECT_TRUE(relay->stats().reset);
}

// A lost READY: the reply armed against never reaches the source. A lost COMMIT: the reply does,
// and then the connection resets before the source's answer gets through.
TEST(FaultRelayTest, ResetOnNextReplyLosesThatReplyOrWhatFollowsIt) {
  Server echo(Echo);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {});
  ASSERT_OK(relay);
  UniqueFd before = Connect(relay->port());
  ASSERT_TRUE(before.valid());
  ASSERT_TRUE(RoundTrip(before.get()));
  relay->ResetOnNextReply(FaultRelay::ReplyReset::kBeforeForwarding);
  char c = 'y';
  ASSERT_TRUE(SendAll(before.get(), &c, 1));
  EXPECT_TRUE(SeesClose(before.get(), 1000)) << "the armed reply was forwarded";
  EXPECT_EQ(relay->stats().bytes_to_source, 1u);
  EXPECT_TRUE(relay->stats().reset);

  auto second = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {});
  ASSERT_OK(second);
  UniqueFd after = Connect(second->port());
  ASSERT_TRUE(after.valid());
  second->ResetOnNextReply(FaultRelay::ReplyReset::kAfterForwarding);
  ASSERT_TRUE(RoundTrip(after.get())) << "the armed reply itself must arrive";
  EXPECT_TRUE(SeesClose(after.get(), 1000));
  EXPECT_EQ(second->stats().bytes_to_source, 1u);

  auto third = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {});
  ASSERT_OK(third);
  UniqueFd answer = Connect(third->port());
  ASSERT_TRUE(answer.valid());
  third->ResetOnNextReply(FaultRelay::ReplyReset::kAfterAnswer);
  ASSERT_TRUE(RoundTrip(answer.get()));  // the reply passes
  ASSERT_TRUE(SendAll(answer.get(), &c, 1));  // the answer reaches the target, its echo does not
  EXPECT_TRUE(SeesClose(answer.get(), 1000));
  EXPECT_EQ(third->stats().bytes_to_target, 2u);
  EXPECT_EQ(third->stats().bytes_to_source, 1u);
}

TEST(FaultRelayTest, UnreachableTargetClosesTheSource) {
  uint16_t closed_port;
  {
    auto listener = transport::Listener::Tcp("127.0.0.1", 0);
    ASSERT_OK(listener);
    closed_port = listener->port();
  }
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", closed_port), {});
  ASSERT_OK(relay);
  UniqueFd fd = Connect(relay->port());
  ASSERT_TRUE(fd.valid());
  EXPECT_TRUE(SeesClose(fd.get(), 1000));
  EXPECT_TRUE(WaitUntil([&] { return relay->stats().failed_connects == 1; }, 1000));
}

TEST(FaultRelayTest, DestructorWithOpenConnectionsReturnsPromptly) {
  Server echo(Echo);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()),
                                  {.latency_ms = 500});
  ASSERT_OK(relay);
  std::vector<UniqueFd> fds;
  std::vector<uint8_t> data(200000, 1);
  for (int i = 0; i < 3; ++i) {
    fds.push_back(Connect(relay->port()));
    ASSERT_TRUE(fds.back().valid());
    ASSERT_TRUE(SendAll(fds.back().get(), data.data(), data.size()));  // held by the latency
  }
  relay->Stall(10000);
  Clock::time_point start = Clock::now();
  { FaultRelay gone = std::move(relay).value(); }
  EXPECT_LT(MsSince(start), 1000);
  for (const UniqueFd& fd : fds) EXPECT_TRUE(SeesClose(fd.get(), 1000));
}

TEST(FaultRelayTest, MoveAssignmentStopsTheReplacedRelay) {
  Server echo(Echo);
  auto first = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {});
  auto second = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo.port()), {});
  ASSERT_OK(first);
  ASSERT_OK(second);
  std::optional<FaultRelay> relay(std::move(first).value());
  UniqueFd fd = Connect(relay->port());
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(RoundTrip(fd.get()));
  relay = std::move(second).value();
  EXPECT_TRUE(SeesClose(fd.get(), 1000));
  UniqueFd again = Connect(relay->port());
  ASSERT_TRUE(again.valid());
  EXPECT_TRUE(RoundTrip(again.get()));
}

TEST(FaultRelayTest, RejectsBadArguments) {
  transport::Uri unix_uri;
  unix_uri.kind = transport::Uri::Kind::kUnix;
  unix_uri.path = "/tmp/x";
  EXPECT_THAT(FaultRelay::Create(unix_uri, Tcp("127.0.0.1", 1), {}), StatusIs(Code::kInvalidArgument, "tcp:HOST:PORT"));
  EXPECT_THAT(FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", 0), {}), StatusIs(Code::kInvalidArgument, "port 0"));
  EXPECT_THAT(FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", 1), {.latency_ms = -1}),
              StatusIs(Code::kInvalidArgument, "negative"));
  auto not_local = FaultRelay::Create(Tcp("192.0.2.1", 0), Tcp("127.0.0.1", 1), {});
  EXPECT_THAT(not_local, StatusIs(Code::kIo, "listen on tcp:192.0.2.1:0"));
  EXPECT_EQ(not_local.status().sys_errno(), EADDRNOTAVAIL);
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", 1), {.latency_ms = 5});
  ASSERT_OK(relay);
  EXPECT_THAT(relay->SetFaults({.jitter_ms = -3}), StatusIs(Code::kInvalidArgument, "negative"));
  EXPECT_EQ(relay->faults().latency_ms, 5);
}

// Runs `fn` on a thread inside network namespace `netns_fd`.
void InNetns(int netns_fd, const std::function<void()>& fn) {
  std::thread([&] {
    if (::setns(netns_fd, CLONE_NEWNET) == 0) fn();
  }).join();
}

// Sets IFF_UP on "lo" of the caller's network namespace; 0 or an errno. Async-signal-safe.
int BringLoopbackUp() {
  int sock = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (sock < 0) return errno;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, "lo", 3);
  int err = 0;
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) err = errno;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (err == 0 && ::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) err = errno;
  ::close(sock);
  return err;
}

// A child that holds a fresh network namespace with lo up until it is killed.
struct NetnsHolder {
  pid_t pid = -1;
  int error = 0;  // errno of unshare() or of bringing lo up, in the child
  UniqueFd ns_fd;

  NetnsHolder() {
    int fds[2];
    if (::pipe(fds) != 0) {
      error = errno;
      return;
    }
    pid = ::fork();
    if (pid == 0) {  // only async-signal-safe calls from here on
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int err = ::unshare(CLONE_NEWNET) == 0 ? 0 : errno;
      if (err == 0) err = BringLoopbackUp();
      [[maybe_unused]] ssize_t n = ::write(fds[1], &err, sizeof err);
      while (true) ::pause();
    }
    ::close(fds[1]);
    if (pid < 0 || ::read(fds[0], &error, sizeof error) != sizeof error) error = pid < 0 ? errno : EIO;
    ::close(fds[0]);
    if (error == 0) ns_fd.Reset(::open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
  }
  ~NetnsHolder() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

TEST(FaultRelayTest, ListensAndConnectsInsideTheGivenNamespace) {
  NetnsHolder holder;
  if (holder.error == EPERM) GTEST_SKIP() << "cannot make a network namespace here (unshare: EPERM)";
  ASSERT_EQ(holder.error, 0) << std::strerror(holder.error);
  ASSERT_TRUE(holder.ns_fd.valid());
  std::optional<Server> echo;
  InNetns(holder.ns_fd.get(), [&] { echo.emplace(std::move(transport::Listener::Tcp("127.0.0.1", 0).value()), Echo); });
  ASSERT_TRUE(echo.has_value());
  auto relay = FaultRelay::Create(Tcp("127.0.0.1", 0), Tcp("127.0.0.1", echo->port()), {}, holder.ns_fd.get());
  ASSERT_OK(relay);
  UniqueFd fd;
  InNetns(holder.ns_fd.get(), [&] { fd = Connect(relay->port()); });
  ASSERT_TRUE(fd.valid());
  std::vector<uint8_t> data = RandomData(3, 256 << 10);
  EXPECT_EQ(EchoThrough(fd.get(), data), Fnv1a(data));
  EXPECT_EQ(relay->stats().connections, 1u);
  // The same address and port in our namespace is not the relay: refused (or, on a port
  // collision, someone else's listener), and the relay sees nothing.
  Expected<UniqueFd> outside = transport::ConnectTcp("127.0.0.1", relay->port(), 500);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(relay->stats().connections, 1u);
  EXPECT_EQ(relay->stats().bytes_to_target, data.size());
}

}  // namespace
}  // namespace gmem::soak
