#include "format/image_header.h"

#include <algorithm>
#include <string>

namespace gmem::format {
namespace {

template <size_t N>
void ReadArray(ByteReader& r, std::array<std::byte, N>& out, const char* what) {
  ByteSpan s = r.Raw(N, what);
  if (r.ok()) std::copy(s.begin(), s.end(), out.begin());
}

template <size_t N>
bool AllZero(const std::array<std::byte, N>& a) {
  return std::all_of(a.begin(), a.end(), [](std::byte b) { return b == std::byte{0}; });
}

std::string Num(uint64_t v) { return std::to_string(v); }

Status CheckKeyWrapFields(const ImageHeader& h) {
  bool is_none = h.cipher == Cipher::kNone;
  if (is_none != (h.key_wrap == KeyWrap::kNone)) {
    return CorruptError("key wrap " + Num(static_cast<uint8_t>(h.key_wrap)) + " does not fit cipher " +
                        Num(static_cast<uint8_t>(h.cipher)));
  }
  bool passphrase = h.key_wrap == KeyWrap::kPassphrase;
  if (passphrase) {
    if (h.scrypt_log2_n < kMinScryptLog2N || h.scrypt_log2_n > kMaxScryptLog2N || h.scrypt_r == 0 ||
        h.scrypt_r > kMaxScryptR || h.scrypt_p == 0 || h.scrypt_p > kMaxScryptP ||
        (uint64_t{128} * h.scrypt_r << h.scrypt_log2_n) > kMaxScryptMemoryBytes) {
      return CorruptError("scrypt costs out of bounds (log2 N " + Num(h.scrypt_log2_n) + ", r " +
                          Num(h.scrypt_r) + ", p " + Num(h.scrypt_p) + ")");
    }
  } else if (h.scrypt_log2_n != 0 || h.scrypt_r != 0 || h.scrypt_p != 0) {
    return CorruptError("scrypt costs set without a passphrase key wrap");
  }
  if (h.key_wrap != KeyWrap::kKeyFile && !AllZero(h.key_id)) return CorruptError("key id set without a key file");
  if (is_none && (!AllZero(h.kdf_salt) || !AllZero(h.wrap_nonce) || !AllZero(h.wrapped_key))) {
    return CorruptError("key wrap fields set in an unencrypted image");
  }
  return Status::Ok();
}

}  // namespace

Bytes EncodeHeader(const ImageHeader& h) {
  Bytes out;
  out.reserve(kHeaderSize);
  ByteWriter w(out);
  for (uint8_t c : kMagic) w.U8(c);
  w.U16(h.version_major);
  w.U16(h.version_minor);
  w.U32(static_cast<uint32_t>(kHeaderSize));
  w.U8(static_cast<uint8_t>(h.cipher));
  w.U8(static_cast<uint8_t>(h.compression));
  w.U8(static_cast<uint8_t>(h.key_wrap));
  w.U8(h.flags);
  w.U16(h.channel_count);
  w.Zeros(2);
  w.Raw(h.stream_id);
  w.Raw(h.parent_stream_id);
  w.Raw(h.parent_digest);
  w.Raw(h.kdf_salt);
  w.U8(h.scrypt_log2_n);
  w.Zeros(3);
  w.U32(h.scrypt_r);
  w.U32(h.scrypt_p);
  w.Raw(h.key_id);
  w.Zeros(8);
  w.Raw(h.wrap_nonce);
  w.Raw(h.wrapped_key);
  w.Raw(h.header_tag);
  return out;
}

Expected<ImageHeader> DecodeHeader(ByteSpan bytes) {
  if (bytes.size() != kHeaderSize) return CorruptError("header is " + Num(bytes.size()) + " bytes, expected 192");
  ByteReader r(bytes);
  ByteSpan magic = r.Raw(kMagic.size(), "magic");
  if (!std::equal(magic.begin(), magic.end(), kMagic.begin(),
                  [](std::byte a, uint8_t b) { return std::to_integer<uint8_t>(a) == b; })) {
    return CorruptError("not a gmemkit image (bad magic)");
  }
  ImageHeader h;
  h.version_major = r.U16("version_major");
  h.version_minor = r.U16("version_minor");
  uint32_t header_size = r.U32("header_size");
  if (h.version_major != kVersionMajor || h.version_minor > kVersionMinor) {
    return IncompatibleError("image format version " + Num(h.version_major) + "." + Num(h.version_minor) +
                             " is not supported (this build reads " + Num(kVersionMajor) + ".0 to " +
                             Num(kVersionMajor) + "." + Num(kVersionMinor) + ")");
  }
  if (header_size != kHeaderSize) return IncompatibleError("header size " + Num(header_size) + " is not 192");
  h.cipher = static_cast<Cipher>(r.U8("cipher"));
  h.compression = static_cast<Compression>(r.U8("compression"));
  h.key_wrap = static_cast<KeyWrap>(r.U8("key_wrap"));
  h.flags = r.U8("flags");
  h.channel_count = r.U16("channel_count");
  r.ZerosOk(2, "header reserved (22)");
  ReadArray(r, h.stream_id, "stream_id");
  ReadArray(r, h.parent_stream_id, "parent_stream_id");
  ReadArray(r, h.parent_digest, "parent_digest");
  ReadArray(r, h.kdf_salt, "kdf_salt");
  h.scrypt_log2_n = r.U8("scrypt_log2_n");
  r.ZerosOk(3, "header reserved (105)");
  h.scrypt_r = r.U32("scrypt_r");
  h.scrypt_p = r.U32("scrypt_p");
  ReadArray(r, h.key_id, "key_id");
  r.ZerosOk(8, "header reserved (124)");
  ReadArray(r, h.wrap_nonce, "wrap_nonce");
  ReadArray(r, h.wrapped_key, "wrapped_key");
  ReadArray(r, h.header_tag, "header_tag");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("header"));

  if (h.cipher != Cipher::kAes256Gcm && h.cipher != Cipher::kNone) {
    return IncompatibleError("unknown cipher id " + Num(static_cast<uint8_t>(h.cipher)));
  }
  if (h.compression != Compression::kNone && h.compression != Compression::kZstd) {
    return IncompatibleError("unknown compression id " + Num(static_cast<uint8_t>(h.compression)));
  }
  if (h.key_wrap != KeyWrap::kKeyFile && h.key_wrap != KeyWrap::kPassphrase && h.key_wrap != KeyWrap::kNone) {
    return IncompatibleError("unknown key wrap id " + Num(static_cast<uint8_t>(h.key_wrap)));
  }
  if ((h.flags & ~kHeaderKnownFlags) != 0) return CorruptError("header has unknown flags " + Num(h.flags));
  if (h.channel_count == 0 || h.channel_count > kMaxChannels) {
    return CorruptError("channel count " + Num(h.channel_count) + " is outside 1.." + Num(kMaxChannels));
  }
  if (!h.has_parent() && (!AllZero(h.parent_stream_id) || !AllZero(h.parent_digest))) {
    return CorruptError("parent fields set without the HAS_PARENT flag");
  }
  GMEM_RETURN_IF_ERROR(CheckKeyWrapFields(h));
  return h;
}

}  // namespace gmem::format
