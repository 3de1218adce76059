#pragma once
// Key agreement between two agents through untrusted hosts, and the sealing key for snapshots
// (docs/agent-protocol.md §5). OpenSSL EVP stays in the .cc files.
//
// Transport (live migration): each agent makes an X25519 key pair per session and publishes its
// public half in a Share signed with the platform key; the hosts relay the shares. The importer's
// share also carries the SHA-256 of the exporter's share (peer_digest), binding the pair. Both
// agents derive
//
//   transport key = HKDF-SHA256(ikm = X25519(own private, peer public), salt = session_id,
//                               info = "gmemkit-agent-v1 transport key" || SHA-256(export share)
//                                      || SHA-256(import share))
//
// A host that substitutes a share of its own cannot sign it: the peer rejects it (kAuth).
//
// Sealed (snapshots, file streams): no peer. The agent derives
//
//   sealing root = HKDF-SHA256(ikm = platform sealing secret, salt = measurement,
//                              info = "gmemkit-agent-v1 sealing root")
//   sealing key  = HKDF-SHA256(ikm = sealing root, salt = agent salt (32 random bytes),
//                              info = "gmemkit-agent-v1 sealing key" || session_id || epoch (u32 LE))
//
// and publishes a descriptor (a Share with mode SEALED, key_material = the agent salt, key_check =
// HKDF(sealing key, info = "gmemkit-agent-v1 key check" || share[0..143])). An agent restoring
// the snapshot derives the same key only on the same platform (same secret) for the same guest
// identity (same measurement), and can say which of the two differs.

#include <array>
#include <cstdint>
#include <memory>

#include "agent/platform_key.h"
#include "agent/wire.h"
#include "base/bytes.h"
#include "base/expected.h"
#include "base/secret.h"

struct evp_pkey_st;

namespace gmem::agent {

using Key32 = std::array<std::byte, 32>;

// §5.2 The share (240 bytes on the wire).
struct Share {
  uint16_t minor = kVersionMinor;
  Role role = Role::kInvalid;
  Mode mode = Mode::kInvalid;
  uint32_t epoch = 0;         // the export session's epoch (an importer's share repeats it)
  SessionId session_id{};
  Measurement measurement{};  // the agent's guest identity
  Key32 key_material{};       // TRANSPORT: X25519 public key; SEALED: the agent salt
  Key32 peer_digest{};        // TRANSPORT IMPORT: SHA-256 of the export share; otherwise zero
  Key32 key_check{};          // SEALED: the key check value; otherwise zero
  Signature signature{};      // Ed25519 over share[0..175] with the platform key
};

Bytes EncodeShare(const Share& share);
// Strict: magic, major version, known role/mode, zero reserved, exactly kShareBytes.
Expected<Share> DecodeShare(ByteSpan bytes);
Key32 ShareDigest(ByteSpan share_bytes);

// Fills share.signature over the share's first kShareSignedBytes.
Status SignShare(Share& share, const PlatformKey& key);
// kAuth unless `share` carries `key`'s signature.
Status VerifyShare(const Share& share, const PlatformKey& key);

// An ephemeral X25519 key pair. Move-only; OpenSSL wipes the private key when it is freed.
class X25519Key {
 public:
  static Expected<X25519Key> Generate();
  X25519Key(X25519Key&&) noexcept;
  X25519Key& operator=(X25519Key&&) noexcept;
  ~X25519Key();

  const Key32& public_key() const { return public_key_; }
  // The shared secret with `peer_public`. kAuth for a low-order peer key (all-zero result).
  Expected<SecretBytes> Agree(const Key32& peer_public) const;

 private:
  struct Deleter { void operator()(evp_pkey_st* key) const; };
  X25519Key(std::unique_ptr<evp_pkey_st, Deleter> key, Key32 pub) : key_(std::move(key)), public_key_(pub) {}
  std::unique_ptr<evp_pkey_st, Deleter> key_;
  Key32 public_key_{};
};

Expected<SecretBytes> DeriveTransportKey(const SecretBytes& shared_secret, const SessionId& session_id,
                                         ByteSpan export_share, ByteSpan import_share);
Expected<SecretBytes> DeriveSealingKey(const PlatformKey& platform, const Measurement& measurement,
                                       const Key32& agent_salt, const SessionId& session_id, uint32_t epoch);
// key_check of a sealing descriptor: over share[0..kShareCheckedBytes).
Expected<Key32> SealingKeyCheck(const SecretBytes& key, ByteSpan share_prefix);
// A public name of a key (first 8 bytes of HKDF(key, info "gmemkit-agent-v1 key id"), LE): hosts
// compare the two agents' key ids to see that the agreement succeeded, without learning the key.
Expected<uint64_t> KeyId(const SecretBytes& key);

// A launch measurement: SHA-256 of `label`, then each part as (u64 LE length, bytes). The emulated
// platform measures the guest program and its identity fields with it (§5.3).
Measurement MeasurementOf(std::string_view label, std::initializer_list<ByteSpan> parts);

}  // namespace gmem::agent
