#include "transport/fd_channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace gmem::transport {

Status FdChannel::Write(ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    // MSG_NOSIGNAL where the fd is a socket: a vanished peer is an error, not SIGPIPE.
    ssize_t n = send(fd_.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = write(fd_.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) {
        return Status(Code::kIo, name_ + ": connection closed by peer", errno);
      }
      return ErrnoStatus(Code::kIo, name_ + ": write failed");
    }
    done += static_cast<size_t>(n);
  }
  bytes_written_ += done;
  return Status::Ok();
}

Expected<size_t> FdChannel::Read(MutableByteSpan out) {
  while (true) {
    ssize_t n = read(fd_.get(), out.data(), out.size());
    if (n >= 0) {
      bytes_read_ += static_cast<size_t>(n);
      return static_cast<size_t>(n);
    }
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return Status(Code::kIo, name_ + ": connection reset by peer", errno);
    return ErrnoStatus(Code::kIo, name_ + ": read failed");
  }
}

void FdChannel::ShutdownWrite() { shutdown(fd_.get(), SHUT_WR); }

Expected<FdChannel> OpenFileForRead(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "cannot open '" + path + "'");
  return FdChannel(std::move(fd), "file:" + path);
}

}  // namespace gmem::transport
