#pragma once
// Stream sockets for the transport: TCP and Unix listeners and connections, and passing file
// descriptors over Unix sockets (SCM_RIGHTS).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/expected.h"
#include "base/unique_fd.h"

namespace gmem::transport {

// Connects to host:port (name or numeric address), trying each address in turn, each for at
// most timeout_ms. Sets TCP_NODELAY.
Expected<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, int timeout_ms);
Expected<UniqueFd> ConnectUnix(const std::string& path);

class Listener {
 public:
  // port 0 picks a free port (see port()).
  static Expected<Listener> Tcp(const std::string& host, uint16_t port);
  // Replaces a stale socket file at `path`; removes it again on destruction.
  static Expected<Listener> Unix(const std::string& path);
  // A listening stream socket the caller already has (systemd socket activation, fd:N): accepts
  // on a duplicate of `fd`, which stays the caller's. Nothing is unlinked on destruction.
  static Expected<Listener> Adopt(int fd);
  Listener(Listener&&) noexcept = default;
  Listener& operator=(Listener&&) noexcept = default;
  ~Listener();

  // Waits up to timeout_ms (-1: forever) for one connection.
  Expected<UniqueFd> Accept(int timeout_ms);
  uint16_t port() const { return port_; }
  int fd() const { return fd_.get(); }

 private:
  Listener(UniqueFd fd, uint16_t port, std::string unix_path)
      : fd_(std::move(fd)), port_(port), unix_path_(std::move(unix_path)) {}
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::string unix_path_;
};

// Sends `data` (at least one byte) with `fds` attached, on a Unix stream socket.
Status SendWithFds(int sock, ByteSpan data, std::span<const int> fds);
// Receives up to out.size() bytes and any attached fds (at most max_fds; more is an error and
// all of them are closed). Returns the byte count; 0 means the peer closed.
Expected<size_t> RecvWithFds(int sock, MutableByteSpan out, std::vector<UniqueFd>& fds, size_t max_fds);

}  // namespace gmem::transport
