#pragma once
// What `gmem-snapshot inspect` and `verify` report about an image: Summarize() reads only the
// plaintext parts (no key; nothing authenticated), Verify() decrypts and checks every record and
// the END digest with the key.

#include <array>
#include <cstdint>
#include <optional>

#include "base/io.h"
#include "format/image_header.h"
#include "format/keys.h"
#include "format/records.h"

namespace gmem::snapshot {

struct ImageSummary {
  format::ImageHeader header;
  std::optional<format::LayoutRecord> layout;
  std::array<uint64_t, 8> records_by_type{};  // indexed by format::RecordType
  uint64_t records = 0;
  uint64_t data_pages = 0;
  uint64_t zero_pages = 0;
  uint64_t private_pages = 0;
  uint64_t raw_bytes = 0;     // data pages × page size
  uint64_t stored_bytes = 0;  // the sealed parts of PAGES records as stored
  uint64_t image_bytes = 0;   // the whole image
  std::optional<format::EndRecord> end;
};

// Walks `source` without a key.
Expected<ImageSummary> Summarize(ByteSource& source);

// Reads every record with `key`, authenticating and decoding it, and checks END.
Expected<ImageSummary> Verify(ByteSource& source, const format::KeySource& key, bool allow_insecure);

}  // namespace gmem::snapshot
