#pragma once
// Relay: a man in the middle for fault tests. Listens on a Unix socket, connects each accepted
// connection to the real target, and forwards both directions on a thread — optionally flipping
// one byte of the source-to-target stream, or cutting both connections after some bytes.

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "base/unique_fd.h"

namespace gmem::migrate::testing {

struct RelayFault {
  int64_t flip_offset = -1;  // flip bit 0 of the byte at this offset (source -> target)
  int64_t cut_after = -1;    // close both sides once this many bytes went source -> target
  // Close both sides when target -> source data would pass this many bytes (the handshake's
  // replies are 96 bytes, each switchover message without a reason 48).
  int64_t cut_reply_after = -1;
  // Swallow target -> source data beyond this many bytes, keeping both connections open: the
  // source waits for a reply that never comes.
  int64_t hold_reply_after = -1;
  // Append every source -> target byte to this file (a capture of what left the source).
  std::string capture_path = {};
};

class Relay {
 public:
  // Listens at `listen_path` and forwards to `target_path`.
  Relay(const std::string& listen_path, const std::string& target_path, RelayFault fault);
  ~Relay();
  uint64_t forwarded() const { return forwarded_.load(); }

 private:
  void Run();

  std::string listen_path_;
  std::string target_path_;
  RelayFault fault_;
  UniqueFd listener_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> forwarded_{0};
  std::thread thread_;
};

}  // namespace gmem::migrate::testing
