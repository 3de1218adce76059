#pragma once
// Agent: the guest side of the agent protocol (docs/agent-protocol.md) — what runs inside the
// confidential guest (an SVSM service, a migration TD) and, on this host, inside gmem-vmm as the
// emulated SNP agent. It sees the host only through the shared agent area: it copies each request
// out of the mailbox, serves it against its GuestPlatform, writes blobs or dirty lists to the
// bounce buffer and the response to the response page.
//
// Session state machine (§4):
//
//            HELLO(export, transport)            PEER(import share)
//   IDLE ------------------------------> AWAIT_PEER -----------------> READY (export)
//     |  HELLO(export, sealed) ---------------------------------------> READY (export)
//     |  HELLO(import, *, exporter share) ----------------------------> READY (import)
//     |                                                                   |
//     |                                                          FINISH (§4.7) |
//     |                                                                   v
//     |                                                                FINISHED: only HELLO/ABORT
//     |  a security failure (bad signature, tag, epoch, gfn, replay, an incomplete import) --> FAILED
//   ABORT or a new HELLO from any state wipes the session and starts again.
//
// Thread-compatible: one Serve at a time (the doorbell serialises them).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "agent/blob.h"
#include "agent/guest_platform.h"
#include "agent/key_agreement.h"
#include "agent/messages.h"
#include "agent/platform_key.h"
#include "base/secret.h"

namespace gmem::agent {

// The shared agent area as the agent sees it (views into shared guest memory).
struct SharedArea {
  MutableByteSpan request;   // kMailboxPageBytes
  MutableByteSpan response;  // kMailboxPageBytes
  MutableByteSpan bounce;    // kBounceBytes
};

struct AgentCounters {
  uint64_t requests = 0;
  uint64_t pages_exported = 0;
  uint64_t pages_imported = 0;
  uint64_t failures = 0;  // responses with a status other than OK
};

class Agent {
 public:
  // `platform_key` may be null: the agent then answers HELLO with NOT_PROVISIONED.
  // `measurement` is the guest's identity (§5.3). The pages of the agent area (§2) are never
  // exported or imported.
  Agent(std::shared_ptr<const PlatformKey> platform_key, const Measurement& measurement);

  // Serves the request in `area.request` and writes the response page. Never fails as a call:
  // every error is a response status (and its text).
  void Serve(GuestPlatform& platform, const SharedArea& area);

  const Measurement& measurement() const { return measurement_; }
  const AgentCounters& counters() const { return counters_; }
  // The highest epoch this agent exported or imported.
  uint32_t epoch() const { return epoch_; }

 private:
  enum class State : uint8_t { kIdle, kAwaitPeer, kReady, kFinished, kFailed };
  struct Reply {
    AgentStatus status = AgentStatus::kOk;
    uint32_t detail = 0;
    Bytes body;  // the message's response body, or the error body
  };
  struct Session {
    State state = State::kIdle;
    Role role = Role::kInvalid;
    Mode mode = Mode::kInvalid;
    SessionId session_id{};
    uint32_t epoch = 0;
    Bytes own_share;
    std::optional<X25519Key> ephemeral;
    std::optional<BlobCipher> cipher;
    uint64_t key_id = 0;
    uint64_t next_sequence = 1;                         // export
    std::unordered_map<uint64_t, uint64_t> last_export;  // export: gfn -> sequence of its last blob
    std::unordered_map<uint64_t, uint64_t> last_import;  // import: gfn -> last sequence
    uint64_t max_import_sequence = 0;                   // import: the highest sequence imported
  };
  // What a manifest says about the private pages here (§6.1), each with its sequence in a
  // last_export or last_import map.
  struct PrivateSummary {
    uint64_t count = 0;          // private pages (GfnAllowed and IsPrivate)
    ManifestDigest digest{};     // over those that have a sequence
    std::optional<uint64_t> first_missing;  // the first private page without one
  };

  static Reply Error(AgentStatus status, std::string text, uint32_t detail = 0);
  // An error that also ends the session (State::kFailed).
  Reply Fail(AgentStatus status, std::string text, uint32_t detail = 0);
  Reply Dispatch(GuestPlatform& platform, const RequestHeader& header, ByteSpan body, const SharedArea& area);
  Reply Hello(GuestPlatform& platform, ByteSpan body);
  Reply HelloExport(const HelloRequest& request);
  Reply HelloImport(const HelloRequest& request);
  Reply Peer(ByteSpan body);
  Reply Export(GuestPlatform& platform, ByteSpan body, const SharedArea& area);
  Reply Import(GuestPlatform& platform, ByteSpan body, const SharedArea& area);
  Reply Dirty(GuestPlatform& platform, ByteSpan body, const SharedArea& area);
  Reply Abort(ByteSpan body);
  Reply Finish(GuestPlatform& platform, ByteSpan body, const SharedArea& area);
  Reply FinishExport(GuestPlatform& platform, const FinishRequest& request, const SharedArea& area);
  Reply FinishImport(GuestPlatform& platform, const FinishRequest& request, const SharedArea& area);
  // FINISH(export) with a tracking platform: BAD_STATE naming a private page that changed since
  // its last export (or was never exported); an OK Reply when there is none.
  Reply CheckNothingDirty(GuestPlatform& platform);
  Expected<PrivateSummary> SummarisePrivatePages(const GuestPlatform& platform,
                                                 const std::unordered_map<uint64_t, uint64_t>& last) const;
  // Checks a peer's share: signature, session, identity. `role`: the role the peer must have.
  Reply CheckPeerShare(const Share& share, Role role, Mode mode, const SessionId& session_id);
  Status SetKey(const SecretBytes& key);
  // True when `gfn` is guest RAM outside the agent area (else OUT_OF_RANGE).
  bool GfnAllowed(const GuestPlatform& platform, uint64_t gfn) const;
  void Reset();

  std::shared_ptr<const PlatformKey> platform_key_;
  const Measurement measurement_;
  uint32_t epoch_ = 0;
  Session session_;
  AgentCounters counters_;
  SecretBytes scratch_;  // kMaxPagesPerRequest pages + one blob: plaintext never leaves it
};

}  // namespace gmem::agent
