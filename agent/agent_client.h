#pragma once
// AgentClient: the host side of the agent protocol (docs/agent-protocol.md). It writes requests
// into the mailbox and reads responses and blobs from the bounce buffer through the host's own
// mapping of the guest memory that holds the agent area (shared pages: readable by the host),
// and rings the doorbell. Blob bytes move only through that mapping.
//
// The client treats blobs as opaque: it copies them out of the bounce buffer (for a PRIVATE
// record) and into it (from one). It never sees private plaintext.
//
// Thread-compatible: one client per agent, one thread at a time (the mailbox holds one request).

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "agent/doorbell.h"
#include "agent/messages.h"
#include "agent/wire.h"
#include "base/bytes.h"
#include "base/expected.h"
#include "memory/guest_memfd_mapping.h"
#include "memory/layout.h"

namespace gmem::agent {

struct AgentClientStats {
  uint64_t round_trips = 0;       // doorbells rung
  uint64_t pages_exported = 0;
  uint64_t pages_imported = 0;
  uint64_t blob_bytes = 0;        // copied out of / into the bounce buffer
  std::chrono::nanoseconds agent_time{0};  // from writing a request to reading its response
};

struct ExportedBlob {
  uint64_t gfn = 0;
  Bytes blob;
};

struct ExportResult {
  std::vector<ExportedBlob> blobs;  // in request order
  // Pages the agent did not export because they are not private (any more): the guest converted
  // them since the host read the attributes. They are shared now: send them as pages.
  std::vector<uint64_t> not_private;
};

struct ImportBlob {
  uint64_t gfn = 0;  // the page the host expects the blob to restore
  ByteSpan blob;
};

struct DirtyReport {
  bool all = false;            // the agent cannot track: treat every private page as dirty
  std::vector<uint64_t> gfns;  // ascending; empty with `all`
};

struct FinishResult {
  uint32_t count = 0;      // the private pages the manifest covers
  bool untracked = false;  // the exporting agent cannot track private writes: freshness unchecked
  Bytes manifest;          // export side only: the sealed manifest (kBlobBytes) for the importer
};

class AgentClient {
 public:
  // `area` is the host's view of the agent area (kAreaBytes, starting at GPA kAreaGpa).
  // REQUIRES: area and doorbell outlive the client; the area's pages are shared.
  static Expected<AgentClient> Create(MutableByteSpan area, Doorbell& doorbell);
  // The agent area inside `mapping`, the host's mapping of `region`'s guest_memfd. kInvalidArgument
  // unless the region holds all of [kAreaGpa, kAreaGpa + kAreaBytes).
  static Expected<AgentClient> ForMapping(const memory::GuestMemfdMapping& mapping, const memory::Region& region,
                                          Doorbell& doorbell);

  // §4.1: starts a session. Export: `peer_share` empty; the result carries the share to relay
  // (transport) or the sealing descriptor to store with the snapshot (sealed, key ready).
  // Import: `peer_share` is the exporter's share or the stored descriptor; the result carries the
  // importer's share to relay back (transport) and the key id.
  Expected<HelloResponse> Hello(Role role, Mode mode, const SessionId& session_id, ByteSpan peer_share = {});
  // §4.2: hands the exporter the importer's share; the result carries the key id.
  Expected<PeerResponse> Peer(ByteSpan importer_share);

  // §4.3: seals `gfns` (any number: split into requests of at most kMaxPagesPerRequest).
  Expected<ExportResult> Export(std::span<const uint64_t> gfns);
  // §4.4: imports `blobs` (split likewise). The first rejected blob fails the call (the agent has
  // then ended the session for security failures); blobs of earlier requests stay imported.
  Status Import(std::span<const ImportBlob> blobs);
  // §4.5: the private pages changed since their last export in this session (all requests).
  Expected<DirtyReport> Dirty();
  // §4.6
  Status Abort(uint32_t reason = kAbortByHost);

  // §4.7 export session: ends it; the manifest to hand to the importing agent. kProtocol
  // (BAD_STATE) while a private page is dirty since its last export or was never exported: export
  // it and call again. kUnsupported for an agent older than 1.1.
  Expected<FinishResult> Finish();
  // §4.7 import session: checks `manifest` against the pages imported here; kAuth-class error on
  // a mismatch (INCOMPLETE: a page's newest blob or a page was withheld) or a manifest of another
  // session; the session is then over and the guest must not run. Call it after the final
  // attributes are applied. kUnsupported for an agent older than 1.1.
  Expected<FinishResult> FinishImport(ByteSpan manifest);

  const AgentClientStats& stats() const { return stats_; }

 private:
  AgentClient(MutableByteSpan area, Doorbell& doorbell) : area_(area), doorbell_(&doorbell) {}
  MutableByteSpan request_page() const { return area_.subspan(kRequestOffset, kMailboxPageBytes); }
  MutableByteSpan response_page() const { return area_.subspan(kResponseOffset, kMailboxPageBytes); }
  MutableByteSpan bounce() const { return area_.subspan(kBounceOffset, kBounceBytes); }
  // Writes the request, rings, waits for the matching response; returns its body (a copy) or the
  // agent's error as a Status (code per §8, message "agent: TYPE: text (STATUS)").
  Expected<Bytes> Call(MessageType type, ByteSpan body);
  Status ExportBatch(std::span<const uint64_t> gfns, ExportResult& out);
  Status ImportBatch(std::span<const ImportBlob> blobs);
  // kUnsupported when the agent answered with a minor older than FINISH's.
  Status CheckAgentSpeaksFinish() const;

  MutableByteSpan area_;
  Doorbell* doorbell_;
  uint64_t next_request_id_ = 1;
  std::optional<uint16_t> agent_minor_;  // the agent's version, from its last response
  AgentClientStats stats_;
};

// The gmem Code a host uses for an agent status (§8).
Code CodeForAgentStatus(AgentStatus status);

}  // namespace gmem::agent
