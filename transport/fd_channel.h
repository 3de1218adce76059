#pragma once
// FdChannel: a byte channel over one file descriptor (socket, pipe or file), as a ByteSink and
// a ByteSource. Reads and writes retry on EINTR and short transfers; a peer that hangs up is a
// kIo error that says so. Move-only; owns the fd.

#include "base/io.h"
#include "base/unique_fd.h"

namespace gmem::transport {

class FdChannel final : public ByteSink, public ByteSource {
 public:
  // `name` appears in error messages ("tcp:10.0.0.2:4444", "file:vm.img").
  FdChannel(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}

  Status Write(ByteSpan data) override;
  Expected<size_t> Read(MutableByteSpan out) override;

  // Half-closes a socket for writing, so the peer reads EOF (no-op on other fds).
  void ShutdownWrite();
  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  // Renames the channel for error messages (e.g. the file an inherited fd:N writes to).
  void set_name(std::string name) { name_ = std::move(name); }
  uint64_t bytes_written() const { return bytes_written_; }
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  UniqueFd fd_;
  std::string name_;
  uint64_t bytes_written_ = 0;
  uint64_t bytes_read_ = 0;
};

// Opens an existing file for reading as a channel named "file:PATH".
Expected<FdChannel> OpenFileForRead(const std::string& path);

}  // namespace gmem::transport
