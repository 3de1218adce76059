#pragma once
// ThrottledSink: a ByteSink that passes bytes on to another at no more than a set rate
// (--bandwidth), sleeping as needed. Rate 0 passes everything through at once.

#include <chrono>
#include <cstdint>

#include "base/io.h"

namespace gmem::migrate {

class ThrottledSink final : public ByteSink {
 public:
  // REQUIRES: `inner` outlives this sink.
  ThrottledSink(ByteSink& inner, uint64_t bytes_per_second) : inner_(&inner), rate_(bytes_per_second) {}
  Status Write(ByteSpan data) override;
  uint64_t bytes_written() const { return bytes_; }

 private:
  ByteSink* inner_;
  uint64_t rate_;
  uint64_t bytes_ = 0;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace gmem::migrate
