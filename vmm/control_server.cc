#include "vmm/control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/control_protocol.h"

namespace gmem::vmm {

Expected<std::unique_ptr<ControlServer>> ControlServer::Listen(const std::string& path, ControlHandler handler) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("control socket path '" + path + "' is empty or longer than " +
                           std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "socket(AF_UNIX)");
  ::unlink(path.c_str());  // a stale socket from an earlier run
  if (::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(Code::kIo, "bind control socket '" + path + "'");
  }
  if (::listen(fd.get(), 16) != 0) return ErrnoStatus(Code::kIo, "listen on '" + path + "'");
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop.valid()) return ErrnoStatus(Code::kIo, "eventfd");
  return std::unique_ptr<ControlServer>(new ControlServer(path, std::move(fd), std::move(stop), std::move(handler)));
}

ControlServer::~ControlServer() {
  Stop();
  ::unlink(path_.c_str());
}

void ControlServer::Start() { thread_ = std::thread([this] { Serve(); }); }

void ControlServer::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof(one));
  thread_.join();
}

void ControlServer::Serve() {
  for (;;) {
    std::vector<struct pollfd> fds;
    fds.push_back({stop_fd_.get(), POLLIN, 0});
    fds.push_back({listen_fd_.get(), POLLIN, 0});
    for (const Client& c : clients_) fds.push_back({c.fd.get(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    // Clients first (their indices match fds), then new connections.
    std::vector<Client> keep;
    for (size_t i = 0; i < clients_.size(); ++i) {
      bool alive = true;
      if (fds[i + 2].revents != 0) alive = ServiceClient(clients_[i]);
      if (alive) keep.push_back(std::move(clients_[i]));
    }
    clients_ = std::move(keep);
    if ((fds[1].revents & POLLIN) != 0) {
      int c = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) clients_.push_back(Client{UniqueFd(c), {}});
    }
  }
}

bool ControlServer::ServiceClient(Client& client) {
  char buf[65536];
  ssize_t n = ::recv(client.fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) return false;
  client.buffer.append(buf, static_cast<size_t>(n));
  size_t start = 0;
  for (size_t nl; (nl = client.buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(client.buffer.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (!SendReply(client.fd.get(), handler_(line))) return false;
  }
  client.buffer.erase(0, start);
  if (client.buffer.size() > kMaxControlLineBytes) {
    ControlReply reply{ErrorReply(std::nullopt, InvalidArgument("request line longer than " +
                                                               std::to_string(kMaxControlLineBytes) + " bytes")),
                       {}};
    SendReply(client.fd.get(), reply);
    return false;
  }
  return true;
}

bool ControlServer::SendReply(int fd, const ControlReply& reply) {
  size_t sent = 0;
  while (sent < reply.line.size()) {
    struct iovec iov = {const_cast<char*>(reply.line.data() + sent), reply.line.size() - sent};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control;
    if (sent == 0 && !reply.fds.empty()) {
      // SAFETY: the control buffer is CMSG_SPACE for exactly fds.size() ints, filled below.
      control.resize(CMSG_SPACE(sizeof(int) * reply.fds.size()));
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int) * reply.fds.size());
      for (size_t i = 0; i < reply.fds.size(); ++i) {
        int v = reply.fds[i].get();
        std::memcpy(CMSG_DATA(cmsg) + i * sizeof(int), &v, sizeof(int));
      }
    }
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace gmem::vmm
