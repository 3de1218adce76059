#include "tests/vmm/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace gmem::vmm::testing {

using nlohmann::json;

Expected<ControlClient> ControlClient::Connect(const std::string& path, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) == 0) return ControlClient(std::move(fd));
    if (std::chrono::steady_clock::now() > deadline) return ErrnoStatus(Code::kIo, "connect " + path);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Expected<json> ControlClient::ReadReply(std::vector<UniqueFd>* fds) {
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      try {
        return json::parse(line);
      } catch (const json::exception& e) {
        return CorruptError(std::string("reply is not JSON: ") + e.what() + ": " + line);
      }
    }
    char data[65536];
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 64)];
    struct iovec iov = {data, sizeof(data)};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(Code::kIo, "recvmsg");
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (fds != nullptr) fds->emplace_back(fd);
        else ::close(fd);
      }
    }
    if (n == 0) return Status(Code::kPeerAborted, "the VMM closed the control socket");
    buffer_.append(data, static_cast<size_t>(n));
  }
}

Expected<json> ControlClient::CallRaw(const std::string& line, std::vector<UniqueFd>* fds) {
  std::string out = line + "\n";
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(fd_.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(Code::kIo, "send");
    sent += static_cast<size_t>(n);
  }
  return ReadReply(fds);
}

Expected<json> ControlClient::Call(json request, std::vector<UniqueFd>* fds) {
  request["id"] = next_id_++;
  return CallRaw(request.dump(), fds);
}

Expected<json> ControlClient::Ok(json request, std::vector<UniqueFd>* fds) {
  std::string cmd = request.value("cmd", std::string("?"));
  GMEM_ASSIGN_OR_RETURN(json reply, Call(std::move(request), fds));
  if (!reply.value("ok", false)) return ProtocolError(cmd + ": " + reply.value("error", std::string("?")));
  return reply;
}

}  // namespace gmem::vmm::testing
