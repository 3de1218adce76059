#pragma once
// The two-phase switchover (docs/migration.md, "Switchover"): small messages that follow the
// image stream on channel 0 of a socket, so that the guest can never run twice.
//
//   source                                   target
//   ... image stream, END ...            ->
//   DIGEST {digest:checksum at pause}    ->  (only with STATE "memory-check" = "digest";
//                                             computed while the target hashes its copy)
//                                        <-  READY   (verified, state applied, digests equal)
//                                            | or ABORT {reason}
//   COMMIT (never resumes after this)    ->
//                                        <-  RESUMED (the target's vCPUs run)
//
// Every message carries HMAC-SHA256(key, "gmemkit switchover" ‖ session id ‖ type ‖ reason),
// so a relay can neither forge a COMMIT nor turn an ABORT into a READY.

#include <atomic>
#include <cstdint>
#include <string>

#include "base/io.h"
#include "base/secret.h"
#include "transport/handshake.h"

namespace gmem::migrate {

enum class SwitchoverType : uint32_t {
  kInvalid = 0,
  kReady = 1,
  kAbort = 2,
  kCommit = 3,
  kResumed = 4,
  kDigest = 5,  // the source VM's "digest:checksum" at pause, in `reason`
  // Target -> source, while the stream flows: the target agent's key share and key id
  // (migrate/private_pages.h), in `reason`.
  kAgentShare = 6,
};

struct SwitchoverMessage {
  SwitchoverType type = SwitchoverType::kInvalid;
  std::string reason;  // kAbort and kDigest; at most kMaxAbortReason bytes
};

inline constexpr size_t kMaxAbortReason = 1024;

// The STATE entry by which a live source asks the target to compare memory digests (a DIGEST
// message follows END), and its one defined value.
inline constexpr char kMemoryCheckEntry[] = "memory-check";
inline constexpr char kMemoryCheckDigest[] = "digest";

// Waits until `fd` has something to read (or hung up), looking at `cancel` every 100 ms:
// kCancelled once it is set. `cancel` may be null (then it only waits).
Status WaitReadable(int fd, const std::atomic<bool>* cancel);

// Writes and reads switchover messages of one session. `key` is the key file's 32 bytes (all zero
// in insecure mode). REQUIRES: `key` outlives the link.
class SwitchoverLink {
 public:
  SwitchoverLink(ByteSink& out, ByteSource& in, const SecretBytes& key, const transport::SessionId& session)
      : out_(&out), in_(&in), key_(&key), session_(session) {}

  Status Send(const SwitchoverMessage& message);
  // The next message; kPeerAborted when the connection ended, kAuth on a bad MAC.
  Expected<SwitchoverMessage> Receive();
  // Receive, then anything but `expected` is an error: ABORT carries the peer's reason
  // (kPeerAborted), another type is kProtocol.
  Status Expect(SwitchoverType expected);

 private:
  Expected<std::array<std::byte, 32>> Mac(SwitchoverType type, const std::string& reason) const;

  ByteSink* out_;
  ByteSource* in_;
  const SecretBytes* key_;
  transport::SessionId session_;
};

std::string_view SwitchoverTypeName(SwitchoverType type);

}  // namespace gmem::migrate
