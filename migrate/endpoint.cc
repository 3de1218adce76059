#include "migrate/endpoint.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "format/crypto.h"
#include "transport/sockets.h"

namespace gmem::migrate {

namespace {

bool IsStreamSocket(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

bool IsListeningSocket(int fd) {
  int listening = 0;
  socklen_t len = sizeof(listening);
  return IsStreamSocket(fd) && ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0;
}

Expected<UniqueFd> DupFd(int fd) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return ErrnoStatus(Code::kIo, "fd:" + std::to_string(fd));
  return UniqueFd(copy);
}

Expected<UniqueFd> ConnectWithRetry(const transport::Uri& uri, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    Expected<UniqueFd> fd = uri.kind == transport::Uri::Kind::kTcp ? transport::ConnectTcp(uri.host, uri.port, 2000)
                                                                   : transport::ConnectUnix(uri.path);
    if (fd.ok() || std::chrono::steady_clock::now() >= deadline) return fd;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Endpoint MakeEndpoint(UniqueFd fd, const transport::Uri& uri, bool interactive) {
  Endpoint endpoint;
  endpoint.channel = std::make_unique<transport::FdChannel>(std::move(fd), uri.ToString());
  endpoint.interactive = interactive;
  return endpoint;
}

// A file stream bypasses the page cache where it can (null writer/reader: it cannot, e.g. a pipe).
Endpoint MakeFileEndpoint(UniqueFd fd, const transport::Uri& uri, bool writing) {
  Endpoint endpoint = MakeEndpoint(std::move(fd), uri, false);
  if (writing) {
    endpoint.direct_writer = transport::DirectFileWriter::Start(*endpoint.channel);
  } else {
    endpoint.direct_reader = transport::DirectFileReader::Start(*endpoint.channel);
  }
  return endpoint;
}

}  // namespace

Expected<Endpoint> OpenSourceEndpoint(const transport::Uri& uri, int timeout_ms) {
  switch (uri.kind) {
    case transport::Uri::Kind::kTcp:
    case transport::Uri::Kind::kUnix: {
      GMEM_ASSIGN_OR_RETURN(UniqueFd fd, ConnectWithRetry(uri, timeout_ms));
      return MakeEndpoint(std::move(fd), uri, true);
    }
    case transport::Uri::Kind::kFd: {
      GMEM_ASSIGN_OR_RETURN(UniqueFd fd, DupFd(uri.fd));
      if (IsStreamSocket(fd.get())) return MakeEndpoint(std::move(fd), uri, true);
      return MakeFileEndpoint(std::move(fd), uri, /*writing=*/true);
    }
    case transport::Uri::Kind::kFile: {
      UniqueFd fd(::open(uri.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd.valid()) return ErrnoStatus(Code::kIo, "create '" + uri.path + "'");
      return MakeFileEndpoint(std::move(fd), uri, /*writing=*/true);
    }
  }
  return InvalidArgument("unknown endpoint kind");
}

Expected<transport::SessionId> EstablishSession(Endpoint& endpoint, const SecretBytes& key, bool insecure,
                                                transport::HandshakeOptions::Role role, uint16_t channel,
                                                uint16_t channel_count, const transport::SessionId& session) {
  if (!endpoint.interactive) {
    transport::SessionId id{};
    GMEM_RETURN_IF_ERROR(format::RandomFill(id));
    return id;
  }
  transport::HandshakeOptions options;
  options.role = role;
  options.insecure = insecure;
  options.channel = channel;
  options.channel_count = channel_count;
  options.session_id = session;
  GMEM_ASSIGN_OR_RETURN(transport::HandshakeResult result,
                        transport::Handshake(*endpoint.channel, *endpoint.channel, key, options));
  return result.session_id;
}

namespace {

// The channel count of the initiator's HELLO, peeked before the handshake reads it
// (docs/transport.md: magic 8, version 2, flags 2, channel 2, channel_count 2). The responder
// must name the count the initiator uses, and recv has no --channels flag: the target learns it.
Expected<uint16_t> PeekChannelCount(int fd) {
  uint8_t hello[16];
  ssize_t n;
  do {
    n = ::recv(fd, hello, sizeof(hello), MSG_PEEK | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(Code::kIo, "reading the handshake");
  if (n < static_cast<ssize_t>(sizeof(hello))) {
    return Status(Code::kPeerAborted, "the source hung up during the handshake");
  }
  uint16_t count = static_cast<uint16_t>(hello[14] | (hello[15] << 8));
  if (count == 0 || count > kMaxChannels) {
    return ProtocolError("the source asks for " + std::to_string(count) + " channels");
  }
  return count;
}

Expected<Endpoint> OpenSingleTargetEndpoint(const transport::Uri& uri) {
  if (uri.kind == transport::Uri::Kind::kFd) {
    GMEM_ASSIGN_OR_RETURN(UniqueFd fd, DupFd(uri.fd));
    if (IsStreamSocket(fd.get())) return MakeEndpoint(std::move(fd), uri, true);
    return MakeFileEndpoint(std::move(fd), uri, /*writing=*/false);
  }
  UniqueFd fd(::open(uri.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "open '" + uri.path + "'");
  return MakeFileEndpoint(std::move(fd), uri, /*writing=*/false);
}

}  // namespace

Expected<TargetChannels> AcceptTargetChannels(const transport::Uri& uri, int timeout_ms, const SecretBytes& key,
                                              bool insecure) {
  using Role = transport::HandshakeOptions::Role;
  TargetChannels out;
  bool listening_fd = uri.kind == transport::Uri::Kind::kFd && IsListeningSocket(uri.fd);
  if ((uri.kind == transport::Uri::Kind::kFd && !listening_fd) || uri.kind == transport::Uri::Kind::kFile) {
    GMEM_ASSIGN_OR_RETURN(Endpoint endpoint, OpenSingleTargetEndpoint(uri));
    GMEM_ASSIGN_OR_RETURN(out.session, EstablishSession(endpoint, key, insecure, Role::kResponder));
    out.endpoints.push_back(std::move(endpoint));
    return out;
  }
  GMEM_ASSIGN_OR_RETURN(transport::Listener listener, listening_fd ? transport::Listener::Adopt(uri.fd)
                                                      : uri.kind == transport::Uri::Kind::kTcp
                                                          ? transport::Listener::Tcp(uri.host, uri.port)
                                                          : transport::Listener::Unix(uri.path));
  GMEM_ASSIGN_OR_RETURN(UniqueFd first, listener.Accept(timeout_ms));
  GMEM_ASSIGN_OR_RETURN(uint16_t count, PeekChannelCount(first.get()));
  out.endpoints.push_back(MakeEndpoint(std::move(first), uri, true));
  GMEM_ASSIGN_OR_RETURN(out.session, EstablishSession(out.endpoints[0], key, insecure, Role::kResponder, 0, count));
  for (uint16_t channel = 1; channel < count; ++channel) {
    // The source opens channel k + 1 only after channel k's handshake: they arrive in order.
    GMEM_ASSIGN_OR_RETURN(UniqueFd fd, listener.Accept(30000));
    out.endpoints.push_back(MakeEndpoint(std::move(fd), uri, true));
    GMEM_RETURN_IF_ERROR(EstablishSession(out.endpoints.back(), key, insecure, Role::kResponder, channel, count,
                                          out.session)
                             .status()
                             .WithContext("channel " + std::to_string(channel)));
  }
  return out;
}

}  // namespace gmem::migrate
