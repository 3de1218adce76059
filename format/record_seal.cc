#include "format/record_seal.h"

#include <cstring>
#include <string>

namespace gmem::format {
namespace {

std::array<std::byte, kGcmNonceSize> Nonce(const Frame& frame) {
  std::array<std::byte, kGcmNonceSize> nonce{};
  StoreLe<uint32_t>(nonce.data(), frame.channel);
  StoreLe<uint64_t>(nonce.data() + 4, frame.sequence);
  return nonce;
}

bool KnownType(RecordType t) { return t >= RecordType::kLayout && t <= RecordType::kEnd; }

}  // namespace

FrameBytes EncodeFrame(const Frame& frame) {
  FrameBytes b{};
  b[0] = static_cast<std::byte>(frame.type);
  b[1] = std::byte{0};
  StoreLe<uint16_t>(b.data() + 2, frame.channel);
  StoreLe<uint32_t>(b.data() + 4, frame.public_length);
  StoreLe<uint64_t>(b.data() + 8, frame.sequence);
  StoreLe<uint32_t>(b.data() + 16, frame.sealed_length);
  StoreLe<uint32_t>(b.data() + 20, 0);
  return b;
}

Expected<Frame> DecodeFrame(ByteSpan bytes) {
  ByteReader r(bytes);
  Frame f;
  uint8_t type = r.U8("record type");
  uint8_t flags = r.U8("record flags");
  f.channel = r.U16("channel");
  f.public_length = r.U32("public_length");
  f.sequence = r.U64("sequence");
  f.sealed_length = r.U32("sealed_length");
  uint32_t reserved = r.U32("frame reserved");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("frame"));
  f.type = static_cast<RecordType>(type);
  if (!KnownType(f.type)) return CorruptError("unknown record type " + std::to_string(type));
  if (flags != 0 || reserved != 0) return CorruptError("record frame has non-zero reserved bits");
  if (f.public_length > kMaxPublicLength) {
    return CorruptError("public part of " + std::to_string(f.public_length) + " bytes exceeds 64 KiB");
  }
  if (f.sealed_length > kMaxSealedLength) {
    return CorruptError("sealed part of " + std::to_string(f.sealed_length) + " bytes exceeds 64 MiB");
  }
  return f;
}

Expected<RecordSealer> RecordSealer::Create(const StreamKeys& keys) {
  if (keys.cipher() == Cipher::kNone) return RecordSealer(keys, std::nullopt);
  GMEM_ASSIGN_OR_RETURN(Aes256Gcm gcm, Aes256Gcm::Create(keys.data_key().span()));
  return RecordSealer(keys, std::move(gcm));
}

Expected<Tag> RecordSealer::Seal(const Frame& frame, ByteSpan frame_bytes, ByteSpan public_part,
                                 MutableByteSpan sealed, size_t fill_at, std::span<const ByteSpan> fill) {
  Tag tag{};
  if (!gcm_) {
    // The checksum covers the record as sent: gather first (a copy either way).
    size_t at = fill_at;
    for (ByteSpan part : fill) {
      if (part.size() > sealed.size() - at) return InvalidArgument("fill longer than the sealed part");
      std::memcpy(sealed.data() + at, part.data(), part.size());
      at += part.size();
    }
    return Xxh3Tag({frame_bytes, keys_->header_digest(), public_part, sealed});
  }
  GMEM_RETURN_IF_ERROR(
      gcm_->Seal(Nonce(frame), {frame_bytes, keys_->header_digest(), public_part}, sealed, tag, fill_at, fill));
  return tag;
}

Status RecordSealer::Open(const Frame& frame, ByteSpan frame_bytes, ByteSpan public_part, MutableByteSpan sealed,
                          const Tag& tag) {
  if (!gcm_) {
    if (Xxh3Tag({frame_bytes, keys_->header_digest(), public_part, sealed}) != tag) {
      return CorruptError("record checksum mismatch (unencrypted image is damaged)");
    }
    return Status::Ok();
  }
  return gcm_->Open(Nonce(frame), {frame_bytes, keys_->header_digest(), public_part}, sealed, tag);
}

}  // namespace gmem::format
