#pragma once
// ImageScanner: walks an image's header and record frames without a key, returning each
// record's frame and public part (FORMAT.md §1: public parts are plaintext) and skipping sealed
// parts. It checks structure and sequence but authenticates nothing: what it returns is for
// display (`gmem-snapshot inspect`). ImageReader, with the key, is what verifies.

#include <cstdint>
#include <optional>

#include "base/io.h"
#include "format/image_header.h"
#include "format/record_seal.h"

namespace gmem::format {

struct ScannedRecord {
  Frame frame;
  uint64_t offset = 0;  // byte offset of the frame
  Bytes public_part;
};

class ImageScanner {
 public:
  // Reads and structurally decodes the header. REQUIRES: `source` outlives the scanner.
  static Expected<ImageScanner> Open(ByteSource& source);

  const ImageHeader& header() const { return header_; }
  // The next record, or nullopt after END (when the source must also be at its end).
  Expected<std::optional<ScannedRecord>> Next();

 private:
  ImageScanner(ByteSource& source, ImageHeader header) : source_(&source), header_(header) {}
  Status Skip(uint64_t n);

  ByteSource* source_;
  ImageHeader header_;
  uint64_t sequence_ = 0;
  uint64_t offset_ = kHeaderSize;
  bool done_ = false;
};

}  // namespace gmem::format
