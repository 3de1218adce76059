#include "agent/doorbell.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

namespace gmem::agent {
namespace {

constexpr size_t kMaxReplyBytes = 1 << 20;

Expected<UniqueFd> ConnectOnce(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return InvalidArgument("control socket path too long: " + path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  // SAFETY: addr is a fully initialised sockaddr_un.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(Code::kIo, "connect to '" + path + "'");
  }
  return fd;
}

Code CodeFromName(const std::string& name) {
  for (Code c : {Code::kIo, Code::kCorrupt, Code::kAuth, Code::kIncompatible, Code::kProtocol, Code::kPeerAborted,
                 Code::kKvm, Code::kUnsupported, Code::kInvalidArgument, Code::kCancelled}) {
    if (CodeName(c) == name) return c;
  }
  return Code::kProtocol;
}

}  // namespace

Expected<VmmSocketDoorbell> VmmSocketDoorbell::Connect(const std::string& path, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto fd = ConnectOnce(path);
    if (fd.ok()) return VmmSocketDoorbell(std::move(fd).value());
    if (std::chrono::steady_clock::now() >= deadline) return std::move(fd).status().WithContext("agent doorbell");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status VmmSocketDoorbell::Ring() {
  const int64_t id = next_id_++;
  std::string line = "{\"id\":" + std::to_string(id) + ",\"cmd\":\"agent-doorbell\"}\n";
  for (size_t sent = 0; sent < line.size();) {
    ssize_t n = ::send(fd_.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(Code::kIo, "agent doorbell: send");
    sent += static_cast<size_t>(n);
  }
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string reply_line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      auto reply = nlohmann::json::parse(reply_line, nullptr, /*allow_exceptions=*/false);
      if (reply.is_discarded() || !reply.is_object()) return ProtocolError("agent doorbell: the VMM's reply is not JSON");
      if (!reply.contains("id") || reply["id"] != id) return ProtocolError("agent doorbell: reply to another request");
      if (reply.value("ok", false)) return Status::Ok();
      return Status(CodeFromName(reply.value("code", std::string("protocol"))),
                    "agent doorbell: " + reply.value("error", std::string("refused")));
    }
    if (buffer_.size() > kMaxReplyBytes) return ProtocolError("agent doorbell: the VMM's reply is too long");
    char chunk[4096];
    ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(Code::kIo, "agent doorbell: recv");
    if (n == 0) return Status(Code::kIo, "agent doorbell: the VMM closed the control socket");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace gmem::agent
