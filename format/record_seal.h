#pragma once
// The record frame (FORMAT.md §3) and its sealing (§3.1): nonce from (channel, sequence), AAD =
// frame ‖ H ‖ public part, AES-256-GCM or the NONE cipher's XXH3-128 checksum.

#include <array>
#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "base/expected.h"
#include "format/crypto.h"
#include "format/stream_keys.h"
#include "format/wire.h"

namespace gmem::format {

struct Frame {
  RecordType type = RecordType::kInvalid;
  uint16_t channel = 0;
  uint32_t public_length = 0;
  uint64_t sequence = 0;
  uint32_t sealed_length = 0;
};

using FrameBytes = std::array<std::byte, kFrameSize>;

FrameBytes EncodeFrame(const Frame& frame);
// Checks type, reserved bytes and the §7 length limits.
Expected<Frame> DecodeFrame(ByteSpan bytes);

class RecordSealer {
 public:
  // REQUIRES: `keys` outlives the sealer.
  static Expected<RecordSealer> Create(const StreamKeys& keys);

  // Encrypts `sealed` in place and returns the tag. With `fill`, sealed[fill_at, end) comes from
  // the `fill` spans (exactly that long), read once as they are sealed (Aes256Gcm::Seal).
  Expected<Tag> Seal(const Frame& frame, ByteSpan frame_bytes, ByteSpan public_part, MutableByteSpan sealed,
                     size_t fill_at = 0, std::span<const ByteSpan> fill = {});
  // Authenticates and decrypts `sealed` in place; kAuth on a bad tag.
  Status Open(const Frame& frame, ByteSpan frame_bytes, ByteSpan public_part, MutableByteSpan sealed,
              const Tag& tag);

 private:
  RecordSealer(const StreamKeys& keys, std::optional<Aes256Gcm> gcm) : keys_(&keys), gcm_(std::move(gcm)) {}
  const StreamKeys* keys_;
  std::optional<Aes256Gcm> gcm_;  // absent for cipher NONE
};

}  // namespace gmem::format
