#include "format/keys.h"

#include <cstring>

#include "format/crypto.h"

namespace gmem::format {

Expected<SecretBytes> GenerateKey() {
  SecretBytes key(kKeySize);
  GMEM_RETURN_IF_ERROR(RandomFill(key.span()));
  return key;
}

SecretBytes FormatKeyFile(const SecretBytes& key) {
  static constexpr char kDigits[] = "0123456789abcdef";
  SecretBytes text(kKeyFilePrefix.size() + 2 * key.size() + 1);
  std::byte* out = text.data();
  std::memcpy(out, kKeyFilePrefix.data(), kKeyFilePrefix.size());
  out += kKeyFilePrefix.size();
  for (size_t i = 0; i < key.size(); ++i) {
    auto v = std::to_integer<uint8_t>(key.data()[i]);
    *out++ = static_cast<std::byte>(kDigits[v >> 4]);
    *out++ = static_cast<std::byte>(kDigits[v & 0xf]);
  }
  *out = static_cast<std::byte>('\n');
  return text;
}

Expected<SecretBytes> ParseKeyFile(ByteSpan text) {
  if (!text.empty() && text.back() == static_cast<std::byte>('\n')) text = text.first(text.size() - 1);
  std::string_view view(reinterpret_cast<const char*>(text.data()), text.size());
  if (view.substr(0, kKeyFilePrefix.size()) != kKeyFilePrefix) {
    return InvalidArgument("not a gmemkit key file (expected 'gmemkit-key-v1:' followed by 64 hex digits)");
  }
  SecretBytes key(kKeySize);
  if (!FromHex(view.substr(kKeyFilePrefix.size()), key.span())) {
    return InvalidArgument("key file must hold exactly 64 hex digits after 'gmemkit-key-v1:'");
  }
  return key;
}

KeySource KeySource::FromKey(SecretBytes key) { return KeySource(KeyWrap::kKeyFile, std::move(key), {}); }

KeySource KeySource::FromPassphrase(SecretBytes passphrase, ScryptCost cost) {
  return KeySource(KeyWrap::kPassphrase, std::move(passphrase), cost);
}

KeySource KeySource::Insecure() { return KeySource(KeyWrap::kNone, SecretBytes(), {}); }

Expected<std::array<std::byte, kKeyIdSize>> KeySource::KeyId() const {
  if (wrap_ != KeyWrap::kKeyFile) return InvalidArgument("only key files have a key id");
  std::array<std::byte, kKeyIdSize> id{};
  GMEM_RETURN_IF_ERROR(HkdfSha256(secret_.span(), {}, "gmemkit v1 key id", id));
  return id;
}

Expected<SecretBytes> KeySource::DeriveKek(ByteSpan salt, const ScryptCost& cost) const {
  SecretBytes kek(kDataKeySize);
  switch (wrap_) {
    case KeyWrap::kKeyFile:
      if (secret_.size() != kKeySize) return InvalidArgument("a key must be 32 bytes");
      GMEM_RETURN_IF_ERROR(HkdfSha256(secret_.span(), salt, "gmemkit v1 kek", kek.span()));
      return kek;
    case KeyWrap::kPassphrase:
      if (secret_.empty()) return InvalidArgument("empty passphrase");
      if (secret_.size() > kMaxPassphraseBytes) return InvalidArgument("passphrase is longer than 1024 bytes");
      GMEM_RETURN_IF_ERROR(Scrypt(secret_.span(), salt, cost.log2_n, cost.r, cost.p, kek.span()));
      return kek;
    case KeyWrap::kNone:
    case KeyWrap::kInvalid:
      break;
  }
  return InvalidArgument("this key source has no key-encryption key");
}

}  // namespace gmem::format
