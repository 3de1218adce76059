#pragma once
// PlatformKey: what the platform gives an agent to prove who it is and to seal for itself
// (docs/agent-protocol.md §5.1). On SEV-SNP these are the attestation report (signed by the
// chip's VCEK) and MSG_KEY_REQ (a key derived from a chip secret and the guest's measurement).
// Emulated: one 32-byte platform secret, provisioned to every VMM of the "platform" as a file
// (`gmem-vmm run --platform-key FILE`), from which two keys are derived with HKDF-SHA256:
//
//   signing seed   = HKDF(secret, info "gmemkit-agent-v1 platform signing key")  -> Ed25519
//   sealing secret = HKDF(secret, info "gmemkit-agent-v1 platform sealing secret")
//
// The Ed25519 public key is the trust anchor a peer agent checks a share's signature against.
// Move-only; the secrets are wiped on destruction; nothing here prints or logs them.

#include <array>
#include <memory>
#include <string>

#include "agent/wire.h"
#include "base/bytes.h"
#include "base/expected.h"
#include "base/secret.h"

struct evp_pkey_st;

namespace gmem::agent {

using Signature = std::array<std::byte, kSignatureBytes>;
using PublicKey = std::array<std::byte, 32>;

// The platform key file: one line "gmemkit-platform-key-v1:<64 hex digits>" (final newline optional).
inline constexpr std::string_view kPlatformKeyPrefix = "gmemkit-platform-key-v1:";
inline constexpr size_t kPlatformSecretBytes = 32;
inline constexpr size_t kPlatformKeyFileMaxBytes = 24 + 64 + 1;

class PlatformKey {
 public:
  // REQUIRES: secret.size() == kPlatformSecretBytes (else kInvalidArgument).
  static Expected<PlatformKey> FromSecret(const SecretBytes& secret);
  // A fresh random platform secret.
  static Expected<PlatformKey> Generate();
  // Reads the key file (refused when group or others may read it, base/secret.h) or an fd.
  static Expected<PlatformKey> LoadFile(const std::string& path);
  static Expected<PlatformKey> LoadFd(int fd);
  // Parses the key file text. kCorrupt naming what is wrong (never echoing the text).
  static Expected<PlatformKey> Parse(ByteSpan text);

  PlatformKey(PlatformKey&&) noexcept;
  PlatformKey& operator=(PlatformKey&&) noexcept;
  ~PlatformKey();

  // The key file text, for `platform-keygen`.
  SecretBytes FileText() const;
  // Writes the key file with mode 0600 (base/secret.h WriteSecretFile).
  Status WriteFile(const std::string& path, bool overwrite) const;

  const PublicKey& public_key() const { return public_key_; }
  // Ed25519 signature of `message` with the platform signing key.
  Expected<Signature> Sign(ByteSpan message) const;
  // True when `signature` is this platform's signature of `message`.
  bool Verify(ByteSpan message, const Signature& signature) const;
  // The secret a sealing key is derived from (§5.4). Never leaves the agent.
  const SecretBytes& sealing_secret() const { return sealing_secret_; }

 private:
  struct Deleter { void operator()(evp_pkey_st* key) const; };
  PlatformKey(SecretBytes secret, SecretBytes sealing_secret, std::unique_ptr<evp_pkey_st, Deleter> signing,
              PublicKey public_key);

  SecretBytes secret_;
  SecretBytes sealing_secret_;
  std::unique_ptr<evp_pkey_st, Deleter> signing_;
  PublicKey public_key_{};
};

// Ed25519 verification against an arbitrary public key (tests, and hosts that pin a key).
bool VerifyEd25519(const PublicKey& public_key, ByteSpan message, const Signature& signature);

}  // namespace gmem::agent
