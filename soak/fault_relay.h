#pragma once
// FaultRelay: a TCP man in the middle that the soak runner puts between a migration's source and
// its target to inject what this kernel's missing netem would: latency, jitter, stalls and
// connection resets (docs/soak.md, "--faults net").
//
// It listens on an address, connects every accepted connection (a migration opens one per
// channel) to the real target, and forwards both directions on one thread per connection until
// the relay is destroyed. The listening socket and every outgoing connection are created inside a
// given network namespace, so the relay can stand on either host's side of a veth link.
//
// Delivery model: each direction of a connection is a FIFO of chunks as they were read, each with
// a deadline (read time + latency + jitter, never earlier than the previous chunk's, so order is
// kept). A chunk is written once its deadline has passed and no stall is in effect. At most
// kMaxQueuedBytes wait per direction; beyond that the relay stops reading and TCP's flow control
// pushes back on the sender.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/expected.h"
#include "transport/uri.h"

namespace gmem::soak {

// The faults a relay injects. Byte counts are source -> target bytes written to the target,
// summed over all connections since the relay started; -1 disables.
struct RelayFaults {
  // Every chunk is delivered no earlier than this long after it was read (both directions).
  int latency_ms = 0;
  // Plus a uniformly random 0..jitter_ms per chunk, drawn from a generator seeded with `seed` and
  // the connection's accept index, so a run with the same seed and connection order repeats.
  int jitter_ms = 0;
  uint64_t seed = 0;
  // Once this many bytes reached the target, a stall of stall_ms starts (once; SetFaults re-arms).
  int64_t stall_after_bytes = -1;
  int stall_ms = 0;
  // Once this many bytes reached the target, the relay resets: see ResetNow(). No more than this
  // many bytes are ever written to the target.
  int64_t reset_after_bytes = -1;
};

// Counters since the relay started. Thread-safe snapshots.
struct RelayStats {
  uint64_t bytes_to_target = 0;  // written to the target, all connections
  uint64_t bytes_to_source = 0;  // written back to the source, all connections
  uint64_t connections = 0;      // accepted, including those refused after a reset
  uint64_t failed_connects = 0;  // accepted connections whose target could not be reached
  uint64_t stalls = 0;           // Stall() calls plus scheduled stalls that started
  bool reset = false;            // a reset happened (ResetNow() or reset_after_bytes)
};

class FaultRelay {
 public:
  // Bytes that may wait in one direction of one connection before the relay stops reading.
  static constexpr size_t kMaxQueuedBytes = size_t{4} << 20;

  // Listens at `listen` (tcp:HOST:PORT; port 0 picks a free one, see port()) and forwards each
  // connection to `target` (tcp:HOST:PORT, HOST resolved now). `netns_fd` is an fd of
  // /proc/PID/ns/net, or -1 for the caller's namespace; it is borrowed for this call (the relay
  // keeps its own duplicate). Errors: kInvalidArgument for a bad URI or negative duration, kIo
  // (with errno) when the target does not resolve, the namespace cannot be entered, or the
  // address cannot be bound.
  static Expected<FaultRelay> Create(const transport::Uri& listen, const transport::Uri& target,
                                     const RelayFaults& faults, int netns_fd = -1);

  FaultRelay(FaultRelay&&) noexcept;
  // Stops the relay being replaced, as the destructor does.
  FaultRelay& operator=(FaultRelay&&) noexcept;
  FaultRelay(const FaultRelay&) = delete;
  FaultRelay& operator=(const FaultRelay&) = delete;
  // Stops accepting, closes every connection (both sides) and joins every thread; returns within
  // a few milliseconds whatever the connections are doing.
  ~FaultRelay();

  // All methods below are thread-safe. REQUIRES: *this was not moved from.

  // Where sources connect: "tcp:HOST:PORT" with the real port.
  std::string uri() const;
  uint16_t port() const;

  // Replaces the faults; latency and jitter apply to chunks read from now on, a new seed to
  // connections accepted from now on, and the scheduled stall is re-armed. kInvalidArgument (and
  // nothing changes) for a negative duration.
  Status SetFaults(const RelayFaults& faults);
  RelayFaults faults() const;

  // From now on nothing is written in either direction for `duration_ms` (extending a stall in
  // progress, never shortening it); connections stay open and reading continues up to
  // kMaxQueuedBytes. duration_ms <= 0 does nothing.
  void Stall(int duration_ms);

  // Closes both sides of every connection with a TCP reset (queued bytes are dropped) and from
  // now on resets every new connection right after accepting it. Idempotent.
  void ResetNow();
  // Arms a reset at the next chunk the target sends back (on any connection): before it is
  // forwarded (the source never sees it: a lost READY), right after it (what the source answers is
  // lost: COMMIT), or once the source's next chunk after it reached the target (the target's next
  // answer is lost: RESUMED). Thread-safe.
  enum class ReplyReset { kOff, kBeforeForwarding, kAfterForwarding, kAfterAnswer };
  void ResetOnNextReply(ReplyReset when);

  RelayStats stats() const;

 private:
  struct Impl;
  explicit FaultRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gmem::soak
