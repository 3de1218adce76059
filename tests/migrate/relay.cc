#include "tests/migrate/relay.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

#include "transport/sockets.h"

namespace gmem::migrate::testing {

Relay::Relay(const std::string& listen_path, const std::string& target_path, RelayFault fault)
    : listen_path_(listen_path), target_path_(target_path), fault_(fault) {
  thread_ = std::thread([this] { Run(); });
}

Relay::~Relay() {
  stop_.store(true);
  thread_.join();
}

void Relay::Run() {
  auto listener = transport::Listener::Unix(listen_path_);
  if (!listener.ok()) return;
  UniqueFd a;
  while (!stop_.load()) {
    auto fd = listener->Accept(100);
    if (fd.ok()) {
      a = std::move(fd).value();
      break;
    }
  }
  if (!a.valid()) return;
  Expected<UniqueFd> b = Status(Code::kIo, "not yet");
  for (int i = 0; i < 200 && !b.ok(); ++i) {
    b = transport::ConnectUnix(target_path_);
    if (!b.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!b.ok()) return;
  std::ofstream capture;
  if (!fault_.capture_path.empty()) capture.open(fault_.capture_path, std::ios::binary | std::ios::app);
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
        forwarded_.store(upstream);
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
