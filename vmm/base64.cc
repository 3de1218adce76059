#include "vmm/base64.h"

#include <openssl/evp.h>

#include <climits>

namespace gmem::vmm {

// OpenSSL's EVP block coder does the work; these wrappers add the strictness the protocol wants.

std::string Base64Encode(ByteSpan data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Expected<Bytes> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return InvalidArgument("base64: length " + std::to_string(text.size()) + " is not a multiple of 4");
  }
  if (text.size() > INT_MAX) return InvalidArgument("base64: text too long");
  Bytes out(text.size() / 4 * 3);
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return InvalidArgument("base64: not valid base64");
  // EVP_DecodeBlock counts padding as zero bytes; drop them.
  size_t pad = text.size() >= 2 && text.substr(text.size() - 2) == "==" ? 2 : (!text.empty() && text.back() == '=');
  out.resize(static_cast<size_t>(n) - pad);
  // Only the canonical encoding is accepted: this rejects whitespace, stray '=' and padding
  // bits that are not zero, which EVP_DecodeBlock tolerates.
  if (Base64Encode(out) != text) return InvalidArgument("base64: not the canonical encoding");
  return out;
}

}  // namespace gmem::vmm
