#include "agent/blob.h"

#include <cstring>
#include <string>

namespace gmem::agent {
namespace {

std::array<std::byte, kNonceBytes> Nonce(uint32_t epoch, uint64_t sequence) {
  std::array<std::byte, kNonceBytes> n{};
  StoreLe<uint32_t>(n.data(), epoch);
  StoreLe<uint64_t>(n.data() + 4, sequence);
  return n;
}

}  // namespace

void EncodeBlobHeader(const BlobHeader& h, MutableByteSpan out) {
  std::byte* p = out.data();
  // SAFETY: REQUIRES out.size() >= kBlobHeaderBytes; offsets per §6.1 end at 32.
  StoreLe<uint32_t>(p + 0, kBlobMagic);
  p[4] = static_cast<std::byte>(kBlobVersion);
  p[5] = static_cast<std::byte>(h.attribute);
  p[6] = static_cast<std::byte>(kPageShift);
  p[7] = std::byte{0};
  StoreLe<uint64_t>(p + 8, h.gfn);
  StoreLe<uint32_t>(p + 16, h.epoch);
  StoreLe<uint32_t>(p + 20, 0);
  StoreLe<uint64_t>(p + 24, h.sequence);
}

Expected<BlobHeader> DecodeBlobHeader(ByteSpan blob) {
  if (blob.size() != kBlobBytes) {
    return CorruptError("a blob of a 4 KiB page is " + std::to_string(kBlobBytes) + " bytes, this one " +
                        std::to_string(blob.size()));
  }
  ByteReader r(blob.first(kBlobHeaderBytes));
  uint32_t magic = r.U32("magic");
  uint8_t version = r.U8("version");
  BlobHeader h;
  h.attribute = r.U8("attribute");
  uint8_t page_shift = r.U8("page_shift");
  r.ZerosOk(1, "blob reserved");
  h.gfn = r.U64("gfn");
  h.epoch = r.U32("epoch");
  r.ZerosOk(4, "blob reserved");
  h.sequence = r.U64("sequence");
  if (!r.ok()) return r.status();
  if (magic != kBlobMagic) return CorruptError("not an agent blob (bad magic)");
  if (version != kBlobVersion) return IncompatibleError("blob version " + std::to_string(version));
  if (h.attribute != kBlobAttrPrivate) return CorruptError("blob attribute " + std::to_string(h.attribute));
  if (page_shift != kPageShift) return CorruptError("blob page_shift " + std::to_string(page_shift));
  if (h.sequence == 0) return CorruptError("blob sequence 0");
  return h;
}

Expected<BlobCipher> BlobCipher::Create(const SecretBytes& key) {
  if (key.size() != kKeyBytes) return InvalidArgument("a blob key is 32 bytes");
  GMEM_ASSIGN_OR_RETURN(format::Aes256Gcm aead, format::Aes256Gcm::Create(key.span()));
  return BlobCipher(std::move(aead));
}

Status BlobCipher::Seal(const BlobHeader& header, ByteSpan page, MutableByteSpan out) {
  if (page.size() != kPageBytes || out.size() != kBlobBytes) return InvalidArgument("blob seal: bad buffer sizes");
  if (header.sequence == 0) return InvalidArgument("blob seal: sequence 0 is reserved");
  EncodeBlobHeader(header, out);
  MutableByteSpan data = out.subspan(kBlobHeaderBytes, kPageBytes);
  std::memcpy(data.data(), page.data(), kPageBytes);
  format::Tag tag{};
  auto nonce = Nonce(header.epoch, header.sequence);
  GMEM_RETURN_IF_ERROR(aead_.Seal(nonce, {out.first(kBlobHeaderBytes)}, data, tag));
  std::memcpy(out.data() + kBlobHeaderBytes + kPageBytes, tag.data(), kTagBytes);
  return Status::Ok();
}

Expected<BlobHeader> BlobCipher::Open(ByteSpan blob, MutableByteSpan page) {
  if (page.size() != kPageBytes) return InvalidArgument("blob open: the page buffer is not 4 KiB");
  GMEM_ASSIGN_OR_RETURN(BlobHeader header, DecodeBlobHeader(blob));
  std::memcpy(page.data(), blob.data() + kBlobHeaderBytes, kPageBytes);
  format::Tag tag{};
  std::memcpy(tag.data(), blob.data() + kBlobHeaderBytes + kPageBytes, kTagBytes);
  auto nonce = Nonce(header.epoch, header.sequence);
  Status s = aead_.Open(nonce, {blob.first(kBlobHeaderBytes)}, page, tag);
  if (!s.ok()) {
    SecureWipe(page.data(), page.size());
    if (s.code() == Code::kAuth) return AuthError("blob for gfn " + std::to_string(header.gfn) + " failed authentication");
    return s;
  }
  return header;
}

}  // namespace gmem::agent
