#pragma once
// Keys that unlock an image (FORMAT.md §4): the key file's text form, and KeySource, which
// says how the key-encryption key is obtained (key file, passphrase, or none for debugging).

#include <cstdint>

#include "base/bytes.h"
#include "base/expected.h"
#include "base/secret.h"
#include "format/wire.h"

namespace gmem::format {

inline constexpr size_t kKeySize = 32;
inline constexpr std::string_view kKeyFilePrefix = "gmemkit-key-v1:";
// Prefix + 64 hex digits + newline.
inline constexpr size_t kKeyFileMaxBytes = 15 + 64 + 1;
// Passphrases longer than this are refused.
inline constexpr size_t kMaxPassphraseBytes = 1024;

// A fresh random 32-byte key.
Expected<SecretBytes> GenerateKey();
// The key file text: "gmemkit-key-v1:<64 hex>\n".
SecretBytes FormatKeyFile(const SecretBytes& key);
// Parses the key file text (case-insensitive hex, optional final newline, nothing else).
Expected<SecretBytes> ParseKeyFile(ByteSpan text);

struct ScryptCost {
  uint8_t log2_n = kDefaultScryptLog2N;
  uint32_t r = kDefaultScryptR;
  uint32_t p = kDefaultScryptP;
};

// What unlocks (or locks) a stream. Move-only: it holds the secret.
class KeySource {
 public:
  // REQUIRES: key.size() == kKeySize.
  static KeySource FromKey(SecretBytes key);
  // The cost applies when writing; readers take the cost from the header.
  static KeySource FromPassphrase(SecretBytes passphrase, ScryptCost cost = {});
  // No encryption (cipher NONE). Readers accept it only when allowed explicitly.
  static KeySource Insecure();

  KeyWrap wrap() const { return wrap_; }
  const SecretBytes& secret() const { return secret_; }
  const ScryptCost& cost() const { return cost_; }

  // key_id of a key file (§4.1). REQUIRES: wrap() == kKeyFile.
  Expected<std::array<std::byte, kKeyIdSize>> KeyId() const;
  // Derives the key-encryption key for `salt` (and, for passphrases, the given costs).
  Expected<SecretBytes> DeriveKek(ByteSpan salt, const ScryptCost& cost) const;

 private:
  KeySource(KeyWrap wrap, SecretBytes secret, ScryptCost cost)
      : wrap_(wrap), secret_(std::move(secret)), cost_(cost) {}
  KeyWrap wrap_;
  SecretBytes secret_;
  ScryptCost cost_;
};

}  // namespace gmem::format
