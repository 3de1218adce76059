#pragma once
// The channel handshake (docs/transport.md): before any stream bytes flow, both ends prove
// they hold the same key file, with fresh nonces from each side, and agree on a session id that
// binds every channel of one migration together. Nothing secret crosses the wire: each side
// sends an HMAC-SHA256 of the transcript under the shared key.
//
//   initiator (source)                       responder (target)
//   HELLO {flags, channel, nonce_i, sid} ->
//                                        <-  CHALLENGE {flags, nonce_r, mac_r}
//   PROOF {status, mac_i}                ->
//                                        <-  RESULT {status}
//
// A wrong key fails on both sides with a clear error; so does a mismatch of the insecure mode.

#include <array>
#include <cstdint>

#include "base/io.h"
#include "base/secret.h"

namespace gmem::transport {

inline constexpr size_t kSessionIdSize = 16;
using SessionId = std::array<std::byte, kSessionIdSize>;

struct HandshakeOptions {
  enum class Role { kInitiator, kResponder };
  Role role = Role::kInitiator;
  // --insecure-no-encryption: no key; both ends must say so.
  bool insecure = false;
  uint16_t channel = 0;
  uint16_t channel_count = 1;
  // For channel > 0: channel 0's session id (the initiator sends it, the responder checks it).
  SessionId session_id{};
};

struct HandshakeResult {
  SessionId session_id{};
};

// Runs one side of the handshake over `out`/`in` (the caller sets socket timeouts).
// REQUIRES: key.size() == 32 unless options.insecure.
Expected<HandshakeResult> Handshake(ByteSink& out, ByteSource& in, const SecretBytes& key,
                                    const HandshakeOptions& options);

}  // namespace gmem::transport
