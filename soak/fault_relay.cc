#include "soak/fault_relay.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "soak/network.h"
#include "transport/sockets.h"

namespace gmem::soak {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kReadBytes = 64 * 1024;
// Bounds the per-chunk overhead when a sender writes tiny pieces while latency holds them back.
constexpr size_t kMaxQueuedChunks = 4096;
constexpr int kConnectTimeoutMs = 3000;
// Longest sleep in poll(); every wake-up that matters comes earlier through an fd.
constexpr int kMaxPollMs = 1000;

int Poll(pollfd* fds, nfds_t n, int timeout_ms) {
  int rc;
  do {
    rc = ::poll(fds, n, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

// Makes close() send a TCP reset and drop whatever was not sent yet.
void SetLingerZero(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

// Makes an eventfd readable for good: it is never read, so every poller sees it from now on.
void Signal(int event_fd) {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(event_fd, &one, sizeof one);
}

Status CheckTcp(const transport::Uri& uri, const std::string& what, bool port_required) {
  if (uri.kind != transport::Uri::Kind::kTcp) {
    return InvalidArgument("fault relay: " + what + " '" + uri.ToString() + "' is not tcp:HOST:PORT");
  }
  if (port_required && uri.port == 0) return InvalidArgument("fault relay: " + what + " has port 0");
  return Status::Ok();
}

Status CheckFaults(const RelayFaults& f) {
  if (f.latency_ms < 0 || f.jitter_ms < 0 || f.stall_ms < 0) {
    return InvalidArgument("fault relay: latency_ms, jitter_ms and stall_ms must not be negative");
  }
  return Status::Ok();
}

struct Chunk {
  Clock::time_point deadline;
  std::vector<std::byte> bytes;
  size_t offset = 0;  // bytes already written
};

// One direction of a connection: chunks read from `from` wait in `queue` until written to `to`.
struct Pipe {
  int from = -1;
  int to = -1;
  bool to_target = false;
  std::deque<Chunk> queue;
  size_t queued_bytes = 0;
  Clock::time_point last_deadline{};
  bool eof = false;      // `from` reached EOF
  bool shut = false;     // ... and that EOF was passed on: `to` is shut for writing
  bool blocked = false;  // `to` said EAGAIN: wait for POLLOUT
  std::mt19937_64 rng;

  bool WantsRead() const {
    return !eof && queued_bytes < FaultRelay::kMaxQueuedBytes && queue.size() < kMaxQueuedChunks;
  }
};

// What the acceptor and every session share. Thread-safe once built.
struct Core {
  UniqueFd netns;  // invalid: the creator's namespace
  sockaddr_storage target_addr{};
  socklen_t target_len = 0;
  UniqueFd stop_fd;   // eventfd, readable once the relay is being destroyed
  UniqueFd reset_fd;  // eventfd, readable once the relay has reset

  mutable std::mutex mu;
  RelayFaults faults;  // guarded by mu
  std::atomic<bool> stall_armed{true};
  std::atomic<int64_t> stall_until_ns{0};       // steady clock
  std::atomic<uint64_t> reserved_to_target{0};  // written to the target, or being written now
  std::atomic<uint64_t> to_target{0};
  std::atomic<uint64_t> to_source{0};
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> failed_connects{0};
  std::atomic<uint64_t> stalls{0};
  std::atomic<bool> reset{false};
  std::atomic<bool> stopping{false};
  std::atomic<FaultRelay::ReplyReset> reply_reset{FaultRelay::ReplyReset::kOff};
  std::atomic<bool> answer_armed{false};  // kAfterAnswer: reset once the next chunk reaches the target

  RelayFaults Faults() const {
    std::lock_guard lock(mu);
    return faults;
  }
  Clock::time_point StallEnd() const { return Clock::time_point(std::chrono::nanoseconds(stall_until_ns.load())); }

  void Stall(int duration_ms) {
    if (duration_ms <= 0) return;
    int64_t until = (Clock::now() + std::chrono::milliseconds(duration_ms)).time_since_epoch().count();
    int64_t current = stall_until_ns.load();
    while (current < until && !stall_until_ns.compare_exchange_weak(current, until)) {
    }
    stalls.fetch_add(1);
  }

  void Reset() {
    if (!reset.exchange(true)) Signal(reset_fd.get());
  }

  // Reserves up to `want` bytes of the budget reset_after_bytes (`limit`, -1: unlimited) leaves;
  // 0 once it is spent. Reserving before writing keeps concurrent connections under the limit.
  size_t ReserveToTarget(size_t want, int64_t limit) {
    uint64_t current = reserved_to_target.load();
    size_t take;
    do {
      take = want;
      if (limit >= 0) {
        uint64_t budget = static_cast<uint64_t>(limit);
        take = current >= budget ? 0 : static_cast<size_t>(std::min<uint64_t>(want, budget - current));
      }
    } while (take > 0 && !reserved_to_target.compare_exchange_weak(current, current + take));
    return take;
  }

  // Counts `sent` bytes of a write that reserved `reserved`, then applies the byte-count faults.
  void Wrote(bool toward_target, size_t sent, size_t reserved, const RelayFaults& f) {
    if (!toward_target) {
      to_source.fetch_add(sent);
      return;
    }
    reserved_to_target.fetch_sub(reserved - sent);
    uint64_t total = to_target.fetch_add(sent) + sent;
    if (f.stall_after_bytes >= 0 && total >= static_cast<uint64_t>(f.stall_after_bytes) && stall_armed.exchange(false)) {
      Stall(f.stall_ms);
    }
    if (f.reset_after_bytes >= 0 && total >= static_cast<uint64_t>(f.reset_after_bytes)) Reset();
  }
};

// One relayed connection, served by its own thread from construction until it ends or the relay
// stops or resets.
class Session {
 public:
  Session(Core& core, UniqueFd source, uint64_t index) : core_(core), source_(std::move(source)) {
    uint64_t seed = core.Faults().seed;
    std::seed_seq up_seed{seed, index, uint64_t{0}};
    std::seed_seq down_seed{seed, index, uint64_t{1}};
    up_.rng.seed(up_seed);
    down_.rng.seed(down_seed);
    thread_ = std::thread([this] {
      Run();
      done_.store(true);
    });
  }
  ~Session() { thread_.join(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  bool done() const { return done_.load(); }

 private:
  void Run();
  bool Connect();
  bool Serve(const pollfd& p, Pipe& in, Pipe& out, const RelayFaults& f);
  bool Read(Pipe& pipe, const RelayFaults& f);
  bool Flush(Pipe& pipe, const RelayFaults& f);
  bool TakeReplyReset(FaultRelay::ReplyReset when);
  int PollTimeoutMs() const;
  void Close(bool reset);

  Core& core_;
  UniqueFd source_;
  UniqueFd target_;
  Pipe up_;    // source -> target
  Pipe down_;  // target -> source
  std::vector<std::byte> buffer_ = std::vector<std::byte>(kReadBytes);
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// The poll entry for socket `fd`, which `in` reads from and `out` writes to; fd -1 (ignored by
// poll) when neither waits, so a hung-up socket cannot spin the loop.
pollfd Watch(int fd, const Pipe& in, const Pipe& out) {
  short events = static_cast<short>((in.WantsRead() ? POLLIN : 0) | (out.blocked ? POLLOUT : 0));
  return pollfd{events != 0 ? fd : -1, events, 0};
}

void Session::Run() {
  if (!Connect()) {
    if (!core_.reset.load() && !core_.stopping.load()) core_.failed_connects.fetch_add(1);
    return Close(true);
  }
  up_.from = down_.to = source_.get();
  up_.to = down_.from = target_.get();
  up_.to_target = true;
  while (true) {
    RelayFaults f = core_.Faults();
    if (!Flush(up_, f) || !Flush(down_, f)) return Close(true);
    if (up_.shut && down_.shut) return Close(false);  // both sides said EOF and got it passed on
    pollfd fds[4] = {{core_.stop_fd.get(), POLLIN, 0}, {core_.reset_fd.get(), POLLIN, 0},
                     Watch(source_.get(), up_, down_), Watch(target_.get(), down_, up_)};
    if (Poll(fds, 4, PollTimeoutMs()) < 0) return Close(true);
    if (fds[0].revents != 0 || fds[1].revents != 0) return Close(true);
    if (!Serve(fds[2], up_, down_, f) || !Serve(fds[3], down_, up_, f)) return Close(true);
  }
}

bool Session::Connect() {
  const auto* addr = reinterpret_cast<const sockaddr*>(&core_.target_addr);
  Status entered = RunInNetns(core_.netns.get(), [&] {
    target_.Reset(::socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  });
  if (!entered.ok() || !target_.valid()) return false;
  if (::connect(target_.get(), addr, core_.target_len) != 0) {
    if (errno != EINPROGRESS) return false;
    // Waits with the stop and reset fds so that a slow target never delays the destructor.
    pollfd fds[3] = {{core_.stop_fd.get(), POLLIN, 0}, {core_.reset_fd.get(), POLLIN, 0}, {target_.get(), POLLOUT, 0}};
    if (Poll(fds, 3, kConnectTimeoutMs) <= 0 || fds[0].revents != 0 || fds[1].revents != 0) return false;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(target_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return false;
  }
  int one = 1;
  for (int fd : {source_.get(), target_.get()}) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return true;
}

bool Session::Serve(const pollfd& p, Pipe& in, Pipe& out, const RelayFaults& f) {
  if ((p.revents & (POLLOUT | POLLERR | POLLHUP)) != 0) out.blocked = false;  // the next send tells
  if ((p.revents & (POLLIN | POLLERR | POLLHUP)) != 0 && in.WantsRead()) return Read(in, f);
  return true;
}

bool Session::Read(Pipe& pipe, const RelayFaults& f) {
  ssize_t n = ::recv(pipe.from, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0) {
    pipe.eof = true;
    return true;
  }
  std::chrono::microseconds delay = std::chrono::milliseconds(f.latency_ms);
  if (f.jitter_ms > 0) {
    delay += std::chrono::microseconds(
        std::uniform_int_distribution<int64_t>(0, int64_t{f.jitter_ms} * 1000)(pipe.rng));
  }
  // Writes are FIFO, so jitter cannot reorder bytes; monotonic deadlines also make the queue's
  // front the next thing due, which is all PollTimeoutMs() looks at.
  Clock::time_point deadline = std::max(Clock::now() + delay, pipe.last_deadline);
  pipe.last_deadline = deadline;
  pipe.queued_bytes += static_cast<size_t>(n);
  pipe.queue.push_back(Chunk{deadline, std::vector<std::byte>(buffer_.begin(), buffer_.begin() + n)});
  return true;
}

// Resets the relay if a reply reset of kind `when` is armed (once).
bool Session::TakeReplyReset(FaultRelay::ReplyReset when) {
  FaultRelay::ReplyReset armed = when;
  if (!core_.reply_reset.compare_exchange_strong(armed, FaultRelay::ReplyReset::kOff)) return false;
  core_.Reset();
  return true;
}

bool Session::Flush(Pipe& pipe, const RelayFaults& f) {
  const Clock::time_point now = Clock::now();
  const bool stalled = now < core_.StallEnd();
  while (!stalled && !pipe.blocked && !pipe.queue.empty() && pipe.queue.front().deadline <= now) {
    Chunk& chunk = pipe.queue.front();
    size_t want = chunk.bytes.size() - chunk.offset;
    size_t take = pipe.to_target ? core_.ReserveToTarget(want, f.reset_after_bytes) : want;
    if (take == 0) {  // reset_after_bytes reached: the reset fd ends this loop
      core_.Reset();
      return true;
    }
    if (!pipe.to_target && TakeReplyReset(FaultRelay::ReplyReset::kBeforeForwarding)) return true;
    if (!pipe.to_target && core_.reply_reset.load() == FaultRelay::ReplyReset::kAfterAnswer) {
      core_.answer_armed.store(true);  // this reply goes through; the answer to it will too
      core_.reply_reset.store(FaultRelay::ReplyReset::kOff);
    }
    ssize_t n = ::send(pipe.to, chunk.bytes.data() + chunk.offset, take, MSG_NOSIGNAL | MSG_DONTWAIT);
    int err = errno;
    size_t sent = n > 0 ? static_cast<size_t>(n) : 0;
    core_.Wrote(pipe.to_target, sent, take, f);
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
      pipe.blocked = true;
    } else if (n < 0 && err != EINTR) {
      return false;
    }
    chunk.offset += sent;
    pipe.queued_bytes -= sent;
    if (chunk.offset == chunk.bytes.size()) {
      pipe.queue.pop_front();
      if (!pipe.to_target && TakeReplyReset(FaultRelay::ReplyReset::kAfterForwarding)) return true;
      if (pipe.to_target && core_.answer_armed.exchange(false)) {
        core_.Reset();
        return true;
      }
    }
  }
  if (pipe.eof && pipe.queue.empty() && !pipe.shut) {
    ::shutdown(pipe.to, SHUT_WR);
    pipe.shut = true;
  }
  return true;
}

int Session::PollTimeoutMs() const {
  std::optional<Clock::time_point> wake;
  for (const Pipe* pipe : {&up_, &down_}) {
    if (pipe->blocked || pipe->queue.empty()) continue;
    Clock::time_point due = std::max(pipe->queue.front().deadline, core_.StallEnd());
    if (!wake.has_value() || due < *wake) wake = due;
  }
  if (!wake.has_value()) return kMaxPollMs;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*wake - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, kMaxPollMs));
}

void Session::Close(bool reset) {
  if (reset) {
    SetLingerZero(source_.get());
    if (target_.valid()) SetLingerZero(target_.get());
  }
  source_.Reset();
  target_.Reset();
}

}  // namespace

struct FaultRelay::Impl {
  Core core;
  transport::Uri listen;
  std::optional<transport::Listener> listener;
  std::list<std::unique_ptr<Session>> sessions;  // acceptor thread only
  std::thread acceptor;

  // Stops everything, also when a move assignment replaces a running relay.
  ~Impl() {
    if (!acceptor.joinable()) return;  // Create() failed before starting it
    core.stopping.store(true);
    Signal(core.stop_fd.get());
    acceptor.join();
  }
  void Accept();
  Status Resolve(const transport::Uri& target);
};

void FaultRelay::Impl::Accept() {
  while (true) {
    pollfd fds[2] = {{core.stop_fd.get(), POLLIN, 0}, {listener->fd(), POLLIN, 0}};
    int n = Poll(fds, 2, kMaxPollMs);
    if (fds[0].revents != 0) break;
    // Joins the sessions that ended, so a long soak does not pile up threads.
    sessions.remove_if([](const std::unique_ptr<Session>& s) { return s->done(); });
    UniqueFd fd;
    if (n > 0) fd.Reset(::accept4(listener->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      // A failing poll() or accept() (out of fds, say) would fail again at once: don't spin.
      if (n != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    uint64_t index = core.connections.fetch_add(1);
    if (core.reset.load()) {
      SetLingerZero(fd.get());  // refused: the UniqueFd closes it with a reset
      continue;
    }
    sessions.push_back(std::make_unique<Session>(core, std::move(fd), index));
  }
  sessions.clear();  // each session saw stop_fd; its destructor joins it
}

Status FaultRelay::Impl::Resolve(const transport::Uri& target) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(target.host.c_str(), std::to_string(target.port).c_str(), &hints, &list);
  if (rc != 0) return Status(Code::kIo, "fault relay: resolve " + target.ToString() + ": " + gai_strerror(rc));
  std::copy_n(reinterpret_cast<const std::byte*>(list->ai_addr), list->ai_addrlen,
              reinterpret_cast<std::byte*>(&core.target_addr));
  core.target_len = list->ai_addrlen;
  ::freeaddrinfo(list);
  return Status::Ok();
}

Expected<FaultRelay> FaultRelay::Create(const transport::Uri& listen, const transport::Uri& target,
                                        const RelayFaults& faults, int netns_fd) {
  GMEM_RETURN_IF_ERROR(CheckTcp(listen, "listen address", false));
  GMEM_RETURN_IF_ERROR(CheckTcp(target, "target", true));
  GMEM_RETURN_IF_ERROR(CheckFaults(faults));
  auto impl = std::make_unique<Impl>();
  impl->core.faults = faults;
  if (netns_fd >= 0) {
    impl->core.netns.Reset(::fcntl(netns_fd, F_DUPFD_CLOEXEC, 0));
    if (!impl->core.netns.valid()) return ErrnoStatus(Code::kIo, "fault relay: duplicate network namespace fd");
  }
  GMEM_RETURN_IF_ERROR(impl->Resolve(target));
  Expected<transport::Listener> listener = Status(Code::kIo, "not created");
  Status entered = RunInNetns(impl->core.netns.get(), [&] { listener = transport::Listener::Tcp(listen.host, listen.port); });
  if (!entered.ok()) return std::move(entered).WithContext("fault relay");
  if (!listener.ok()) return std::move(listener).status().WithContext("fault relay");
  impl->listener.emplace(std::move(listener).value());
  impl->listen = listen;
  impl->listen.port = impl->listener->port();
  impl->core.stop_fd.Reset(::eventfd(0, EFD_CLOEXEC));
  impl->core.reset_fd.Reset(::eventfd(0, EFD_CLOEXEC));
  if (!impl->core.stop_fd.valid() || !impl->core.reset_fd.valid()) return ErrnoStatus(Code::kIo, "fault relay: eventfd");
  impl->acceptor = std::thread([p = impl.get()] { p->Accept(); });
  return FaultRelay(std::move(impl));
}

FaultRelay::FaultRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaultRelay::FaultRelay(FaultRelay&&) noexcept = default;
FaultRelay& FaultRelay::operator=(FaultRelay&&) noexcept = default;

FaultRelay::~FaultRelay() = default;

std::string FaultRelay::uri() const { return impl_->listen.ToString(); }
uint16_t FaultRelay::port() const { return impl_->listen.port; }

Status FaultRelay::SetFaults(const RelayFaults& faults) {
  GMEM_RETURN_IF_ERROR(CheckFaults(faults));
  std::lock_guard lock(impl_->core.mu);
  impl_->core.faults = faults;
  impl_->core.stall_armed.store(true);
  return Status::Ok();
}

RelayFaults FaultRelay::faults() const { return impl_->core.Faults(); }
void FaultRelay::Stall(int duration_ms) { impl_->core.Stall(duration_ms); }
void FaultRelay::ResetNow() { impl_->core.Reset(); }

void FaultRelay::ResetOnNextReply(ReplyReset when) { impl_->core.reply_reset.store(when); }

RelayStats FaultRelay::stats() const {
  const Core& c = impl_->core;
  return RelayStats{c.to_target.load(), c.to_source.load(), c.connections.load(), c.failed_connects.load(),
                    c.stalls.load(),    c.reset.load()};
}

}  // namespace gmem::soak
