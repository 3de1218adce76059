#include "format/records.h"

#include <algorithm>
#include <set>
#include <string>

namespace gmem::format {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

Expected<const Region*> LookupRegion(const LayoutRecord& layout, uint32_t region_id) {
  const Region* region = layout.Find(region_id);
  if (region == nullptr) return CorruptError("region " + Num(region_id) + " is not in the layout");
  return region;
}

bool ValidStateName(const std::string& name) {
  if (name.empty() || name.size() > kMaxStateNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '/' || c == '-';
  });
}

}  // namespace

const char* RecordTypeName(RecordType type) {
  switch (type) {
    case RecordType::kLayout: return "LAYOUT";
    case RecordType::kAttrs: return "ATTRS";
    case RecordType::kPages: return "PAGES";
    case RecordType::kPrivate: return "PRIVATE";
    case RecordType::kPass: return "PASS";
    case RecordType::kState: return "STATE";
    case RecordType::kEnd: return "END";
    case RecordType::kInvalid: break;
  }
  return "INVALID";
}

// ---- LAYOUT ----

const Region* LayoutRecord::Find(uint32_t id) const {
  for (const Region& r : regions) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

Status ValidateLayout(const LayoutRecord& layout) {
  if (layout.regions.empty() || layout.regions.size() > kMaxRegions) {
    return CorruptError("layout has " + Num(layout.regions.size()) + " regions (allowed 1.." +
                        Num(kMaxRegions) + ")");
  }
  std::set<uint32_t> ids;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const Region& r : layout.regions) {
    std::string which = "region " + Num(r.id);
    if (!ids.insert(r.id).second) return CorruptError(which + " appears twice");
    if (!IsPowerOfTwo(r.page_size) || r.page_size < kMinPageSize || r.page_size > kMaxPageSize) {
      return CorruptError(which + ": page size " + Num(r.page_size) + " is not a power of two in 4 KiB..1 GiB");
    }
    if (r.size_bytes == 0 || r.size_bytes % r.page_size != 0 || r.size_bytes > kMaxRegionBytes) {
      return CorruptError(which + ": size " + Num(r.size_bytes) + " is not a positive multiple of the page size up to 64 TiB");
    }
    if (r.gpa_base % r.page_size != 0 || r.gmem_offset % r.page_size != 0) {
      return CorruptError(which + ": gpa_base or gmem_offset is not page aligned");
    }
    if (r.gpa_base > UINT64_MAX - r.size_bytes || r.gmem_offset > UINT64_MAX - r.size_bytes) {
      return CorruptError(which + ": range overflows 64 bits");
    }
    spans.emplace_back(r.gpa_base, r.gpa_base + r.size_bytes);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first < spans[i - 1].second) return CorruptError("layout has overlapping GPA ranges");
  }
  return Status::Ok();
}

Bytes EncodeLayout(const LayoutRecord& layout) {
  Bytes out;
  ByteWriter w(out);
  w.U32(static_cast<uint32_t>(layout.regions.size()));
  w.U32(0);
  for (const Region& r : layout.regions) {
    w.U32(r.id);
    w.U32(r.page_size);
    w.U64(r.gpa_base);
    w.U64(r.size_bytes);
    w.U64(r.gmem_offset);
    w.U64(r.gmem_flags);
    w.U64(0);
  }
  return out;
}

Expected<LayoutRecord> DecodeLayout(ByteSpan public_part) {
  ByteReader r(public_part);
  uint32_t count = r.U32("region_count");
  r.ZerosOk(4, "layout reserved");
  if (!r.ok()) return r.status();
  if (count == 0 || count > kMaxRegions) {
    return CorruptError("layout region_count " + Num(count) + " is outside 1.." + Num(kMaxRegions));
  }
  if (r.remaining() != count * kRegionEntrySize) {
    return CorruptError("layout holds " + Num(r.remaining()) + " bytes for " + Num(count) + " regions");
  }
  LayoutRecord layout;
  layout.regions.resize(count);
  for (Region& region : layout.regions) {
    region.id = r.U32("region id");
    region.page_size = r.U32("page_size");
    region.gpa_base = r.U64("gpa_base");
    region.size_bytes = r.U64("size_bytes");
    region.gmem_offset = r.U64("gmem_offset");
    region.gmem_flags = r.U64("gmem_flags");
    r.ZerosOk(8, "region reserved");
  }
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("LAYOUT"));
  GMEM_RETURN_IF_ERROR(ValidateLayout(layout));
  return layout;
}

// ---- ATTRS ----

static Status ValidateAttrRuns(const std::vector<AttrRun>& runs, const Region& region, Code code) {
  if (runs.size() > kMaxAttrRuns) return Status(code, "too many attribute runs: " + Num(runs.size()));
  uint64_t next = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const AttrRun& run = runs[i];
    std::string which = "attribute run " + Num(i);
    if (run.attr != PageAttr::kShared && run.attr != PageAttr::kPrivate) {
      return Status(code, which + " has unknown attribute " + Num(static_cast<uint8_t>(run.attr)));
    }
    if (run.npages == 0) return Status(code, which + " is empty");
    if (i > 0 && run.first_page < next) return Status(code, which + " is out of order or overlaps");
    if (run.first_page > region.npages() || run.npages > region.npages() - run.first_page) {
      return Status(code, which + " lies outside region " + Num(region.id));
    }
    next = run.first_page + run.npages;
  }
  return Status::Ok();
}

Expected<Bytes> EncodeAttrs(const AttrsRecord& record, const Region& region) {
  if (record.region_id != region.id) return InvalidArgument("ATTRS region id does not match region");
  GMEM_RETURN_IF_ERROR(ValidateAttrRuns(record.runs, region, Code::kInvalidArgument));
  if (kAttrsHeaderSize + record.runs.size() * kAttrRunSize > kMaxPublicLength) {
    return InvalidArgument("too many attribute runs for one ATTRS record: " + Num(record.runs.size()));
  }
  Bytes out;
  ByteWriter w(out);
  w.U32(record.region_id);
  w.U32(static_cast<uint32_t>(record.runs.size()));
  w.U64(record.generation);
  for (const AttrRun& run : record.runs) {
    w.U64(run.first_page);
    w.U64(run.npages);
    w.U8(static_cast<uint8_t>(run.attr));
    w.Zeros(7);
  }
  return out;
}

Expected<AttrsRecord> DecodeAttrs(ByteSpan public_part, const LayoutRecord& layout) {
  ByteReader r(public_part);
  AttrsRecord record;
  record.region_id = r.U32("region_id");
  uint32_t count = r.U32("run_count");
  record.generation = r.U64("generation");
  if (!r.ok()) return r.status();
  if (count > kMaxAttrRuns || r.remaining() != uint64_t{count} * kAttrRunSize) {
    return CorruptError("ATTRS run_count " + Num(count) + " does not fit its " + Num(r.remaining()) + " bytes");
  }
  GMEM_ASSIGN_OR_RETURN(const Region* region, LookupRegion(layout, record.region_id));
  record.runs.resize(count);
  for (AttrRun& run : record.runs) {
    run.first_page = r.U64("first_page");
    run.npages = r.U64("npages");
    run.attr = static_cast<PageAttr>(r.U8("attr"));
    r.ZerosOk(7, "attribute run reserved");
  }
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("ATTRS"));
  GMEM_RETURN_IF_ERROR(ValidateAttrRuns(record.runs, *region, Code::kCorrupt));
  return record;
}

// ---- PRIVATE ----

static Status ValidateBlobs(const std::vector<PrivateBlob>& blobs, const Region& region, Code code) {
  if (blobs.empty() || blobs.size() > kMaxBlobs) {
    return Status(code, "PRIVATE blob_count " + Num(blobs.size()) + " is outside 1.." + Num(kMaxBlobs));
  }
  for (size_t i = 0; i < blobs.size(); ++i) {
    const PrivateBlob& b = blobs[i];
    std::string which = "private blob " + Num(i);
    if (b.page >= region.npages()) return Status(code, which + " lies outside region " + Num(region.id));
    if (i > 0 && b.page <= blobs[i - 1].page) return Status(code, which + " is out of order");
    if (b.blob.empty() || b.blob.size() > kMaxBlobBytes) {
      return Status(code, which + " has length " + Num(b.blob.size()) + " (allowed 1.." + Num(kMaxBlobBytes) + ")");
    }
  }
  return Status::Ok();
}

Status EncodePrivate(const PrivateRecord& record, const Region& region, Bytes& public_part,
                     Bytes& sealed_part) {
  if (record.region_id != region.id) return InvalidArgument("PRIVATE region id does not match region");
  GMEM_RETURN_IF_ERROR(ValidateBlobs(record.blobs, region, Code::kInvalidArgument));
  public_part.clear();
  ByteWriter p(public_part);
  p.U32(record.region_id);
  p.U32(static_cast<uint32_t>(record.blobs.size()));
  p.U64(record.generation);
  p.U32(record.epoch);
  p.U32(0);
  sealed_part.clear();
  ByteWriter s(sealed_part);
  for (const PrivateBlob& b : record.blobs) {
    s.U64(b.page);
    s.U32(static_cast<uint32_t>(b.blob.size()));
    s.U32(0);
    s.Raw(b.blob);
  }
  return Status::Ok();
}

Expected<PrivateRecord> DecodePrivate(ByteSpan public_part, ByteSpan sealed_part,
                                      const LayoutRecord& layout) {
  ByteReader p(public_part);
  PrivateRecord record;
  record.region_id = p.U32("region_id");
  uint32_t count = p.U32("blob_count");
  record.generation = p.U64("generation");
  record.epoch = p.U32("epoch");
  p.ZerosOk(4, "PRIVATE reserved");
  GMEM_RETURN_IF_ERROR(p.ExpectEnd("PRIVATE summary"));
  if (count == 0 || count > kMaxBlobs) {
    return CorruptError("PRIVATE blob_count " + Num(count) + " is outside 1.." + Num(kMaxBlobs));
  }
  GMEM_ASSIGN_OR_RETURN(const Region* region, LookupRegion(layout, record.region_id));
  // Each entry needs at least its header and one byte: bound the count by the bytes present.
  if (uint64_t{count} * (kBlobEntryHeaderSize + 1) > sealed_part.size()) {
    return CorruptError("PRIVATE blob_count " + Num(count) + " does not fit " + Num(sealed_part.size()) + " bytes");
  }
  ByteReader s(sealed_part);
  record.blobs.resize(count);
  for (PrivateBlob& b : record.blobs) {
    b.page = s.U64("blob page");
    uint32_t length = s.U32("blob length");
    s.ZerosOk(4, "blob reserved");
    if (!s.ok()) return s.status();
    if (length == 0 || length > kMaxBlobBytes) {
      return CorruptError("private blob length " + Num(length) + " is outside 1.." + Num(kMaxBlobBytes));
    }
    ByteSpan bytes = s.Raw(length, "blob");
    if (!s.ok()) return s.status();
    b.blob.assign(bytes.begin(), bytes.end());
  }
  GMEM_RETURN_IF_ERROR(s.ExpectEnd("PRIVATE"));
  GMEM_RETURN_IF_ERROR(ValidateBlobs(record.blobs, *region, Code::kCorrupt));
  return record;
}

// ---- PASS ----

Expected<Bytes> EncodePass(const PassRecord& record) {
  if (record.pass == 0) return InvalidArgument("pass numbers start at 1");
  if ((record.flags & ~kPassKnownFlags) != 0) return InvalidArgument("unknown PASS flags");
  Bytes out;
  ByteWriter w(out);
  w.U32(record.pass);
  w.U32(record.flags);
  for (uint64_t v : {record.data_pages, record.zero_pages, record.private_pages, record.attr_changes,
                     record.wire_bytes, record.dirty_pages, record.elapsed_us}) {
    w.U64(v);
  }
  return out;
}

Expected<PassRecord> DecodePass(ByteSpan public_part) {
  ByteReader r(public_part);
  PassRecord rec;
  rec.pass = r.U32("pass");
  rec.flags = r.U32("flags");
  for (uint64_t* v : {&rec.data_pages, &rec.zero_pages, &rec.private_pages, &rec.attr_changes,
                      &rec.wire_bytes, &rec.dirty_pages, &rec.elapsed_us}) {
    *v = r.U64("pass counter");
  }
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("PASS"));
  if (rec.pass == 0) return CorruptError("PASS number 0 is invalid");
  if ((rec.flags & ~kPassKnownFlags) != 0) return CorruptError("PASS has unknown flags " + Num(rec.flags));
  return rec;
}

// ---- STATE ----

static Status ValidateState(const StateRecord& record, Code code) {
  if (record.entries.empty() || record.entries.size() > kMaxStateEntries) {
    return Status(code, "STATE entry count " + Num(record.entries.size()) + " is outside 1.." + Num(kMaxStateEntries));
  }
  std::set<std::string> names;
  for (const StateEntry& e : record.entries) {
    if (!ValidStateName(e.name)) return Status(code, "STATE entry name is not [a-z0-9._/-]{1,64}");
    if (!names.insert(e.name).second) return Status(code, "STATE entry '" + e.name + "' appears twice");
    if (e.blob.size() > kMaxStateBlobBytes) return Status(code, "STATE entry '" + e.name + "' is too large");
  }
  return Status::Ok();
}

Status EncodeState(const StateRecord& record, Bytes& public_part, Bytes& sealed_part) {
  GMEM_RETURN_IF_ERROR(ValidateState(record, Code::kInvalidArgument));
  public_part.clear();
  ByteWriter p(public_part);
  p.U32(static_cast<uint32_t>(record.entries.size()));
  p.U32(0);
  sealed_part.clear();
  ByteWriter s(sealed_part);
  for (const StateEntry& e : record.entries) {
    s.U16(static_cast<uint16_t>(e.name.size()));
    s.U16(0);
    s.U32(static_cast<uint32_t>(e.blob.size()));
    s.Raw(AsBytes(e.name));
    s.Raw(e.blob);
  }
  if (sealed_part.size() > kMaxSealedLength) return InvalidArgument("STATE record exceeds 64 MiB");
  return Status::Ok();
}

Expected<StateRecord> DecodeState(ByteSpan public_part, ByteSpan sealed_part) {
  ByteReader p(public_part);
  uint32_t count = p.U32("entry_count");
  p.ZerosOk(4, "STATE reserved");
  GMEM_RETURN_IF_ERROR(p.ExpectEnd("STATE summary"));
  if (count == 0 || count > kMaxStateEntries) {
    return CorruptError("STATE entry_count " + Num(count) + " is outside 1.." + Num(kMaxStateEntries));
  }
  if (uint64_t{count} * (kStateEntryHeaderSize + 1) > sealed_part.size()) {
    return CorruptError("STATE entry_count " + Num(count) + " does not fit " + Num(sealed_part.size()) + " bytes");
  }
  ByteReader s(sealed_part);
  StateRecord record;
  record.entries.resize(count);
  for (StateEntry& e : record.entries) {
    uint16_t name_length = s.U16("name_length");
    s.ZerosOk(2, "STATE entry reserved");
    uint32_t blob_length = s.U32("blob_length");
    if (!s.ok()) return s.status();
    if (name_length == 0 || name_length > kMaxStateNameLength || blob_length > kMaxStateBlobBytes) {
      return CorruptError("STATE entry lengths out of range (name " + Num(name_length) + ", blob " + Num(blob_length) + ")");
    }
    ByteSpan name = s.Raw(name_length, "state name");
    ByteSpan blob = s.Raw(blob_length, "state blob");
    if (!s.ok()) return s.status();
    e.name.assign(reinterpret_cast<const char*>(name.data()), name.size());
    e.blob.assign(blob.begin(), blob.end());
  }
  GMEM_RETURN_IF_ERROR(s.ExpectEnd("STATE"));
  GMEM_RETURN_IF_ERROR(ValidateState(record, Code::kCorrupt));
  return record;
}

// ---- END ----

Bytes EncodeEnd(const EndRecord& record) {
  Bytes out;
  ByteWriter w(out);
  w.U64(record.record_count);
  w.U64(record.data_pages);
  w.U64(record.zero_pages);
  w.U64(record.private_pages);
  w.U64(record.raw_bytes);
  w.Raw(record.digest);
  return out;
}

Expected<EndRecord> DecodeEnd(ByteSpan public_part) {
  ByteReader r(public_part);
  EndRecord rec;
  rec.record_count = r.U64("record_count");
  rec.data_pages = r.U64("data_pages");
  rec.zero_pages = r.U64("zero_pages");
  rec.private_pages = r.U64("private_pages");
  rec.raw_bytes = r.U64("raw_bytes");
  ByteSpan digest = r.Raw(kDigestSize, "digest");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("END"));
  std::copy(digest.begin(), digest.end(), rec.digest.begin());
  return rec;
}

}  // namespace gmem::format
