#include "agent/platform_key.h"

#include <openssl/evp.h>

#include <cctype>

#include "format/crypto.h"

namespace gmem::agent {
namespace {

constexpr std::string_view kSigningInfo = "gmemkit-agent-v1 platform signing key";
constexpr std::string_view kSealingInfo = "gmemkit-agent-v1 platform sealing secret";

const unsigned char* U8(ByteSpan s) { return reinterpret_cast<const unsigned char*>(s.data()); }

Status CryptoError(const char* what) { return Status(Code::kIo, std::string("OpenSSL: ") + what + " failed"); }

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

}  // namespace

void PlatformKey::Deleter::operator()(evp_pkey_st* key) const { EVP_PKEY_free(key); }

PlatformKey::PlatformKey(SecretBytes secret, SecretBytes sealing_secret, std::unique_ptr<evp_pkey_st, Deleter> signing,
                         PublicKey public_key)
    : secret_(std::move(secret)),
      sealing_secret_(std::move(sealing_secret)),
      signing_(std::move(signing)),
      public_key_(public_key) {}
PlatformKey::PlatformKey(PlatformKey&&) noexcept = default;
PlatformKey& PlatformKey::operator=(PlatformKey&&) noexcept = default;
PlatformKey::~PlatformKey() = default;

Expected<PlatformKey> PlatformKey::FromSecret(const SecretBytes& secret) {
  if (secret.size() != kPlatformSecretBytes) return InvalidArgument("a platform secret is 32 bytes");
  SecretBytes seed(32);
  SecretBytes sealing(32);
  GMEM_RETURN_IF_ERROR(format::HkdfSha256(secret.span(), {}, kSigningInfo, seed.span()));
  GMEM_RETURN_IF_ERROR(format::HkdfSha256(secret.span(), {}, kSealingInfo, sealing.span()));
  std::unique_ptr<evp_pkey_st, Deleter> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, U8(seed.span()), seed.size()));
  if (!key) return CryptoError("Ed25519 private key");
  PublicKey pub{};
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pub.data()), &len) != 1 ||
      len != pub.size()) {
    return CryptoError("Ed25519 public key");
  }
  return PlatformKey(SecretBytes::CopyOf(secret.span()), std::move(sealing), std::move(key), pub);
}

Expected<PlatformKey> PlatformKey::Generate() {
  SecretBytes secret(kPlatformSecretBytes);
  GMEM_RETURN_IF_ERROR(format::RandomFill(secret.span()));
  return FromSecret(secret);
}

Expected<PlatformKey> PlatformKey::Parse(ByteSpan text) {
  size_t n = text.size();
  while (n > 0 && (text[n - 1] == std::byte{'\n'} || text[n - 1] == std::byte{'\r'})) --n;
  const size_t prefix = kPlatformKeyPrefix.size();
  if (n != prefix + 2 * kPlatformSecretBytes) {
    return CorruptError("not a platform key file (expected one line '" + std::string(kPlatformKeyPrefix) +
                        "<64 hex digits>')");
  }
  for (size_t i = 0; i < prefix; ++i) {
    if (text[i] != static_cast<std::byte>(kPlatformKeyPrefix[i])) {
      return CorruptError("not a platform key file (it does not start with '" + std::string(kPlatformKeyPrefix) + "')");
    }
  }
  SecretBytes secret(kPlatformSecretBytes);
  std::string_view hex(reinterpret_cast<const char*>(text.data()) + prefix, 2 * kPlatformSecretBytes);
  if (!FromHex(hex, secret.span())) return CorruptError("platform key file: the key is not 64 hex digits");
  return FromSecret(secret);
}

Expected<PlatformKey> PlatformKey::LoadFile(const std::string& path) {
  GMEM_ASSIGN_OR_RETURN(SecretBytes text, ReadSecretFile(path, kPlatformKeyFileMaxBytes + 1));
  auto key = Parse(text.span());
  if (!key.ok()) return key.status().WithContext("'" + path + "'");
  return key;
}

Expected<PlatformKey> PlatformKey::LoadFd(int fd) {
  GMEM_ASSIGN_OR_RETURN(SecretBytes text, ReadSecretFd(fd, kPlatformKeyFileMaxBytes + 1));
  auto key = Parse(text.span());
  if (!key.ok()) return key.status().WithContext("fd " + std::to_string(fd));
  return key;
}

SecretBytes PlatformKey::FileText() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  SecretBytes out(kPlatformKeyPrefix.size() + 2 * kPlatformSecretBytes + 1);
  size_t at = 0;
  for (char c : kPlatformKeyPrefix) out.data()[at++] = static_cast<std::byte>(c);
  for (std::byte b : secret_.span()) {
    auto v = std::to_integer<uint8_t>(b);
    out.data()[at++] = static_cast<std::byte>(kDigits[v >> 4]);
    out.data()[at++] = static_cast<std::byte>(kDigits[v & 0xf]);
  }
  out.data()[at] = std::byte{'\n'};
  return out;
}

Status PlatformKey::WriteFile(const std::string& path, bool overwrite) const {
  SecretBytes text = FileText();
  return WriteSecretFile(path, text.span(), overwrite);
}

Expected<Signature> PlatformKey::Sign(ByteSpan message) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  Signature sig{};
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, signing_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, U8(message), message.size()) != 1 ||
      len != sig.size()) {
    return CryptoError("Ed25519 sign");
  }
  return sig;
}

bool PlatformKey::Verify(ByteSpan message, const Signature& signature) const {
  return VerifyEd25519(public_key_, message, signature);
}

bool VerifyEd25519(const PublicKey& public_key, ByteSpan message, const Signature& signature) {
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, U8(public_key), public_key.size()));
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!key || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), U8(signature), signature.size(), U8(message), message.size()) == 1;
}

}  // namespace gmem::agent
