#pragma once
// Sealed private pages (docs/agent-protocol.md §6). A blob is
//
//   header (32 bytes) || AES-256-GCM ciphertext of the page (4096 bytes) || tag (16 bytes)
//
// with the whole header as AAD (so gfn, attribute, epoch and sequence are bound to the
// ciphertext) and nonce = epoch (u32 LE) || sequence (u64 LE). The exporting agent never reuses
// a sequence within an epoch of one key, so a nonce is never reused under a key.
//
// BlobCipher works on agent-private buffers only: Seal writes the blob into `out` and Open the
// plaintext into `page`; the agent copies a finished blob into the shared bounce buffer and
// copies a blob out of it before opening (no plaintext in shared memory, no double fetch).

#include <cstdint>

#include "agent/wire.h"
#include "base/bytes.h"
#include "base/expected.h"
#include "base/secret.h"
#include "format/crypto.h"

namespace gmem::agent {

struct BlobHeader {
  uint64_t gfn = 0;
  uint32_t epoch = 0;
  uint64_t sequence = 0;
  uint8_t attribute = kBlobAttrPrivate;
  bool operator==(const BlobHeader&) const = default;
};

// Writes the 32-byte header. REQUIRES: out.size() >= kBlobHeaderBytes.
void EncodeBlobHeader(const BlobHeader& header, MutableByteSpan out);
// Parses the header of `blob`, which must be exactly kBlobBytes long. kCorrupt naming what is
// wrong (length, magic, version, attribute, page size, reserved bytes).
Expected<BlobHeader> DecodeBlobHeader(ByteSpan blob);

class BlobCipher {
 public:
  // REQUIRES: key.size() == kKeyBytes.
  static Expected<BlobCipher> Create(const SecretBytes& key);

  // Seals `page` (kPageBytes) as `header` into `out` (kBlobBytes).
  Status Seal(const BlobHeader& header, ByteSpan page, MutableByteSpan out);
  // Opens `blob` (kBlobBytes) into `page` (kPageBytes) and returns its header. kCorrupt for a
  // malformed blob, kAuth when the tag does not verify (then `page` holds garbage: discard it).
  Expected<BlobHeader> Open(ByteSpan blob, MutableByteSpan page);

 private:
  explicit BlobCipher(format::Aes256Gcm aead) : aead_(std::move(aead)) {}
  format::Aes256Gcm aead_;
};

}  // namespace gmem::agent
