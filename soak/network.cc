#include "soak/network.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <thread>

#include "soak/child_process.h"

namespace gmem::soak {
namespace {

constexpr int kCommandTimeoutMs = 10000;
constexpr std::string_view kRouterWhere = "router namespace";

// What a holder tells its parent once, through a pipe: the step that failed (kReady: none) and
// its errno.
enum HolderStep : int32_t { kReady = 0, kOrphaned, kUnshare, kLoopback };
struct HolderReport {
  int32_t step = kReady;
  int32_t err = 0;
};

// In the holder: ifconfig lo up by ioctl, so a holder needs no `ip`. Returns an errno or 0.
int BringLoopbackUp() {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, "lo", 3);
  int err = 0;
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) {
    err = errno;
  } else {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) err = errno;
  }
  close(sock);
  return err;
}

// The holder after fork: async-signal-safe calls only, since the parent may have threads. It
// blocks every signal (a ^C or a handler inherited from the runner must not run here), keeps
// no fd of the parent's (a socket copy here would hide a close from its peer), and waits to be
// killed: by its owner, or by PR_SET_PDEATHSIG when the forking thread ends.
[[noreturn]] void RunHolder(pid_t parent, int report_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  HolderReport report;
  if (getppid() != parent) {
    report.step = kOrphaned;  // the parent died before prctl: nobody would ever kill us
  } else if (unshare(CLONE_NEWNET) != 0) {
    report = {kUnshare, errno};
  } else if (int err = BringLoopbackUp(); err != 0) {
    report = {kLoopback, err};
  }
  (void)!write(report_fd, &report, sizeof(report));
  if (report.step != kReady) _exit(1);
  close_range(0, ~0U, 0);
  for (;;) pause();
}

Status HolderError(const HolderReport& report) {
  switch (report.step) {
    case kOrphaned:
      return Status(Code::kIo, "namespace holder lost its parent before it started");
    case kUnshare:
      return Status(report.err == EPERM ? Code::kUnsupported : Code::kIo,
                    "cannot make a network namespace: unshare(CLONE_NEWNET)", report.err);
    case kLoopback:
      return Status(Code::kIo, "cannot bring 'lo' up in a new network namespace", report.err);
    default:
      return Status(Code::kIo, "namespace holder reported step " + std::to_string(report.step));
  }
}

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) out += (out.empty() ? "" : " ") + arg;
  return out;
}

// Runs one command inside `netns_fd`; errors name the command, `where` it ran, how it ended and
// its output's first line. A program that cannot be run (exit 127) is kUnsupported.
Status Run(const std::vector<std::string>& argv, int netns_fd, std::string_view where) {
  std::string command = "'" + Join(argv) + "' (in the " + std::string(where) + ")";
  Expected<CommandResult> result = RunCommand(argv, netns_fd, kCommandTimeoutMs);
  if (!result.ok()) return result.status().WithContext(command);
  if (result->ok()) return Status::Ok();
  std::string first = result->output.substr(0, result->output.find('\n'));
  bool missing = result->status.exited() && result->status.code == 127;
  return Status(missing ? Code::kUnsupported : Code::kIo,
                command + " failed (" + result->status.Describe() + ")" + (first.empty() ? "" : ": " + first));
}

std::string HostWhere(int host) { return "namespace of host " + std::to_string(host); }

}  // namespace

// --- NetnsHolder ---

Expected<NetnsHolder> NetnsHolder::Create() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(Code::kIo, "pipe2");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(Code::kIo, "fork");
  if (pid == 0) RunHolder(parent, write_end.get());
  write_end.Reset();
  NetnsHolder holder(pid, UniqueFd());  // from here on, any error kills and reaps it

  HolderReport report;
  ssize_t n;
  do {
    n = read(read_end.get(), &report, sizeof(report));
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(report))) {
    return Status(Code::kIo, "namespace holder " + std::to_string(pid) + " ended before it was ready");
  }
  if (report.step != kReady) return HolderError(report);
  std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  holder.fd_.Reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!holder.fd_.valid()) return ErrnoStatus(Code::kIo, "cannot open " + path);
  return holder;
}

NetnsHolder::NetnsHolder(NetnsHolder&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), fd_(std::move(other.fd_)) {}

NetnsHolder& NetnsHolder::operator=(NetnsHolder&& other) noexcept {
  if (this != &other) {
    Reset();
    pid_ = std::exchange(other.pid_, -1);
    fd_ = std::move(other.fd_);
  }
  return *this;
}

void NetnsHolder::Reset() {
  // Our fd keeps the namespace alive as surely as the holder does: drop both.
  fd_.Reset();
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

// --- TestNetwork ---

Status TestNetwork::Probe() {
  GMEM_ASSIGN_OR_RETURN(NetnsHolder holder, NetnsHolder::Create());
  return Run({"ip", "-V"}, holder.fd(), "probe namespace");
}

Expected<TestNetwork> TestNetwork::Create(int hosts) {
  if (hosts < 2 || hosts > kMaxHosts) {
    return InvalidArgument("a test network needs 2.." + std::to_string(kMaxHosts) + " hosts, not " +
                           std::to_string(hosts));
  }
  // On any error `net` goes out of scope and its holders, namespaces and links with it.
  TestNetwork net;
  GMEM_ASSIGN_OR_RETURN(net.router_, NetnsHolder::Create());
  for (int i = 0; i < hosts; ++i) {
    GMEM_ASSIGN_OR_RETURN(NetnsHolder holder, NetnsHolder::Create());
    net.hosts_.push_back(std::move(holder));
    net.links_.emplace_back();
  }
  // /proc/sys/net shows the namespace of the process that opens it: the shell in the router.
  GMEM_RETURN_IF_ERROR(
      Run({"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"}, net.router_.fd(), kRouterWhere));
  for (int i = 0; i < hosts; ++i) GMEM_RETURN_IF_ERROR(net.ConnectHost(i));
  return net;
}

Status TestNetwork::ConnectHost(int host) {
  const std::string link = RouterLink(host);
  const int router = router_.fd();
  const int ns = hosts_[host].fd();
  const std::string where = HostWhere(host);
  // `netns PID` moves the peer into the holder's namespace as it is made: no name is ever
  // visible outside the two namespaces.
  GMEM_RETURN_IF_ERROR(Run({"ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns",
                            std::to_string(hosts_[host].pid())},
                           router, kRouterWhere));
  GMEM_RETURN_IF_ERROR(Run({"ip", "addr", "add", RouterAddress(host) + "/24", "dev", link}, router, kRouterWhere));
  GMEM_RETURN_IF_ERROR(Run({"ip", "link", "set", "dev", link, "up"}, router, kRouterWhere));
  GMEM_RETURN_IF_ERROR(Run({"ip", "addr", "add", HostAddress(host) + "/24", "dev", "eth0"}, ns, where));
  GMEM_RETURN_IF_ERROR(Run({"ip", "link", "set", "dev", "eth0", "up"}, ns, where));
  return Run({"ip", "route", "add", "default", "via", RouterAddress(host)}, ns, where);
}

std::string TestNetwork::HostAddress(int host) { return "10.213." + std::to_string(host + 1) + ".2"; }
std::string TestNetwork::RouterAddress(int host) { return "10.213." + std::to_string(host + 1) + ".1"; }
std::string TestNetwork::RouterLink(int host) { return "r" + std::to_string(host); }

std::vector<pid_t> TestNetwork::HolderPids() const {
  std::vector<pid_t> pids;
  for (const NetnsHolder& holder : hosts_) pids.push_back(holder.pid());
  if (router_.valid()) pids.push_back(router_.pid());
  return pids;
}

Status TestNetwork::CheckHost(int host) const {
  if (host >= 0 && host < host_count()) return Status::Ok();
  return InvalidArgument("host " + std::to_string(host) + " is not in this test network (" +
                         std::to_string(host_count()) + " hosts): refusing to touch '" + RouterLink(host) + "'");
}

Status TestNetwork::CapBandwidth(int host, uint64_t bits_per_second) {
  GMEM_RETURN_IF_ERROR(CheckHost(host));
  if (bits_per_second < 8000) return InvalidArgument("bandwidth cap below 8000 bit/s");
  // tbf's bucket: 10 ms at the rate, but at least ten full frames so that it never starves the
  // link below the rate; 100 ms of queue before it drops.
  uint64_t burst_bytes = std::max<uint64_t>(bits_per_second / 8 / 100, 10 * 1514);
  GMEM_RETURN_IF_ERROR(Run({"tc", "qdisc", "replace", "dev", RouterLink(host), "root", "tbf", "rate",
                            std::to_string(bits_per_second) + "bit", "burst", std::to_string(burst_bytes),
                            "latency", "100ms"},
                           router_.fd(), kRouterWhere));
  links_[host].capped = true;
  return Status::Ok();
}

Status TestNetwork::ClearBandwidth(int host) {
  GMEM_RETURN_IF_ERROR(CheckHost(host));
  if (!links_[host].capped) return Status::Ok();  // tc refuses to delete the default qdisc
  GMEM_RETURN_IF_ERROR(Run({"tc", "qdisc", "del", "dev", RouterLink(host), "root"}, router_.fd(), kRouterWhere));
  links_[host].capped = false;
  return Status::Ok();
}

Status TestNetwork::SetLoss(int host, uint32_t percent) {
  GMEM_RETURN_IF_ERROR(CheckHost(host));
  if (percent > 100) return InvalidArgument("loss of " + std::to_string(percent) + "% is more than 100%");
  uint32_t before = links_[host].loss_percent;
  links_[host].loss_percent = percent;
  Status status = ApplyLoss();
  if (!status.ok()) links_[host].loss_percent = before;  // the nft transaction changed nothing
  return status;
}

Status TestNetwork::ApplyLoss() {
  const std::string table = std::string("inet ") + kNftTable;
  bool any = std::any_of(links_.begin(), links_.end(), [](const Link& l) { return l.loss_percent > 0; });
  if (!any) {
    if (!nft_table_) return Status::Ok();
    GMEM_RETURN_IF_ERROR(Run({"nft", "delete table " + table}, router_.fd(), kRouterWhere));
    nft_table_ = false;
    return Status::Ok();
  }
  // One nft invocation is one transaction: the table is made if missing, and the chain is
  // rewritten whole, so a host's old rule is replaced and no moment has both or neither.
  std::string script = "add table " + table + "; add chain " + table +
                       " forward { type filter hook forward priority 0; policy accept; }; flush chain " + table +
                       " forward;";
  for (int i = 0; i < host_count(); ++i) {
    if (links_[i].loss_percent == 0) continue;
    script += " add rule " + table + " forward oifname \"" + RouterLink(i) + "\" numgen random mod 100 < " +
              std::to_string(links_[i].loss_percent) + " drop;";
  }
  GMEM_RETURN_IF_ERROR(Run({"nft", script}, router_.fd(), kRouterWhere));
  nft_table_ = true;
  return Status::Ok();
}

Status TestNetwork::CutLink(int host) {
  GMEM_RETURN_IF_ERROR(CheckHost(host));
  return Run({"ip", "link", "set", "dev", RouterLink(host), "down"}, router_.fd(), kRouterWhere);
}

Status TestNetwork::RestoreLink(int host) {
  GMEM_RETURN_IF_ERROR(CheckHost(host));
  const std::string link = RouterLink(host);
  GMEM_RETURN_IF_ERROR(Run({"ip", "link", "set", "dev", link, "up"}, router_.fd(), kRouterWhere));
  // IPv4 addresses survive down/up (seen on 6.18), and the kernel restores the connected route;
  // `replace` is a no-op then and puts the address back where a kernel dropped it.
  return Run({"ip", "addr", "replace", RouterAddress(host) + "/24", "dev", link}, router_.fd(), kRouterWhere);
}

Status TestNetwork::ClearAll() {
  Status first;
  auto keep = [&first](Status status) {
    if (first.ok() && !status.ok()) first = std::move(status);
  };
  for (int i = 0; i < host_count(); ++i) {
    keep(ClearBandwidth(i));
    keep(RestoreLink(i));
    links_[i].loss_percent = 0;
  }
  keep(ApplyLoss());
  return first;
}

Status RunInNetns(int netns_fd, const std::function<void()>& fn) {
  if (netns_fd < 0) {
    fn();
    return Status::Ok();
  }
  int setns_errno = 0;
  std::thread([&] {
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
      setns_errno = errno;
      return;
    }
    fn();
  }).join();
  if (setns_errno != 0) return Status(Code::kIo, "cannot enter the network namespace", setns_errno);
  return Status::Ok();
}

Expected<UniqueFd> OpenSocketInNetns(int netns_fd, int domain, int type, int protocol) {
  if (netns_fd < 0) return Status(Code::kIo, "cannot enter the network namespace", EBADF);
  int fd = -1;
  int socket_errno = 0;
  GMEM_RETURN_IF_ERROR(RunInNetns(netns_fd, [&] {
    fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) socket_errno = errno;
  }));
  if (fd < 0) return Status(Code::kIo, "socket", socket_errno);
  return UniqueFd(fd);
}

}  // namespace gmem::soak
