#pragma once
// What the migration engines take and report: options, per-pass counters, the final summary,
// and the event sink through which the tools show progress (libraries never print).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/secret.h"
#include "format/keys.h"
#include "format/wire.h"
#include "migrate/convergence.h"
#include "migrate/vmm_control.h"

namespace gmem::migrate {

// The shared secret both ends hold: the key file's 32 bytes, or none in insecure mode. A
// passphrase instead of a key protects file:/fd: streams (snapshots) only: a live migration's
// handshake needs the key file.
struct MigrationKey {
  SecretBytes key;        // empty when insecure or with a passphrase
  SecretBytes passphrase; // non-empty: the stream's data key is wrapped by scrypt(passphrase)
  bool insecure = false;  // --insecure-no-encryption: null cipher, handshake with a zero key
};

// How the image format's header wraps the stream's data key for `key`.
format::KeySource StreamKeySource(const MigrationKey& key);

struct PassStats {
  uint32_t pass = 0;
  bool final = false;
  uint64_t dirty_pages = 0;  // pages the tracker reported for this pass
  uint64_t data_pages = 0;   // sent with contents
  uint64_t zero_pages = 0;   // sent as ZERO runs (later passes) or skipped (pass 1)
  uint64_t unchanged_pages = 0;  // incremental pass 1: equal to the parent's, not sent
  uint64_t private_pages = 0;    // exported by the guest's agent (sealed blobs)
  uint64_t raw_bytes = 0;    // page bytes read from guest memory
  uint64_t wire_bytes = 0;   // bytes the channel carried in this pass
  uint64_t windows = 0;      // windows of pages whose residency the sender read (kWindowPages)
  uint64_t window_us = 0;    // time those reads took
  uint64_t elapsed_us = 0;
  // The convergence policy's downtime estimate for this pass's dirty set, had it been the last
  // (precopy passes; 0 in the final pass).
  uint64_t estimated_downtime_ms = 0;
};

struct MigrationStats {
  std::vector<PassStats> passes;
  uint64_t wire_bytes = 0;
  uint64_t data_pages = 0;
  uint64_t zero_pages = 0;
  uint64_t unchanged_pages = 0;  // incremental: pages equal to the parent's, not sent
  uint64_t private_pages = 0;     // exported by the guest's agent as sealed blobs
  uint64_t agent_round_trips = 0; // doorbells rung on the source's agent
  uint64_t agent_ms = 0;          // time the source's agent took
  uint64_t raw_bytes = 0;
  uint64_t pages_records = 0;  // PAGES records written
  uint64_t zstd_records = 0;   // of them, those carrying a zstd frame
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

struct IncrementalBase;  // migrate/incremental.h

struct SourceOptions {
  std::string vmm_socket;
  int vmm_connect_timeout_ms = 10000;  // the VMM may still be starting
  // The VMM to drive instead of connecting to vmm_socket (not owned; must outlive Run()): how an
  // embedding VMM (the C API) hands itself over. Null: vmm_socket.
  VmmControl* vmm = nullptr;
  std::string to_uri;
  // Connections (tcp:/unix:), each with its own compressing and sealing thread. file:/fd:
  // streams always use one.
  uint16_t channels = 2;
  format::Compression compression = format::Compression::kZstd;
  int zstd_level = 1;
  // With kZstd: each channel decides per batch whether compressing pays, from the throughput it
  // measures (CompressionChoice; the tools' --compress auto).
  bool adaptive_compression = false;
  ConvergenceOptions convergence;
  uint64_t bandwidth_bytes_per_second = 0;  // 0: unlimited
  // Over a socket: also compare the VMMs' memory digests (the source's at pause, the target's
  // before READY). An end-to-end check of the whole pipeline, dirty tracking included; it costs
  // a hash of all guest memory on both sides inside the downtime. file:/fd: streams always carry
  // the source's digest (the reader of a snapshot has no other peer to ask).
  bool verify_memory = false;
  // file:/fd: streams: also store the hash of every page at pause (STATE "page-hashes/…"), so that
  // the image can be the parent of an incremental one. Costs one read of memory while paused.
  bool record_page_hashes = false;
  // An incremental stream (file:/fd: only): pass 1 sends only the pages whose hash differs from
  // the parent's table (zero pages as ZERO runs: the target starts from the parent's memory), and
  // the header names the parent. The VM's layout must equal the parent's.
  std::shared_ptr<const IncrementalBase> base;
  // What errors call the stream (default: the URI), e.g. the snapshot file behind an fd:N.
  std::string stream_name;
  int connect_timeout_ms = 10000;
  // Set from a signal handler to cancel; checked between batches. May be null.
  const std::atomic<bool>* cancel = nullptr;
  MigrationEvents* events = nullptr;
};

struct TargetOptions {
  std::string vmm_socket;
  int vmm_connect_timeout_ms = 10000;
  // The VMM to drive instead of connecting to vmm_socket (not owned; must outlive Run()): how an
  // embedding VMM (the C API) hands itself over. Null: vmm_socket.
  VmmControl* vmm = nullptr;
  std::string from_uri;
  // An incremental image's ancestors (file: or fd: URIs), oldest first: applied before from_uri,
  // each checked to be the parent of the next (stream id and END digest). The target resumes only
  // after the whole chain verified.
  std::vector<std::string> parents;
  std::string stream_name;  // what errors call from_uri's stream (default: the URI)
  int accept_timeout_ms = -1;
  // Time to wait for COMMIT after READY before declaring the outcome in doubt (-1: forever).
  int commit_timeout_ms = -1;
  // Refuse a live stream whose source does not offer the memory digest check
  // (SourceOptions::verify_memory).
  bool require_memory_check = false;
  // Leave the rebuilt VM paused instead of resuming it (like QEMU's -S): a live target still
  // answers COMMIT with RESUMED — it owns the guest — and whoever drives the VMM resumes it.
  bool resume = true;
  // Set from a signal handler to cancel before READY (then the incoming VM is discarded); checked
  // between records. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Raised for every record applied: a ProgressMonitor's `activity` (stall detection). May be null.
  std::atomic<uint64_t>* records_seen = nullptr;
};

struct TargetResult {
  uint16_t channels = 1;
  uint64_t data_pages = 0;
  uint64_t zero_pages = 0;
  uint64_t private_pages = 0;  // imported by this VM's agent
  uint64_t agent_round_trips = 0;  // doorbells rung on this VM's agent
  uint64_t agent_ms = 0;           // time this VM's agent took
  uint64_t records = 0;
  uint64_t wire_bytes = 0;
  VmmDigest digest;  // the target VM at resume (equals the source's at pause); empty if not compared
  bool resumed = false;  // false after success only with TargetOptions::resume = false
};

}  // namespace gmem::migrate
