#pragma once
// TestNetwork: a small real network of network namespaces that the soak runner makes and
// destroys itself, so migration traffic crosses a real network stack, and the network faults
// it injects there (bandwidth caps with tc tbf, random loss with nftables, link cuts).
//
// Topology for N hosts (N >= 2): host namespaces h0..hN-1 and one router namespace r. Host i
// has `eth0` = 10.213.<i+1>.2/24 with a default route via 10.213.<i+1>.1, which is the router's
// end `r<i>` of a veth pair; the router forwards between them.
//
// Nothing has a global name and nothing lives in the root namespace: each namespace is held
// by a holder child process (PR_SET_PDEATHSIG(SIGKILL)) and an fd of its /proc/PID/ns/net.
// When the TestNetwork goes, or the runner is killed, the holders die and the namespaces, with
// every veth, qdisc and nft table in them, vanish.
//
// Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2 (`ip`, `tc`); SetLoss needs `nft`
// (package nftables). Not thread-safe: use one TestNetwork from one thread at a time.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/expected.h"
#include "base/unique_fd.h"

namespace gmem::soak {

// A network namespace kept alive by a holder child process that only waits. Move-only; the
// destructor closes the fd, kills and reaps the holder.
class NetnsHolder {
 public:
  // Forks the holder, which enters a new network namespace and brings `lo` up. An unshare
  // that is not permitted (not root) is kUnsupported with errno EPERM.
  // REQUIRES: called from a thread that outlives the namespace (PR_SET_PDEATHSIG fires when the
  // forking thread exits).
  static Expected<NetnsHolder> Create();

  NetnsHolder() = default;
  ~NetnsHolder() { Reset(); }
  NetnsHolder(NetnsHolder&& other) noexcept;
  NetnsHolder& operator=(NetnsHolder&& other) noexcept;
  NetnsHolder(const NetnsHolder&) = delete;
  NetnsHolder& operator=(const NetnsHolder&) = delete;

  // The holder's pid, or -1.
  pid_t pid() const { return pid_; }
  // An fd of /proc/<pid>/ns/net, owned by this object, for setns() or SpawnOptions::netns_fd.
  int fd() const { return fd_.get(); }
  bool valid() const { return pid_ > 0; }
  // Closes the fd, kills and reaps the holder. Idempotent.
  void Reset();

 private:
  NetnsHolder(pid_t pid, UniqueFd fd) : pid_(pid), fd_(std::move(fd)) {}

  pid_t pid_ = -1;
  UniqueFd fd_;
};

class TestNetwork {
 public:
  static constexpr int kMaxHosts = 64;
  // The only nft table this class makes (in the router namespace): family inet.
  static constexpr const char* kNftTable = "gmemsoak";

  // Cheap check that Create() can work here: a namespace can be made and `ip` runs in it. The
  // error says why not (kUnsupported; errno EPERM when not root), for a fallback to loopback.
  static Status Probe();

  // Builds the namespaces, links, addresses and routes. kInvalidArgument unless
  // 2 <= hosts <= kMaxHosts; kUnsupported when namespaces cannot be made or `ip` is missing;
  // kIo naming the failed command and its output's first line otherwise. Leaves nothing behind
  // when it fails. REQUIRES: as NetnsHolder::Create.
  static Expected<TestNetwork> Create(int hosts = 2);

  TestNetwork() = default;
  ~TestNetwork() = default;  // the holders go, and the namespaces with them
  TestNetwork(TestNetwork&&) noexcept = default;
  TestNetwork& operator=(TestNetwork&&) noexcept = default;
  TestNetwork(const TestNetwork&) = delete;
  TestNetwork& operator=(const TestNetwork&) = delete;

  int host_count() const { return static_cast<int>(hosts_.size()); }
  // "10.213.<host+1>.2": host's own address. REQUIRES: 0 <= host < host_count().
  static std::string HostAddress(int host);
  // "10.213.<host+1>.1": the router's address on host's link (host's gateway).
  static std::string RouterAddress(int host);
  // The router-side interface on host's link ("r<host>"), in the router namespace.
  static std::string RouterLink(int host);
  // Namespace fds owned by this object, valid while it lives (SpawnOptions::netns_fd, setns).
  // REQUIRES: 0 <= host < host_count().
  int HostNetns(int host) const { return hosts_.at(host).fd(); }
  int RouterNetns() const { return router_.fd(); }
  // Pids of the holder processes, hosts first then the router (diagnostics, tests).
  std::vector<pid_t> HolderPids() const;

  // Faults. Each acts only in the router namespace and only on the link or table this object
  // made; a host index out of range is kInvalidArgument and touches nothing. A failed command
  // is kIo (kUnsupported when the tool is missing) naming it.
  //
  // Caps traffic toward `host` (leaving r<host>) at bits_per_second (at least 8000) with tc tbf,
  // replacing any earlier cap.
  Status CapBandwidth(int host, uint64_t bits_per_second);
  Status ClearBandwidth(int host);
  // Drops `percent` (0..100; 0 clears) of the packets forwarded toward `host`, chosen at random,
  // replacing any earlier loss rule for it.
  Status SetLoss(int host, uint32_t percent);
  Status ClearLoss(int host) { return SetLoss(host, 0); }
  // Takes r<host> down (host unreachable; the router answers net-unreachable) and up again.
  Status CutLink(int host);
  Status RestoreLink(int host);
  // Removes every cap, the nft table, and brings every link up. Safe to call repeatedly; tries
  // every step and returns the first error.
  Status ClearAll();

 private:
  struct Link {
    bool capped = false;
    uint32_t loss_percent = 0;
  };

  // kInvalidArgument unless `host` names a link this object made.
  Status CheckHost(int host) const;
  Status ConnectHost(int host);
  // Rewrites the nft table from links_ in one transaction (deletes it when no loss is left).
  Status ApplyLoss();

  std::vector<NetnsHolder> hosts_;
  NetnsHolder router_;
  std::vector<Link> links_;
  bool nft_table_ = false;
};

// Runs `fn` inside the network namespace `netns_fd` (-1: on the calling thread, in its own).
// setns(CLONE_NEWNET) moves only the calling thread, so a short-lived thread enters the namespace
// and the caller stays where it was; a socket made there keeps that namespace for its whole life.
Status RunInNetns(int netns_fd, const std::function<void()>& fn);

// Opens a socket (SOCK_CLOEXEC added) inside the network namespace `netns_fd` (RunInNetns; -1 is
// refused: no namespace).
Expected<UniqueFd> OpenSocketInNetns(int netns_fd, int domain, int type, int protocol = 0);

}  // namespace gmem::soak
