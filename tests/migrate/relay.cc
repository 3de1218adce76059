#include "tests/migrate/relay.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

namespace gmem::migrate::testing {

namespace {

transport::Uri UnixUri(const std::string& path) {
  transport::Uri uri;
  uri.kind = transport::Uri::Kind::kUnix;
  uri.path = path;
  return uri;
}

Expected<UniqueFd> ConnectTo(const transport::Uri& target) {
  if (target.kind == transport::Uri::Kind::kTcp) return transport::ConnectTcp(target.host, target.port, 1000);
  return transport::ConnectUnix(target.path);
}

}  // namespace

Relay::Relay(const std::string& listen_path, const std::string& target_path, RelayFault fault)
    : Relay(UnixUri(listen_path), UnixUri(target_path), std::move(fault), 1) {}

Relay::Relay(const transport::Uri& listen, const transport::Uri& target, RelayFault fault, int connections)
    : listen_(listen), target_(target), fault_(std::move(fault)) {
  auto listener = listen_.kind == transport::Uri::Kind::kTcp ? transport::Listener::Tcp(listen_.host, listen_.port)
                                                              : transport::Listener::Unix(listen_.path);
  if (listener.ok()) {
    listener_.emplace(std::move(listener).value());
    listen_.port = listener_->port();
  }
  acceptor_ = std::thread([this, connections] { Accept(connections); });
}

Relay::~Relay() {
  stop_.store(true);
  acceptor_.join();
  for (std::thread& t : forwarders_) t.join();
}

std::string Relay::uri() const { return listen_.ToString(); }

void Relay::Accept(int connections) {
  if (!listener_.has_value()) return;
  for (int index = 0; index < connections && !stop_.load();) {
    auto fd = listener_->Accept(100);
    if (!fd.ok()) continue;
    forwarders_.emplace_back([this, a = std::move(fd).value(), index]() mutable { Forward(std::move(a), index); });
    ++index;
  }
}

void Relay::Forward(UniqueFd a, int index) {
  Expected<UniqueFd> b = Status(Code::kIo, "not yet");
  for (int i = 0; i < 200 && !b.ok() && !stop_.load(); ++i) {
    b = ConnectTo(target_);
    if (!b.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!b.ok()) return;
  std::ofstream capture;
  if (!fault_.capture_path.empty()) {
    std::string path = fault_.capture_path + (index == 0 ? "" : "." + std::to_string(index));
    capture.open(path, std::ios::binary | std::ios::app);
  }
  uint64_t upstream = 0;
  uint64_t downstream = 0;
  char buf[65536];
  while (!stop_.load()) {
    struct pollfd fds[2] = {{a.get(), POLLIN, 0}, {b->get(), POLLIN, 0}};
    if (::poll(fds, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      int from = i == 0 ? a.get() : b->get();
      int to = i == 0 ? b->get() : a.get();
      ssize_t n = ::read(from, buf, sizeof(buf));
      if (n <= 0) return;  // one side closed: close both (the UniqueFds)
      if (i == 0) {
        if (fault_.cut_after >= 0 && upstream + static_cast<uint64_t>(n) > static_cast<uint64_t>(fault_.cut_after)) {
          return;
        }
        if (fault_.flip_offset >= 0 && static_cast<uint64_t>(fault_.flip_offset) >= upstream &&
            static_cast<uint64_t>(fault_.flip_offset) < upstream + static_cast<uint64_t>(n)) {
          buf[fault_.flip_offset - static_cast<int64_t>(upstream)] ^= 1;
        }
        if (capture.is_open()) capture.write(buf, n);
        upstream += static_cast<uint64_t>(n);
        forwarded_.fetch_add(static_cast<uint64_t>(n));
      } else {
        if (fault_.cut_reply_after >= 0 &&
            downstream + static_cast<uint64_t>(n) > static_cast<uint64_t>(fault_.cut_reply_after)) {
          return;
        }
        if (fault_.hold_reply_after >= 0 &&
            downstream + static_cast<uint64_t>(n) > static_cast<uint64_t>(fault_.hold_reply_after)) {
          // Forward only what fits under the limit; the rest is swallowed.
          n = std::max<int64_t>(0, fault_.hold_reply_after - static_cast<int64_t>(downstream));
          downstream = static_cast<uint64_t>(fault_.hold_reply_after);
          if (n == 0) continue;
        } else {
          downstream += static_cast<uint64_t>(n);
        }
      }
      if (::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) return;
    }
  }
}

}  // namespace gmem::migrate::testing
