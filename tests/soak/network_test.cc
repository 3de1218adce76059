#include "soak/network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "soak/child_process.h"
#include "tests/testutil/testutil.h"

namespace gmem::soak {
namespace {

using ::gmem::testing::StatusIs;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kPort = 7313;

// Makes a network, or skips the test where this process may not make namespaces.
#define MAKE_NETWORK_OR_SKIP(net)                                                              \
  Expected<TestNetwork> net##_or = TestNetwork::Create();                                      \
  if (!net##_or.ok() && net##_or.status().code() == Code::kUnsupported) {                      \
    GTEST_SKIP() << "no network namespaces here: " << net##_or.status().ToString();            \
  }                                                                                            \
  ASSERT_TRUE(net##_or.ok()) << net##_or.status().ToString();                                  \
  TestNetwork& net = *net##_or

sockaddr_in Address(const std::string& ip, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  return addr;
}

// A TCP listener on HostAddress(host):kPort inside that host's namespace.
UniqueFd ListenIn(const TestNetwork& net, int host) {
  Expected<UniqueFd> fd = OpenSocketInNetns(net.HostNetns(host), AF_INET, SOCK_STREAM);
  EXPECT_TRUE(fd.ok()) << fd.status().ToString();
  if (!fd.ok()) return UniqueFd();
  int one = 1;
  setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = Address(TestNetwork::HostAddress(host), kPort);
  EXPECT_EQ(bind(fd->get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  EXPECT_EQ(listen(fd->get(), 4), 0) << strerror(errno);
  return std::move(fd).value();
}

// Connects from `from`'s namespace to `to`'s listener within timeout_ms. Returns the socket, or
// an invalid fd with `*err` set (ETIMEDOUT when nothing answered).
UniqueFd ConnectFrom(const TestNetwork& net, int from, int to, int timeout_ms, int* err) {
  Expected<UniqueFd> fd = OpenSocketInNetns(net.HostNetns(from), AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  if (!fd.ok()) {
    *err = fd.status().sys_errno();
    return UniqueFd();
  }
  sockaddr_in addr = Address(TestNetwork::HostAddress(to), kPort);
  if (connect(fd->get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    *err = errno;
    return UniqueFd();
  }
  pollfd p{fd->get(), POLLOUT, 0};
  if (poll(&p, 1, timeout_ms) != 1) {
    *err = ETIMEDOUT;
    return UniqueFd();
  }
  socklen_t len = sizeof(*err);
  getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, err, &len);
  if (*err != 0) return UniqueFd();
  int flags = fcntl(fd->get(), F_GETFL);
  fcntl(fd->get(), F_SETFL, flags & ~O_NONBLOCK);
  return std::move(fd).value();
}

// Sends `size` bytes from host 0 to host 1 through the router; returns the seconds until host
// 1 has read them all.
double TimeTransfer(const TestNetwork& net, size_t size) {
  UniqueFd listener = ListenIn(net, 1);
  int err = 0;
  UniqueFd client = ConnectFrom(net, 0, 1, 2000, &err);
  EXPECT_TRUE(client.valid()) << strerror(err);
  UniqueFd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(server.valid()) << strerror(errno);
  if (!client.valid() || !server.valid()) return -1;
  Clock::time_point start = Clock::now();
  std::thread sender([&] {
    std::vector<char> chunk(64 * 1024, 'x');
    for (size_t sent = 0; sent < size;) {
      ssize_t n = send(client.get(), chunk.data(), std::min(chunk.size(), size - sent), MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  });
  std::vector<char> buf(64 * 1024);
  size_t got = 0;
  while (got < size) {
    ssize_t n = recv(server.get(), buf.data(), buf.size(), 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  sender.join();
  EXPECT_EQ(got, size);
  return seconds;
}

std::string RouterRuleset(const TestNetwork& net) {
  Expected<CommandResult> r = RunCommand({"nft", "list", "ruleset"}, net.RouterNetns());
  EXPECT_TRUE(r.ok() && r->ok()) << (r.ok() ? r->output : r.status().ToString());
  return r.ok() ? r->output : "";
}

bool ProcessExists(pid_t pid) { return access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0; }

TEST(TestNetworkTest, RejectsHostCounts) {
  EXPECT_THAT(TestNetwork::Create(1), StatusIs(Code::kInvalidArgument, "2..64 hosts, not 1"));
  EXPECT_THAT(TestNetwork::Create(TestNetwork::kMaxHosts + 1), StatusIs(Code::kInvalidArgument, "hosts"));
}

TEST(TestNetworkTest, ProbeAgreesWithCreate) {
  Status probe = TestNetwork::Probe();
  if (probe.code() == Code::kUnsupported) GTEST_SKIP() << probe.ToString();
  EXPECT_OK(probe);
}

TEST(TestNetworkTest, LeavesNothingInRootNamespaceAndReapsHolders) {
  ASSERT_EQ(if_nametoindex("r0"), 0u) << "an r0 exists in the root namespace before the test";
  std::vector<pid_t> pids;
  {
    MAKE_NETWORK_OR_SKIP(net);
    EXPECT_EQ(net.host_count(), 2);
    ASSERT_OK(net.CapBandwidth(0, 1000000));
    ASSERT_OK(net.SetLoss(1, 5));
    pids = net.HolderPids();
    ASSERT_EQ(pids.size(), 3u);
    for (pid_t pid : pids) EXPECT_TRUE(ProcessExists(pid)) << pid;
    // The links live in the router and host namespaces only.
    EXPECT_EQ(if_nametoindex("r0"), 0u);
    EXPECT_EQ(if_nametoindex("r1"), 0u);
    Expected<CommandResult> links = RunCommand({"ip", "-o", "link"}, net.RouterNetns());
    ASSERT_TRUE(links.ok() && links->ok());
    EXPECT_NE(links->output.find("r0@"), std::string::npos) << links->output;
    EXPECT_NE(links->output.find("r1@"), std::string::npos) << links->output;
  }
  for (pid_t pid : pids) EXPECT_FALSE(ProcessExists(pid)) << "holder " << pid << " outlived its network";
  EXPECT_EQ(if_nametoindex("r0"), 0u);
  EXPECT_EQ(if_nametoindex("r1"), 0u);
  Expected<CommandResult> tables = RunCommand({"nft", "list", "tables"});
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(tables->output.find(TestNetwork::kNftTable), std::string::npos) << tables->output;
}

TEST(TestNetworkTest, HostsTalkAcrossTheRouter) {
  MAKE_NETWORK_OR_SKIP(net);
  EXPECT_EQ(TestNetwork::HostAddress(1), "10.213.2.2");
  EXPECT_EQ(TestNetwork::RouterAddress(0), "10.213.1.1");
  EXPECT_EQ(TestNetwork::RouterLink(1), "r1");
  UniqueFd listener = ListenIn(net, 1);
  int err = 0;
  UniqueFd client = ConnectFrom(net, 0, 1, 2000, &err);
  ASSERT_TRUE(client.valid()) << strerror(err);
  sockaddr_in peer{};
  socklen_t len = sizeof(peer);
  UniqueFd server(accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid()) << strerror(errno);
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
  EXPECT_EQ(std::string(ip), TestNetwork::HostAddress(0));  // routed, not NATed

  ASSERT_EQ(send(client.get(), "ping", 4, MSG_NOSIGNAL), 4);
  char buf[4];
  ASSERT_EQ(recv(server.get(), buf, 4, MSG_WAITALL), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  ASSERT_EQ(send(server.get(), "pong", 4, MSG_NOSIGNAL), 4);
  ASSERT_EQ(recv(client.get(), buf, 4, MSG_WAITALL), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
}

TEST(TestNetworkTest, BandwidthCapSlowsTransfer) {
  MAKE_NETWORK_OR_SKIP(net);
  constexpr size_t kSize = 2 << 20;
  double uncapped = TimeTransfer(net, kSize);
  EXPECT_LT(uncapped, 0.5);
  ASSERT_OK(net.CapBandwidth(1, 8000000));
  ASSERT_OK(net.CapBandwidth(1, 8000000));  // replacing is fine
  double capped = TimeTransfer(net, kSize);
  EXPECT_GT(capped, 1.0) << "2 MiB at 8 Mbit/s";
  EXPECT_LT(capped, 4.0);
  ASSERT_OK(net.ClearBandwidth(1));
  ASSERT_OK(net.ClearBandwidth(1));  // nothing left to clear
  EXPECT_LT(TimeTransfer(net, kSize), 0.5);
}

TEST(TestNetworkTest, LossRuleIsReplacedAndCleared) {
  MAKE_NETWORK_OR_SKIP(net);
  ASSERT_OK(net.SetLoss(1, 30));
  ASSERT_OK(net.SetLoss(1, 40));
  ASSERT_OK(net.SetLoss(0, 7));
  std::string rules = RouterRuleset(net);
  EXPECT_NE(rules.find("table inet gmemsoak"), std::string::npos) << rules;
  EXPECT_NE(rules.find("oifname \"r1\" numgen random mod 100 < 40 drop"), std::string::npos) << rules;
  EXPECT_NE(rules.find("oifname \"r0\" numgen random mod 100 < 7 drop"), std::string::npos) << rules;
  EXPECT_EQ(rules.find("< 30"), std::string::npos) << rules;
  // Host 1's rule goes; host 0's stays.
  ASSERT_OK(net.ClearLoss(1));
  rules = RouterRuleset(net);
  EXPECT_EQ(rules.find("\"r1\""), std::string::npos) << rules;
  EXPECT_NE(rules.find("\"r0\""), std::string::npos) << rules;
  // The last one takes the table with it.
  ASSERT_OK(net.ClearLoss(0));
  EXPECT_EQ(RouterRuleset(net).find("gmemsoak"), std::string::npos);
  EXPECT_THAT(net.SetLoss(0, 101), StatusIs(Code::kInvalidArgument, "101%"));
}

TEST(TestNetworkTest, CutLinkBlocksConnectAndRestoreLinkHeals) {
  MAKE_NETWORK_OR_SKIP(net);
  UniqueFd listener = ListenIn(net, 1);
  ASSERT_OK(net.CutLink(1));
  int err = 0;
  Clock::time_point start = Clock::now();
  EXPECT_FALSE(ConnectFrom(net, 0, 1, 300, &err).valid());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  EXPECT_TRUE(err == ETIMEDOUT || err == ENETUNREACH || err == EHOSTUNREACH) << strerror(err);

  ASSERT_OK(net.RestoreLink(1));
  // The address survived down/up: the router still has exactly one.
  Expected<CommandResult> addr = RunCommand({"ip", "-o", "-4", "addr", "show", "dev", "r1"}, net.RouterNetns());
  ASSERT_TRUE(addr.ok() && addr->ok());
  EXPECT_NE(addr->output.find("10.213.2.1/24"), std::string::npos) << addr->output;
  UniqueFd client = ConnectFrom(net, 0, 1, 2000, &err);
  EXPECT_TRUE(client.valid()) << strerror(err);
}

TEST(TestNetworkTest, ClearAllUndoesEveryFaultAndIsRepeatable) {
  MAKE_NETWORK_OR_SKIP(net);
  ASSERT_OK(net.CapBandwidth(0, 1000000));
  ASSERT_OK(net.SetLoss(1, 50));
  ASSERT_OK(net.CutLink(1));
  ASSERT_OK(net.ClearAll());
  ASSERT_OK(net.ClearAll());
  EXPECT_EQ(RouterRuleset(net).find("gmemsoak"), std::string::npos);
  Expected<CommandResult> qdisc = RunCommand({"tc", "qdisc", "show", "dev", "r0"}, net.RouterNetns());
  ASSERT_TRUE(qdisc.ok());
  EXPECT_EQ(qdisc->output.find("tbf"), std::string::npos) << qdisc->output;
  UniqueFd listener = ListenIn(net, 1);
  int err = 0;
  EXPECT_TRUE(ConnectFrom(net, 0, 1, 2000, &err).valid()) << strerror(err);
}

TEST(TestNetworkTest, RefusesLinksItDidNotMake) {
  MAKE_NETWORK_OR_SKIP(net);
  EXPECT_THAT(net.CapBandwidth(2, 1000000), StatusIs(Code::kInvalidArgument, "refusing to touch 'r2'"));
  EXPECT_THAT(net.CapBandwidth(-1, 1000000), StatusIs(Code::kInvalidArgument, "host -1"));
  EXPECT_THAT(net.SetLoss(5, 10), StatusIs(Code::kInvalidArgument, "'r5'"));
  EXPECT_THAT(net.CutLink(2), StatusIs(Code::kInvalidArgument, "'r2'"));
  EXPECT_THAT(net.RestoreLink(2), StatusIs(Code::kInvalidArgument, "'r2'"));
  EXPECT_THAT(net.ClearBandwidth(9), StatusIs(Code::kInvalidArgument, "'r9'"));
  EXPECT_THAT(net.CapBandwidth(0, 10), StatusIs(Code::kInvalidArgument, "below"));
}

TEST(TestNetworkTest, MoreHostsAndMovedNetworkKeepsWorking) {
  Expected<TestNetwork> made = TestNetwork::Create(3);
  if (!made.ok() && made.status().code() == Code::kUnsupported) GTEST_SKIP() << made.status().ToString();
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestNetwork net = std::move(made).value();
  EXPECT_EQ(net.host_count(), 3);
  EXPECT_EQ(net.HolderPids().size(), 4u);
  UniqueFd listener = ListenIn(net, 1);
  int err = 0;
  EXPECT_TRUE(ConnectFrom(net, 2, 1, 2000, &err).valid()) << strerror(err);
  TestNetwork target = std::move(net);
  EXPECT_EQ(target.HolderPids().size(), 4u);
  EXPECT_TRUE(net.HolderPids().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

TEST(TestNetworkTest, CommandErrorsNameTheCommand) {
  MAKE_NETWORK_OR_SKIP(net);
  // A rate tc rejects is the one public way to make a command fail.
  Status status = net.CapBandwidth(0, UINT64_MAX);
  if (status.ok()) GTEST_SKIP() << "tc accepted a rate of 2^64-1 bit/s";
  EXPECT_THAT(status, StatusIs(Code::kIo, "'tc qdisc replace dev r0 root tbf"));
  EXPECT_THAT(status, StatusIs(Code::kIo, "(in the router namespace) failed (exit"));
}

TEST(TestNetworkTest, SocketInUnknownNamespaceFails) {
  EXPECT_THAT(OpenSocketInNetns(-1, AF_INET, SOCK_STREAM), StatusIs(Code::kIo, "network namespace"));
}

}  // namespace
}  // namespace gmem::soak
