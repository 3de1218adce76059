#include "format/stream_keys.h"

#include <algorithm>

#include "format/crypto.h"

namespace gmem::format {

StreamKeys::StreamKeys(ImageHeader header, Bytes header_bytes, SecretBytes data_key)
    : header_(header),
      header_bytes_(std::move(header_bytes)),
      header_digest_(Sha256(header_bytes_)),
      data_key_(std::move(data_key)) {}

Expected<StreamKeys> CreateStream(const StreamParams& params, const KeySource& key) {
  if (params.channel_count == 0 || params.channel_count > kMaxChannels) {
    return InvalidArgument("channel count must be 1.." + std::to_string(kMaxChannels));
  }
  if (params.compression != Compression::kNone && params.compression != Compression::kZstd) {
    return InvalidArgument("unknown compression");
  }
  ImageHeader h;
  h.compression = params.compression;
  h.channel_count = params.channel_count;
  h.key_wrap = key.wrap();
  h.cipher = key.wrap() == KeyWrap::kNone ? Cipher::kNone : Cipher::kAes256Gcm;
  if (params.stream_id) {
    h.stream_id = *params.stream_id;
  } else {
    GMEM_RETURN_IF_ERROR(RandomFill(h.stream_id));
  }
  if (params.parent) {
    h.flags |= kHeaderFlagHasParent;
    h.parent_stream_id = params.parent->first;
    h.parent_digest = params.parent->second;
  }

  if (h.cipher == Cipher::kNone) {
    Bytes bytes = EncodeHeader(h);
    h.header_tag = Xxh3Tag({ByteSpan(bytes).first(kHeaderTagOffset)});
    return StreamKeys(h, EncodeHeader(h), SecretBytes());
  }

  ScryptCost cost = key.cost();
  if (key.wrap() == KeyWrap::kPassphrase) {
    h.scrypt_log2_n = cost.log2_n;
    h.scrypt_r = cost.r;
    h.scrypt_p = cost.p;
  } else {
    GMEM_ASSIGN_OR_RETURN(h.key_id, key.KeyId());
  }
  GMEM_RETURN_IF_ERROR(RandomFill(h.kdf_salt));
  GMEM_RETURN_IF_ERROR(RandomFill(h.wrap_nonce));
  // Check the costs and fields exactly as a reader will.
  GMEM_RETURN_IF_ERROR(DecodeHeader(EncodeHeader(h)).status().WithContext("new header"));

  GMEM_ASSIGN_OR_RETURN(SecretBytes data_key, GenerateKey());
  GMEM_ASSIGN_OR_RETURN(SecretBytes kek, key.DeriveKek(h.kdf_salt, cost));
  GMEM_ASSIGN_OR_RETURN(Aes256Gcm gcm, Aes256Gcm::Create(kek.span()));
  Bytes aad = EncodeHeader(h);
  aad.resize(kHeaderWrapAadSize);
  std::copy(data_key.data(), data_key.data() + kDataKeySize, h.wrapped_key.begin());
  GMEM_RETURN_IF_ERROR(gcm.Seal(h.wrap_nonce, {aad}, h.wrapped_key, h.header_tag));
  return StreamKeys(h, EncodeHeader(h), std::move(data_key));
}

Expected<StreamKeys> OpenStream(ByteSpan header_bytes, const KeySource& key, bool allow_insecure) {
  GMEM_ASSIGN_OR_RETURN(ImageHeader h, DecodeHeader(header_bytes));
  Bytes bytes(header_bytes.begin(), header_bytes.end());

  if (h.cipher == Cipher::kNone) {
    if (!allow_insecure) {
      return IncompatibleError("image is not encrypted (written with --insecure-no-encryption); "
                               "reading it needs the same flag");
    }
    if (Xxh3Tag({ByteSpan(bytes).first(kHeaderTagOffset)}) != h.header_tag) {
      return CorruptError("header checksum mismatch (damaged header)");
    }
    return StreamKeys(h, std::move(bytes), SecretBytes());
  }

  if (key.wrap() == KeyWrap::kNone) {
    return AuthError("image is encrypted: a key file or passphrase is needed");
  }
  if (key.wrap() != h.key_wrap) {
    return AuthError(h.key_wrap == KeyWrap::kKeyFile ? "image was sealed with a key file, not a passphrase"
                                                      : "image was sealed with a passphrase, not a key file");
  }
  if (h.key_wrap == KeyWrap::kKeyFile) {
    GMEM_ASSIGN_OR_RETURN(auto id, key.KeyId());
    if (id != h.key_id) {
      return AuthError("wrong key: image was sealed with key id " + ToHex(h.key_id) + ", this key file has id " +
                       ToHex(id));
    }
  }
  ScryptCost cost{h.scrypt_log2_n, h.scrypt_r, h.scrypt_p};
  GMEM_ASSIGN_OR_RETURN(SecretBytes kek, key.DeriveKek(h.kdf_salt, cost));
  GMEM_ASSIGN_OR_RETURN(Aes256Gcm gcm, Aes256Gcm::Create(kek.span()));
  SecretBytes data_key = SecretBytes::CopyOf(h.wrapped_key);
  Status st = gcm.Open(h.wrap_nonce, {ByteSpan(bytes).first(kHeaderWrapAadSize)}, data_key.span(), h.header_tag);
  if (!st.ok()) {
    return AuthError(h.key_wrap == KeyWrap::kPassphrase ? "wrong passphrase or damaged header"
                                                         : "header authentication failed (damaged header)");
  }
  return StreamKeys(h, std::move(bytes), std::move(data_key));
}

}  // namespace gmem::format
