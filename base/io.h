#pragma once
// The small byte-stream interfaces that decouple the format from I/O: the format encodes into a
// ByteSink and decodes from a ByteSource; transport/ implements them over files and sockets, and
// tests use the in-memory ones below.

#include <cstddef>
#include <span>

#include "base/bytes.h"
#include "base/expected.h"

namespace gmem {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Writes all of `data` or fails.
  virtual Status Write(ByteSpan data) = 0;
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to out.size() bytes; returns 0 only at end of stream.
  virtual Expected<size_t> Read(MutableByteSpan out) = 0;
};

// Reads exactly out.size() bytes. Returns the number read, which is less than out.size() only
// when the stream ended (the caller decides whether that is truncation).
Expected<size_t> ReadFull(ByteSource& source, MutableByteSpan out);

// Appends everything written to a vector.
class MemorySink final : public ByteSink {
 public:
  Status Write(ByteSpan data) override;
  const Bytes& bytes() const { return bytes_; }
  Bytes& bytes() { return bytes_; }

 private:
  Bytes bytes_;
};

// Serves a span it does not own. REQUIRES: the span outlives the source.
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(ByteSpan data) : data_(data) {}
  Expected<size_t> Read(MutableByteSpan out) override;
  size_t offset() const { return pos_; }

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};

}  // namespace gmem
