#include "transport/sockets.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace gmem::transport {
namespace {

void Tune(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Status WaitFor(int fd, short events, int timeout_ms, const std::string& what) {
  pollfd p{fd, events, 0};
  while (true) {
    int n = poll(&p, 1, timeout_ms);
    if (n > 0) return Status::Ok();
    if (n == 0) return Status(Code::kIo, what + ": timed out after " + std::to_string(timeout_ms) + " ms");
    if (errno != EINTR) return ErrnoStatus(Code::kIo, what + ": poll failed");
  }
}

Expected<UniqueFd> ConnectOne(const addrinfo* ai, int timeout_ms, const std::string& what) {
  UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, what + ": socket failed");
  if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return ErrnoStatus(Code::kIo, what);
    GMEM_RETURN_IF_ERROR(WaitFor(fd.get(), POLLOUT, timeout_ms, what));
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Status(Code::kIo, what, err);
  }
  int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  Tune(fd.get());
  return fd;
}

Expected<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidArgument("unix socket path '" + path + "' is empty or longer than " +
                           std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Expected<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, int timeout_ms) {
  std::string what = "connect to tcp:" + host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
  if (rc != 0) return Status(Code::kIo, what + ": " + gai_strerror(rc));
  Status last = Status(Code::kIo, what + ": no address");
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    Expected<UniqueFd> fd = ConnectOne(ai, timeout_ms, what);
    if (fd.ok()) {
      freeaddrinfo(list);
      return fd;
    }
    last = fd.status();
  }
  freeaddrinfo(list);
  return last;
}

Expected<UniqueFd> ConnectUnix(const std::string& path) {
  GMEM_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "socket failed");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoStatus(Code::kIo, "connect to unix:" + path);
  }
  return fd;
}

Listener::~Listener() {
  if (fd_.valid() && !unix_path_.empty()) unlink(unix_path_.c_str());
}

Expected<Listener> Listener::Tcp(const std::string& host, uint16_t port) {
  std::string what = "listen on tcp:" + host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints, &list);
  if (rc != 0) return Status(Code::kIo, what + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(list, &freeaddrinfo);
  UniqueFd fd(socket(list->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, what + ": socket failed");
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd.get(), list->ai_addr, list->ai_addrlen) != 0) return ErrnoStatus(Code::kIo, what);
  if (listen(fd.get(), 16) != 0) return ErrnoStatus(Code::kIo, what);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  uint16_t actual = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return Listener(std::move(fd), actual, "");
}

Expected<Listener> Listener::Unix(const std::string& path) {
  GMEM_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "socket failed");
  unlink(path.c_str());
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoStatus(Code::kIo, "listen on unix:" + path);
  }
  if (listen(fd.get(), 16) != 0) return ErrnoStatus(Code::kIo, "listen on unix:" + path);
  return Listener(std::move(fd), 0, path);
}

Expected<Listener> Listener::Adopt(int fd) {
  std::string what = "listen on fd:" + std::to_string(fd);
  int listening = 0;
  socklen_t len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) return ErrnoStatus(Code::kIo, what);
  if (listening == 0) return InvalidArgument(what + ": not a listening socket");
  UniqueFd copy(fcntl(fd, F_DUPFD_CLOEXEC, 3));
  if (!copy.valid()) return ErrnoStatus(Code::kIo, what);
  sockaddr_storage bound{};
  len = sizeof bound;
  getsockname(copy.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  uint16_t port = bound.ss_family == AF_INET6  ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                  : bound.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                               : 0;
  return Listener(std::move(copy), port, "");
}

Expected<UniqueFd> Listener::Accept(int timeout_ms) {
  for (;;) {
    GMEM_RETURN_IF_ERROR(WaitFor(fd_.get(), POLLIN, timeout_ms, "waiting for a connection"));
    UniqueFd conn(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.valid()) {
      if (unix_path_.empty()) Tune(conn.get());  // TCP_NODELAY; an adopted Unix socket ignores it
      return conn;
    }
    // A connection that went away before it was taken, or another process took it (an inherited
    // listener may be shared): wait for the next.
    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) return ErrnoStatus(Code::kIo, "accept failed");
  }
}

Status SendWithFds(int sock, ByteSpan data, std::span<const int> fds) {
  if (data.empty()) return InvalidArgument("SendWithFds needs at least one byte");
  msghdr msg{};
  iovec iov{const_cast<std::byte*>(data.data()), data.size()};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(fds.size_bytes()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(fds.size_bytes());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), fds.size_bytes());
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(Code::kIo, "sendmsg failed");
  // The fds went with the first byte; the rest is plain data.
  size_t sent = static_cast<size_t>(n);
  while (sent < data.size()) {
    ssize_t m = send(sock, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (m < 0 && errno == EINTR) continue;
    if (m < 0) return ErrnoStatus(Code::kIo, "send failed");
    sent += static_cast<size_t>(m);
  }
  return Status::Ok();
}

Expected<size_t> RecvWithFds(int sock, MutableByteSpan out, std::vector<UniqueFd>& fds, size_t max_fds) {
  msghdr msg{};
  iovec iov{out.data(), out.size()};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (max_fds == 0 ? 1 : max_fds)));
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(Code::kIo, "recvmsg failed");
  std::vector<UniqueFd> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      got.emplace_back(fd);  // owned from here on, so closed on every error path
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || got.size() > max_fds) {
    return ProtocolError("peer sent more file descriptors than expected");
  }
  for (UniqueFd& fd : got) fds.push_back(std::move(fd));
  return static_cast<size_t>(n);
}

}  // namespace gmem::transport
