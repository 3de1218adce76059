#pragma once
// What the migration engines take and report: options, per-pass counters, the final summary,
// and the event sink through which the tools show progress (libraries never print).

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "base/secret.h"
#include "format/wire.h"
#include "migrate/convergence.h"
#include "migrate/vmm_client.h"

namespace gmem::migrate {

// The shared secret both ends hold: the key file's 32 bytes, or none in insecure mode.
struct MigrationKey {
  SecretBytes key;        // empty when insecure
  bool insecure = false;  // --insecure-no-encryption: null cipher, handshake with a zero key
};

struct PassStats {
  uint32_t pass = 0;
  bool final = false;
  uint64_t dirty_pages = 0;  // pages the tracker reported for this pass
  uint64_t data_pages = 0;   // sent with contents
  uint64_t zero_pages = 0;   // sent as ZERO runs (later passes) or skipped (pass 1)
  uint64_t raw_bytes = 0;    // page bytes read from guest memory
  uint64_t wire_bytes = 0;   // bytes the channel carried in this pass
  uint64_t elapsed_us = 0;
};

struct MigrationStats {
  std::vector<PassStats> passes;
  uint64_t wire_bytes = 0;
  uint64_t data_pages = 0;
  uint64_t zero_pages = 0;
  uint64_t raw_bytes = 0;
  uint16_t channels = 1;
  uint64_t downtime_ms = 0;  // source pause to the target's resume (or to END without a peer)
  uint64_t total_ms = 0;
  bool pass_limit_hit = false;
  std::string stop_reason;            // why precopy ended: converged, pass-limit or stalled
  uint64_t estimated_downtime_ms = 0; // the policy's estimate when it stopped precopy
  bool acknowledged = false;  // the target confirmed (sockets); false for file:/fd: streams
  VmmDigest source_digest;    // the source VM at pause; empty unless verify_memory or file:/fd:
  double compression_ratio() const {
    return wire_bytes == 0 ? 0.0 : static_cast<double>(raw_bytes) / static_cast<double>(wire_bytes);
  }
};

// Progress events, called on the engine's thread. Default: ignore.
class MigrationEvents {
 public:
  virtual ~MigrationEvents() = default;
  virtual void OnStart(uint64_t total_pages) { (void)total_pages; }
  // Within a pass: `done` of `total` dirty pages handled so far.
  virtual void OnProgress(uint32_t pass, uint64_t done, uint64_t total, uint64_t wire_bytes) {
    (void)pass, (void)done, (void)total, (void)wire_bytes;
  }
  virtual void OnPass(const PassStats& pass) { (void)pass; }
  // Precopy ended (`reason`: converged, pass-limit, stalled); the final pass follows.
  virtual void OnSwitchover(uint64_t dirty_pages, uint64_t estimate_ms, const std::string& reason) {
    (void)dirty_pages, (void)estimate_ms, (void)reason;
  }
};

struct SourceOptions {
  std::string vmm_socket;
  int vmm_connect_timeout_ms = 10000;  // the VMM may still be starting
  std::string to_uri;
  // Connections (tcp:/unix:), each with its own compressing and sealing thread. file:/fd:
  // streams always use one.
  uint16_t channels = 2;
  format::Compression compression = format::Compression::kZstd;
  int zstd_level = 1;
  ConvergenceOptions convergence;
  uint64_t bandwidth_bytes_per_second = 0;  // 0: unlimited
  // Over a socket: also compare the VMMs' memory digests (the source's at pause, the target's
  // before READY). An end-to-end check of the whole pipeline, dirty tracking included; it costs
  // a hash of all guest memory on both sides inside the downtime. file:/fd: streams always carry
  // the source's digest (the reader of a snapshot has no other peer to ask).
  bool verify_memory = false;
  int connect_timeout_ms = 10000;
  // Set from a signal handler to cancel; checked between batches. May be null.
  const std::atomic<bool>* cancel = nullptr;
  MigrationEvents* events = nullptr;
};

struct TargetOptions {
  std::string vmm_socket;
  int vmm_connect_timeout_ms = 10000;
  std::string from_uri;
  int accept_timeout_ms = -1;
  // Time to wait for COMMIT after READY before declaring the outcome in doubt (-1: forever).
  int commit_timeout_ms = -1;
  // Refuse a live stream whose source does not offer the memory digest check
  // (SourceOptions::verify_memory).
  bool require_memory_check = false;
};

struct TargetResult {
  uint16_t channels = 1;
  uint64_t data_pages = 0;
  uint64_t zero_pages = 0;
  uint64_t records = 0;
  uint64_t wire_bytes = 0;
  VmmDigest digest;  // the target VM at resume (equals the source's at pause); empty if not compared
  bool resumed = false;
};

}  // namespace gmem::migrate
