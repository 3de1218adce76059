#pragma once
// A stream's sealed header and the keys it unlocks (FORMAT.md §2, §4): CreateStream() draws a
// data key and wraps it into a new header; OpenStream() authenticates a header read from an
// image and unwraps its data key. Every channel of a stream shares one StreamKeys.

#include <optional>

#include "base/bytes.h"
#include "base/expected.h"
#include "base/secret.h"
#include "format/image_header.h"
#include "format/keys.h"

namespace gmem::format {

struct StreamParams {
  Compression compression = Compression::kZstd;
  uint16_t channel_count = 1;
  // Drawn at random when not given (tests and golden images fix it).
  std::optional<StreamId> stream_id;
  // For an incremental snapshot: the parent's stream id and its channel-0 END digest.
  std::optional<std::pair<StreamId, Digest>> parent;
};

class StreamKeys {
 public:
  const ImageHeader& header() const { return header_; }
  ByteSpan header_bytes() const { return header_bytes_; }
  // H = SHA-256 of the header bytes, bound into every record.
  const Digest& header_digest() const { return header_digest_; }
  Cipher cipher() const { return header_.cipher; }
  // Empty for cipher NONE.
  const SecretBytes& data_key() const { return data_key_; }

 private:
  friend Expected<StreamKeys> CreateStream(const StreamParams&, const KeySource&);
  friend Expected<StreamKeys> OpenStream(ByteSpan, const KeySource&, bool);
  StreamKeys(ImageHeader header, Bytes header_bytes, SecretBytes data_key);

  ImageHeader header_;
  Bytes header_bytes_;
  Digest header_digest_;
  SecretBytes data_key_;
};

Expected<StreamKeys> CreateStream(const StreamParams& params, const KeySource& key);

// Authenticates `header_bytes` (kHeaderSize) with `key`. Cipher NONE images are refused with
// kIncompatible unless `allow_insecure`. A wrong key file or passphrase is kAuth.
Expected<StreamKeys> OpenStream(ByteSpan header_bytes, const KeySource& key, bool allow_insecure);

}  // namespace gmem::format
