#pragma once
// The cryptographic primitives the image format uses, over OpenSSL EVP (FORMAT.md §3.1, §4).
// OpenSSL stays inside format/*.cc; these signatures speak our types.

#include <cstdint>
#include <memory>

#include "base/bytes.h"
#include "base/expected.h"
#include "base/secret.h"
#include "format/wire.h"

struct evp_cipher_ctx_st;
struct evp_md_ctx_st;

namespace gmem::format {

// Fills `out` from the OS's CSPRNG (RAND_bytes).
Status RandomFill(MutableByteSpan out);

Digest Sha256(ByteSpan data);

// HKDF-SHA256 (RFC 5869) into `out`.
Status HkdfSha256(ByteSpan ikm, ByteSpan salt, std::string_view info, MutableByteSpan out);

// scrypt (RFC 7914) into `out`.
Status Scrypt(ByteSpan passphrase, ByteSpan salt, uint8_t log2_n, uint32_t r, uint32_t p,
              MutableByteSpan out);

// XXH3-128 of the concatenation of `parts`, in canonical (big-endian) byte order.
Tag Xxh3Tag(std::initializer_list<ByteSpan> parts);

// Incremental SHA-256.
class Sha256Stream {
 public:
  static Expected<Sha256Stream> Create();
  Sha256Stream(Sha256Stream&&) noexcept;
  Sha256Stream& operator=(Sha256Stream&&) noexcept;
  ~Sha256Stream();
  void Update(ByteSpan data);
  // Digest of everything so far; the stream can keep going.
  Digest Peek() const;

 private:
  struct Deleter { void operator()(evp_md_ctx_st* ctx) const; };
  explicit Sha256Stream(std::unique_ptr<evp_md_ctx_st, Deleter> ctx);
  std::unique_ptr<evp_md_ctx_st, Deleter> ctx_;
};

// AES-256-GCM with one key and a fresh 12-byte nonce per call; AAD given in parts. Holds its
// EVP context and key schedule: create once per stream and direction, use from one thread.
class Aes256Gcm {
 public:
  // REQUIRES: key.size() == 32.
  static Expected<Aes256Gcm> Create(ByteSpan key);
  Aes256Gcm(Aes256Gcm&&) noexcept;
  Aes256Gcm& operator=(Aes256Gcm&&) noexcept;
  ~Aes256Gcm();

  // Encrypts `data` in place and writes the tag. With `fill`, data[fill_at, end) is not read:
  // it is encrypted from the `fill` spans (together exactly that long) as they are gathered, so
  // pages are read once on their way into the record instead of being copied first.
  Status Seal(ByteSpan nonce, std::initializer_list<ByteSpan> aad, MutableByteSpan data, Tag& tag,
              size_t fill_at = 0, std::span<const ByteSpan> fill = {});
  // Decrypts `data` in place; kAuth when the tag does not verify (then `data` is garbage).
  Status Open(ByteSpan nonce, std::initializer_list<ByteSpan> aad, MutableByteSpan data, const Tag& tag);

 private:
  struct Deleter { void operator()(evp_cipher_ctx_st* ctx) const; };
  Aes256Gcm(std::unique_ptr<evp_cipher_ctx_st, Deleter> enc, std::unique_ptr<evp_cipher_ctx_st, Deleter> dec);
  std::unique_ptr<evp_cipher_ctx_st, Deleter> enc_;
  std::unique_ptr<evp_cipher_ctx_st, Deleter> dec_;
};

}  // namespace gmem::format
