#include "base/bytes.h"

#include <string>

namespace gmem {

bool ByteReader::Need(size_t n, const char* what) {
  if (!status_.ok()) return false;
  if (remaining() < n) {
    status_ = CorruptError(std::string("truncated ") + what + " at offset " + std::to_string(pos_) +
                           ": need " + std::to_string(n) + " bytes, have " +
                           std::to_string(remaining()));
    return false;
  }
  return true;
}

bool ByteReader::ZerosOk(size_t n, const char* what) {
  ByteSpan s = Raw(n, what);
  if (!ok()) return false;
  for (std::byte b : s) {
    if (b != std::byte{0}) {
      Fail(CorruptError(std::string("reserved field ") + what + " is not zero"));
      return false;
    }
  }
  return true;
}

Status ByteReader::ExpectEnd(const char* what) {
  if (!status_.ok()) return status_;
  if (remaining() != 0) {
    return CorruptError(std::string(what) + " has " + std::to_string(remaining()) +
                        " trailing bytes at offset " + std::to_string(pos_));
  }
  return Status::Ok();
}

std::string ToHex(ByteSpan bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    auto v = std::to_integer<uint8_t>(b);
    out.push_back(kDigits[v >> 4]);
    out.push_back(kDigits[v & 0xf]);
  }
  return out;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool FromHex(std::string_view hex, MutableByteSpan out) {
  if (hex.size() != out.size() * 2) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::byte>((hi << 4) | lo);
  }
  return true;
}

}  // namespace gmem
