#pragma once
// Explicit little-endian loads and stores over byte spans, and two cursors for building and
// parsing wire structures field by field (STYLE.md, "Bytes and resources"). Nothing here ever
// memcpy's a struct onto the wire.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace gmem {

using Bytes = std::vector<std::byte>;
using ByteSpan = std::span<const std::byte>;
using MutableByteSpan = std::span<std::byte>;

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

template <typename T>
inline T LoadLe(const std::byte* p) {
  static_assert(std::is_unsigned_v<T>);
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(std::to_integer<uint8_t>(p[i])) << (8 * i);
  return v;
}

template <typename T>
inline void StoreLe(std::byte* p, T v) {
  static_assert(std::is_unsigned_v<T>);
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

// Appends fields to a growing buffer.
class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) : out_(out) {}

  void U8(uint8_t v) { out_.push_back(static_cast<std::byte>(v)); }
  void U16(uint16_t v) { Put(v); }
  void U32(uint32_t v) { Put(v); }
  void U64(uint64_t v) { Put(v); }
  void Raw(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void Zeros(size_t n) { out_.insert(out_.end(), n, std::byte{0}); }
  size_t size() const { return out_.size(); }

 private:
  template <typename T>
  void Put(T v) {
    size_t at = out_.size();
    out_.resize(at + sizeof(T));
    StoreLe<T>(out_.data() + at, v);
  }
  Bytes& out_;
};

// Reads fields from a bounded span. Every read checks the remaining length first; a short read
// sets a sticky error naming `what` and the offset, and further reads return zeros.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan in) : in_(in) {}

  uint8_t U8(const char* what) { return Get<uint8_t>(what); }
  uint16_t U16(const char* what) { return Get<uint16_t>(what); }
  uint32_t U32(const char* what) { return Get<uint32_t>(what); }
  uint64_t U64(const char* what) { return Get<uint64_t>(what); }
  ByteSpan Raw(size_t n, const char* what) {
    if (!Need(n, what)) return {};
    ByteSpan s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  // True when every one of the next n bytes is zero (reserved fields); consumes them.
  bool ZerosOk(size_t n, const char* what);

  size_t offset() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  // Fails unless the whole input was consumed.
  Status ExpectEnd(const char* what);
  void Fail(Status s) {
    if (status_.ok()) status_ = std::move(s);
  }

 private:
  bool Need(size_t n, const char* what);
  template <typename T>
  T Get(const char* what) {
    if (!Need(sizeof(T), what)) return 0;
    T v = LoadLe<T>(in_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }
  ByteSpan in_;
  size_t pos_ = 0;
  Status status_;
};

// Lowercase hex of bytes, and its inverse (false on odd length or a non-hex digit).
std::string ToHex(ByteSpan bytes);
bool FromHex(std::string_view hex, MutableByteSpan out);

}  // namespace gmem
