#include "agent/key_agreement.h"

#include <openssl/evp.h>

#include <string>

#include "format/crypto.h"

namespace gmem::agent {
namespace {

constexpr std::string_view kTransportInfo = "gmemkit-agent-v1 transport key";
constexpr std::string_view kSealingRootInfo = "gmemkit-agent-v1 sealing root";
constexpr std::string_view kSealingKeyInfo = "gmemkit-agent-v1 sealing key";
constexpr std::string_view kKeyCheckInfo = "gmemkit-agent-v1 key check";
constexpr std::string_view kKeyIdInfo = "gmemkit-agent-v1 key id";

Status CryptoError(const char* what) { return Status(Code::kIo, std::string("OpenSSL: ") + what + " failed"); }

// HKDF info with binary parts: the label, then the parts as they are.
std::string Info(std::string_view label, std::initializer_list<ByteSpan> parts) {
  std::string info(label);
  for (ByteSpan p : parts) info.append(reinterpret_cast<const char*>(p.data()), p.size());
  return info;
}

template <size_t N>
void Put(std::byte* p, const std::array<std::byte, N>& a) {
  for (size_t i = 0; i < N; ++i) p[i] = a[i];
}
template <size_t N>
void Get(ByteSpan s, std::array<std::byte, N>& a) {
  for (size_t i = 0; i < N; ++i) a[i] = s[i];
}

struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

}  // namespace

// ---- Share ----

Bytes EncodeShare(const Share& s) {
  Bytes out(kShareBytes);
  std::byte* p = out.data();
  // SAFETY: out holds kShareBytes = 240 bytes; the offsets below are §5.2's and end at 240.
  StoreLe<uint32_t>(p + 0, kShareMagic);
  StoreLe<uint16_t>(p + 4, kVersionMajor);
  StoreLe<uint16_t>(p + 6, s.minor);
  p[8] = static_cast<std::byte>(s.role);
  p[9] = static_cast<std::byte>(s.mode);
  StoreLe<uint16_t>(p + 10, 0);
  StoreLe<uint32_t>(p + 12, s.epoch);
  Put(p + 16, s.session_id);
  Put(p + 48, s.measurement);
  Put(p + 80, s.key_material);
  Put(p + 112, s.peer_digest);
  Put(p + 144, s.key_check);
  Put(p + 176, s.signature);
  return out;
}

Expected<Share> DecodeShare(ByteSpan bytes) {
  if (bytes.size() != kShareBytes) {
    return CorruptError("a share is " + std::to_string(kShareBytes) + " bytes, not " + std::to_string(bytes.size()));
  }
  ByteReader r(bytes);
  Share s;
  uint32_t magic = r.U32("magic");
  uint16_t major = r.U16("version_major");
  s.minor = r.U16("version_minor");
  uint8_t role = r.U8("role");
  uint8_t mode = r.U8("mode");
  r.ZerosOk(2, "share reserved");
  s.epoch = r.U32("epoch");
  if (!r.ok()) return r.status();
  if (magic != kShareMagic) return CorruptError("not an agent share (bad magic)");
  if (major != kVersionMajor) {
    return IncompatibleError("the peer agent speaks protocol version " + std::to_string(major) + "." +
                             std::to_string(s.minor));
  }
  if (role != 1 && role != 2) return CorruptError("share: unknown role " + std::to_string(role));
  if (mode != 1 && mode != 2) return CorruptError("share: unknown mode " + std::to_string(mode));
  s.role = static_cast<Role>(role);
  s.mode = static_cast<Mode>(mode);
  Get(bytes.subspan(16, 32), s.session_id);
  Get(bytes.subspan(48, 32), s.measurement);
  Get(bytes.subspan(80, 32), s.key_material);
  Get(bytes.subspan(112, 32), s.peer_digest);
  Get(bytes.subspan(144, 32), s.key_check);
  Get(bytes.subspan(176, 64), s.signature);
  return s;
}

Key32 ShareDigest(ByteSpan share_bytes) {
  format::Digest d = format::Sha256(share_bytes);
  Key32 out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = d[i];
  return out;
}

Status SignShare(Share& share, const PlatformKey& key) {
  Bytes bytes = EncodeShare(share);
  GMEM_ASSIGN_OR_RETURN(share.signature, key.Sign(ByteSpan(bytes).first(kShareSignedBytes)));
  return Status::Ok();
}

Status VerifyShare(const Share& share, const PlatformKey& key) {
  Bytes bytes = EncodeShare(share);
  if (!key.Verify(ByteSpan(bytes).first(kShareSignedBytes), share.signature)) {
    return AuthError("the share is not signed by this platform's key");
  }
  return Status::Ok();
}

// ---- X25519 ----

void X25519Key::Deleter::operator()(evp_pkey_st* key) const { EVP_PKEY_free(key); }
X25519Key::X25519Key(X25519Key&&) noexcept = default;
X25519Key& X25519Key::operator=(X25519Key&&) noexcept = default;
X25519Key::~X25519Key() = default;

Expected<X25519Key> X25519Key::Generate() {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return CryptoError("X25519 keygen");
  }
  std::unique_ptr<evp_pkey_st, Deleter> key(raw);
  Key32 pub{};
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pub.data()), &len) != 1 ||
      len != pub.size()) {
    return CryptoError("X25519 public key");
  }
  return X25519Key(std::move(key), pub);
}

Expected<SecretBytes> X25519Key::Agree(const Key32& peer_public) const {
  std::unique_ptr<EVP_PKEY, PkeyDeleter> peer(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_X25519, nullptr, reinterpret_cast<const unsigned char*>(peer_public.data()), peer_public.size()));
  if (!peer) return AuthError("the peer's X25519 public key is not valid");
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
  SecretBytes secret(32);
  size_t len = secret.size();
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1) {
    return CryptoError("X25519 derive init");
  }
  // OpenSSL refuses (and we check again) an all-zero result: a low-order peer point.
  if (EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(secret.data()), &len) != 1 || len != 32) {
    return AuthError("X25519 agreement with the peer's key failed (low-order point?)");
  }
  std::byte acc{0};
  for (std::byte b : secret.span()) acc |= b;
  if (acc == std::byte{0}) return AuthError("X25519 agreement produced the all-zero secret");
  return secret;
}

// ---- key derivation ----

Expected<SecretBytes> DeriveTransportKey(const SecretBytes& shared_secret, const SessionId& session_id,
                                         ByteSpan export_share, ByteSpan import_share) {
  Key32 e = ShareDigest(export_share);
  Key32 i = ShareDigest(import_share);
  SecretBytes key(kKeyBytes);
  GMEM_RETURN_IF_ERROR(format::HkdfSha256(shared_secret.span(), session_id, Info(kTransportInfo, {e, i}), key.span()));
  return key;
}

Expected<SecretBytes> DeriveSealingKey(const PlatformKey& platform, const Measurement& measurement,
                                       const Key32& agent_salt, const SessionId& session_id, uint32_t epoch) {
  SecretBytes root(kKeyBytes);
  GMEM_RETURN_IF_ERROR(format::HkdfSha256(platform.sealing_secret().span(), measurement, kSealingRootInfo, root.span()));
  std::byte le_epoch[4];
  StoreLe<uint32_t>(le_epoch, epoch);
  SecretBytes key(kKeyBytes);
  GMEM_RETURN_IF_ERROR(format::HkdfSha256(root.span(), agent_salt,
                                          Info(kSealingKeyInfo, {session_id, ByteSpan(le_epoch, 4)}), key.span()));
  return key;
}

Expected<Key32> SealingKeyCheck(const SecretBytes& key, ByteSpan share_prefix) {
  Key32 check{};
  GMEM_RETURN_IF_ERROR(format::HkdfSha256(key.span(), {}, Info(kKeyCheckInfo, {share_prefix}), check));
  return check;
}

Measurement MeasurementOf(std::string_view label, std::initializer_list<ByteSpan> parts) {
  Bytes all(label.size());
  for (size_t i = 0; i < label.size(); ++i) all[i] = static_cast<std::byte>(label[i]);
  ByteWriter w(all);
  for (ByteSpan p : parts) {
    w.U64(p.size());
    w.Raw(p);
  }
  Key32 d = ShareDigest(all);
  Measurement m{};
  for (size_t i = 0; i < m.size(); ++i) m[i] = d[i];
  return m;
}

Expected<uint64_t> KeyId(const SecretBytes& key) {
  std::byte id[8];
  GMEM_RETURN_IF_ERROR(format::HkdfSha256(key.span(), {}, kKeyIdInfo, MutableByteSpan(id, 8)));
  return LoadLe<uint64_t>(id);
}

}  // namespace gmem::agent
