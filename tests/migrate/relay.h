#pragma once
// Relay: a man in the middle for fault and capture tests. Listens on a Unix socket or a TCP port,
// connects each accepted connection to the real target, and forwards both directions on a thread
// per connection — optionally flipping one byte of the source-to-target stream, cutting or holding
// the connections, or capturing every byte the source sent.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "transport/sockets.h"
#include "transport/uri.h"

namespace gmem::migrate::testing {

// Faults apply to every connection, counted per connection.
struct RelayFault {
  int64_t flip_offset = -1;  // flip bit 0 of the byte at this offset (source -> target)
  int64_t cut_after = -1;    // close both sides once this many bytes went source -> target
  // Close both sides when target -> source data would pass this many bytes (the handshake's
  // replies are 96 bytes, each switchover message without a reason 48).
  int64_t cut_reply_after = -1;
  // Swallow target -> source data beyond this many bytes, keeping both connections open: the
  // source waits for a reply that never comes.
  int64_t hold_reply_after = -1;
  // Append every source -> target byte of connection k to this file (k = 0) or to this file with
  // ".k" appended: a capture of what left the source, one file per connection.
  std::string capture_path = {};
};

class Relay {
 public:
  // Listens at Unix socket `listen_path` and forwards one connection to `target_path`.
  Relay(const std::string& listen_path, const std::string& target_path, RelayFault fault);
  // Listens at `listen` ("unix:PATH", or "tcp:HOST:0" for a free port: see uri()) and forwards up
  // to `connections` connections, in accept order, to `target` (unix: or tcp:).
  Relay(const transport::Uri& listen, const transport::Uri& target, RelayFault fault, int connections);
  ~Relay();
  // Bytes forwarded source -> target, all connections.
  uint64_t forwarded() const { return forwarded_.load(); }
  // Where the source connects (a tcp: listener's real port filled in).
  std::string uri() const;

 private:
  void Accept(int connections);
  void Forward(UniqueFd a, int index);

  transport::Uri listen_;
  transport::Uri target_;
  RelayFault fault_;
  std::optional<transport::Listener> listener_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> forwarded_{0};
  std::thread acceptor_;
  std::vector<std::thread> forwarders_;  // touched by acceptor_ only, until it is joined
};

}  // namespace gmem::migrate::testing
