#pragma once
// The 192-byte image header (FORMAT.md §2) as a value, and its byte codec. Decoding checks the
// structure only (magic, version, enums, reserved bytes, cost bounds); authenticating the header
// is the key wrap's job (stream_keys.h).

#include <cstdint>

#include "base/bytes.h"
#include "base/expected.h"
#include "format/wire.h"

namespace gmem::format {

struct ImageHeader {
  uint16_t version_major = kVersionMajor;
  uint16_t version_minor = kVersionMinor;
  Cipher cipher = Cipher::kAes256Gcm;
  Compression compression = Compression::kZstd;
  KeyWrap key_wrap = KeyWrap::kKeyFile;
  uint8_t flags = 0;
  uint16_t channel_count = 1;
  StreamId stream_id{};
  StreamId parent_stream_id{};
  Digest parent_digest{};
  std::array<std::byte, kSaltSize> kdf_salt{};
  uint8_t scrypt_log2_n = 0;
  uint32_t scrypt_r = 0;
  uint32_t scrypt_p = 0;
  std::array<std::byte, kKeyIdSize> key_id{};
  std::array<std::byte, kGcmNonceSize> wrap_nonce{};
  std::array<std::byte, kDataKeySize> wrapped_key{};
  Tag header_tag{};

  bool has_parent() const { return (flags & kHeaderFlagHasParent) != 0; }
  bool operator==(const ImageHeader&) const = default;
};

// Always kHeaderSize bytes.
Bytes EncodeHeader(const ImageHeader& header);
// REQUIRES: bytes.size() == kHeaderSize.
Expected<ImageHeader> DecodeHeader(ByteSpan bytes);

}  // namespace gmem::format
