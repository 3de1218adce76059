#pragma once
// Payloads of the image's records (FORMAT.md §5) as plain values, and their encoders and
// strict decoders. Pure functions over buffers: no I/O, no crypto. PAGES lives in page_batch.h.

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/expected.h"
#include "format/wire.h"

namespace gmem::format {

// §5.1 One guest_memfd region.
struct Region {
  uint32_t id = 0;
  uint32_t page_size = 4096;
  uint64_t gpa_base = 0;
  uint64_t size_bytes = 0;
  uint64_t gmem_offset = 0;
  uint64_t gmem_flags = 0;

  uint64_t npages() const { return size_bytes / page_size; }
  bool operator==(const Region&) const = default;
};

struct LayoutRecord {
  std::vector<Region> regions;

  // The region with `id`, or null.
  const Region* Find(uint32_t id) const;
  bool operator==(const LayoutRecord&) const = default;
};

// Checks every rule of §5.1 (counts, alignment, overlap, unique ids).
Status ValidateLayout(const LayoutRecord& layout);
Bytes EncodeLayout(const LayoutRecord& layout);
Expected<LayoutRecord> DecodeLayout(ByteSpan public_part);

// §5.2
struct AttrRun {
  uint64_t first_page = 0;
  uint64_t npages = 0;
  PageAttr attr = PageAttr::kShared;
  bool operator==(const AttrRun&) const = default;
};

struct AttrsRecord {
  uint32_t region_id = 0;
  uint64_t generation = 0;
  std::vector<AttrRun> runs;
  bool operator==(const AttrsRecord&) const = default;
};

// REQUIRES for encode: runs valid for `region` (checked: InvalidArgument otherwise).
Expected<Bytes> EncodeAttrs(const AttrsRecord& record, const Region& region);
// The region is looked up in `layout` by the decoded region id.
Expected<AttrsRecord> DecodeAttrs(ByteSpan public_part, const LayoutRecord& layout);

// §5.4
struct PrivateBlob {
  uint64_t page = 0;
  Bytes blob;
  bool operator==(const PrivateBlob&) const = default;
};

struct PrivateRecord {
  uint32_t region_id = 0;
  uint64_t generation = 0;
  uint32_t epoch = 0;
  std::vector<PrivateBlob> blobs;
  bool operator==(const PrivateRecord&) const = default;
};

Status EncodePrivate(const PrivateRecord& record, const Region& region, Bytes& public_part,
                     Bytes& sealed_part);
Expected<PrivateRecord> DecodePrivate(ByteSpan public_part, ByteSpan sealed_part,
                                      const LayoutRecord& layout);

// §5.5
struct PassRecord {
  uint32_t pass = 1;
  uint32_t flags = 0;
  uint64_t data_pages = 0;
  uint64_t zero_pages = 0;
  uint64_t private_pages = 0;
  uint64_t attr_changes = 0;
  uint64_t wire_bytes = 0;
  uint64_t dirty_pages = 0;
  uint64_t elapsed_us = 0;
  bool final() const { return (flags & kPassFlagFinal) != 0; }
  bool operator==(const PassRecord&) const = default;
};

Expected<Bytes> EncodePass(const PassRecord& record);
Expected<PassRecord> DecodePass(ByteSpan public_part);

// §5.6
struct StateEntry {
  std::string name;
  Bytes blob;
  bool operator==(const StateEntry&) const = default;
};

struct StateRecord {
  std::vector<StateEntry> entries;
  bool operator==(const StateRecord&) const = default;
};

Status EncodeState(const StateRecord& record, Bytes& public_part, Bytes& sealed_part);
Expected<StateRecord> DecodeState(ByteSpan public_part, ByteSpan sealed_part);

// §5.7
struct EndRecord {
  uint64_t record_count = 0;
  uint64_t data_pages = 0;
  uint64_t zero_pages = 0;
  uint64_t private_pages = 0;
  uint64_t raw_bytes = 0;
  Digest digest{};
  bool operator==(const EndRecord&) const = default;
};

Bytes EncodeEnd(const EndRecord& record);
Expected<EndRecord> DecodeEnd(ByteSpan public_part);

}  // namespace gmem::format
