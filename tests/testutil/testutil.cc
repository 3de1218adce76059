#include "tests/testutil/testutil.h"

namespace gmem::testing {

Status FailingSink::Write(ByteSpan data) {
  if (bytes_.size() + data.size() > limit_) {
    size_t room = limit_ - bytes_.size();
    bytes_.insert(bytes_.end(), data.begin(), data.begin() + static_cast<ptrdiff_t>(room));
    return Status(Code::kIo, "injected write failure after " + std::to_string(limit_) + " bytes", 28 /*ENOSPC*/);
  }
  bytes_.insert(bytes_.end(), data.begin(), data.end());
  return Status::Ok();
}

Bytes RandomBytes(std::mt19937_64& rng, size_t n) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>(rng() & 0xff);
  return out;
}

Bytes FlipByte(ByteSpan in, size_t offset, uint8_t mask) {
  Bytes out(in.begin(), in.end());
  out.at(offset) ^= static_cast<std::byte>(mask);
  return out;
}

Bytes Truncate(ByteSpan in, size_t size) { return Bytes(in.begin(), in.begin() + static_cast<ptrdiff_t>(size)); }

}  // namespace gmem::testing
