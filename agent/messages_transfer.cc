// Agent messages, part two: the bodies that move pages — EXPORT, IMPORT, DIRTY, ABORT, FINISH and
// its manifest — and the error body (docs/agent-protocol.md §3.3, §4.3-§4.7, §6.1). Part one (names, headers, HELLO, PEER) is
// messages.cc.

#include <algorithm>
#include <string>

#include "agent/messages.h"

namespace gmem::agent {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

bool InBounce(uint64_t offset, uint64_t length) { return offset <= kBounceBytes && length <= kBounceBytes - offset; }

}  // namespace

// ---- EXPORT ----

Bytes EncodeExportRequest(const ExportRequest& q) {
  Bytes out;
  ByteWriter w(out);
  w.U32(static_cast<uint32_t>(q.gfns.size()));
  w.Zeros(4);
  for (uint64_t gfn : q.gfns) w.U64(gfn);
  return out;
}

Expected<ExportRequest> DecodeExportRequest(ByteSpan body) {
  ByteReader r(body);
  uint32_t count = r.U32("count");
  r.ZerosOk(4, "EXPORT reserved");
  if (!r.ok()) return r.status();
  if (count == 0 || count > kMaxPagesPerRequest) {
    return CorruptError("EXPORT count " + Num(count) + " is outside 1.." + Num(kMaxPagesPerRequest));
  }
  if (r.remaining() != uint64_t{count} * 8) return CorruptError("EXPORT body does not hold " + Num(count) + " gfns");
  ExportRequest q;
  q.gfns.reserve(count);
  for (uint32_t i = 0; i < count; ++i) q.gfns.push_back(r.U64("gfn"));
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("EXPORT"));
  return q;
}

Bytes EncodeExportResponse(const ExportResponse& s) {
  Bytes out;
  ByteWriter w(out);
  uint32_t exported = 0;
  for (const ExportEntry& e : s.entries) exported += e.status == AgentStatus::kOk ? 1 : 0;
  w.U32(static_cast<uint32_t>(s.entries.size()));
  w.U32(exported);
  for (const ExportEntry& e : s.entries) {
    w.U64(e.gfn);
    w.U32(e.offset);
    w.U32(e.length);
    w.U16(static_cast<uint16_t>(e.status));
    w.Zeros(6);
  }
  return out;
}

Expected<ExportResponse> DecodeExportResponse(ByteSpan body) {
  ByteReader r(body);
  uint32_t count = r.U32("count");
  uint32_t exported = r.U32("exported");
  if (!r.ok()) return r.status();
  if (count == 0 || count > kMaxPagesPerRequest || r.remaining() != uint64_t{count} * kExportEntryBytes) {
    return CorruptError("EXPORT response: bad entry count " + Num(count));
  }
  ExportResponse s;
  uint32_t ok = 0;
  for (uint32_t i = 0; i < count; ++i) {
    ExportEntry e;
    e.gfn = r.U64("gfn");
    e.offset = r.U32("offset");
    e.length = r.U32("length");
    uint16_t status = r.U16("status");
    r.ZerosOk(6, "EXPORT entry reserved");
    if (!r.ok()) return r.status();
    if (status > kMaxAgentStatus) return CorruptError("EXPORT response: entry " + Num(i) + " has unknown status");
    e.status = static_cast<AgentStatus>(status);
    if (e.status == AgentStatus::kOk) {
      ++ok;
      if (e.length == 0 || !InBounce(e.offset, e.length)) {
        return CorruptError("EXPORT response: entry " + Num(i) + " lies outside the bounce buffer");
      }
    } else if (e.length != 0) {
      return CorruptError("EXPORT response: failed entry " + Num(i) + " has a length");
    }
    s.entries.push_back(e);
  }
  if (ok != exported) return CorruptError("EXPORT response: exported count does not match its entries");
  return s;
}

// ---- IMPORT ----

Bytes EncodeImportRequest(const ImportRequest& q) {
  Bytes out;
  ByteWriter w(out);
  w.U32(static_cast<uint32_t>(q.entries.size()));
  w.Zeros(4);
  for (const ImportEntry& e : q.entries) {
    w.U64(e.gfn);
    w.U32(e.offset);
    w.U32(e.length);
  }
  return out;
}

Expected<ImportRequest> DecodeImportRequest(ByteSpan body) {
  ByteReader r(body);
  uint32_t count = r.U32("count");
  r.ZerosOk(4, "IMPORT reserved");
  if (!r.ok()) return r.status();
  if (count == 0 || count > kMaxPagesPerRequest) {
    return CorruptError("IMPORT count " + Num(count) + " is outside 1.." + Num(kMaxPagesPerRequest));
  }
  if (r.remaining() != uint64_t{count} * kImportEntryBytes) {
    return CorruptError("IMPORT body does not hold " + Num(count) + " entries");
  }
  ImportRequest q;
  q.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    ImportEntry e;
    e.gfn = r.U64("gfn");
    e.offset = r.U32("offset");
    e.length = r.U32("length");
    q.entries.push_back(e);
  }
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("IMPORT"));
  return q;
}

Bytes EncodeImportResponse(const ImportResponse& s) {
  Bytes out;
  ByteWriter w(out);
  w.U32(s.imported);
  w.Zeros(4);
  return out;
}

Expected<ImportResponse> DecodeImportResponse(ByteSpan body) {
  ByteReader r(body);
  ImportResponse s;
  s.imported = r.U32("imported");
  r.ZerosOk(4, "IMPORT response reserved");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("IMPORT response"));
  return s;
}

// ---- DIRTY ----

Bytes EncodeDirtyRequest(const DirtyRequest& q) {
  Bytes out;
  ByteWriter w(out);
  w.U64(q.cursor);
  w.U32(q.max_entries);
  w.Zeros(4);
  return out;
}

Expected<DirtyRequest> DecodeDirtyRequest(ByteSpan body) {
  ByteReader r(body);
  DirtyRequest q;
  q.cursor = r.U64("cursor");
  q.max_entries = r.U32("max_entries");
  r.ZerosOk(4, "DIRTY reserved");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("DIRTY"));
  if (q.max_entries > kMaxDirtyPerRequest) {
    return CorruptError("DIRTY max_entries " + Num(q.max_entries) + " exceeds " + Num(kMaxDirtyPerRequest));
  }
  return q;
}

Bytes EncodeDirtyResponse(const DirtyResponse& s) {
  Bytes out;
  ByteWriter w(out);
  w.U32(s.count);
  w.U32(s.flags);
  w.U64(s.next_cursor);
  return out;
}

Expected<DirtyResponse> DecodeDirtyResponse(ByteSpan body) {
  ByteReader r(body);
  DirtyResponse s;
  s.count = r.U32("count");
  s.flags = r.U32("flags");
  s.next_cursor = r.U64("next_cursor");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("DIRTY response"));
  if ((s.flags & ~(kDirtyFlagAll | kDirtyFlagMore)) != 0) return CorruptError("DIRTY response: unknown flags");
  if (s.count > kMaxDirtyPerRequest) return CorruptError("DIRTY response: count " + Num(s.count) + " too large");
  if ((s.flags & kDirtyFlagAll) != 0 && s.count != 0) return CorruptError("DIRTY response: ALL with a list");
  return s;
}

// ---- ABORT ----

Bytes EncodeAbortRequest(const AbortRequest& q) {
  Bytes out;
  ByteWriter w(out);
  w.U32(q.reason);
  w.Zeros(4);
  return out;
}

Expected<AbortRequest> DecodeAbortRequest(ByteSpan body) {
  ByteReader r(body);
  AbortRequest q;
  q.reason = r.U32("reason");
  r.ZerosOk(4, "ABORT reserved");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("ABORT"));
  return q;
}

// ---- FINISH ----

namespace {

Status CheckFinishLength(uint32_t length, const char* what) {
  if (length != 0 && length != kBlobBytes) {
    return CorruptError(std::string(what) + " length " + Num(length) + " is neither 0 nor " + Num(kBlobBytes));
  }
  return Status::Ok();
}

}  // namespace

Bytes EncodeFinishRequest(const FinishRequest& q) {
  Bytes out;
  ByteWriter w(out);
  w.U32(q.length);
  w.Zeros(4);
  return out;
}

Expected<FinishRequest> DecodeFinishRequest(ByteSpan body) {
  ByteReader r(body);
  FinishRequest q;
  q.length = r.U32("length");
  r.ZerosOk(4, "FINISH reserved");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("FINISH"));
  GMEM_RETURN_IF_ERROR(CheckFinishLength(q.length, "FINISH"));
  return q;
}

Bytes EncodeFinishResponse(const FinishResponse& s) {
  Bytes out;
  ByteWriter w(out);
  w.U32(s.count);
  w.U32(s.flags);
  w.U32(s.length);
  w.Zeros(4);
  return out;
}

Expected<FinishResponse> DecodeFinishResponse(ByteSpan body) {
  ByteReader r(body);
  FinishResponse s;
  s.count = r.U32("count");
  s.flags = r.U32("flags");
  s.length = r.U32("length");
  r.ZerosOk(4, "FINISH response reserved");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("FINISH response"));
  if ((s.flags & ~uint32_t{kManifestFlagUntracked}) != 0) return CorruptError("FINISH response: unknown flags");
  GMEM_RETURN_IF_ERROR(CheckFinishLength(s.length, "FINISH response"));
  return s;
}

void EncodeManifest(const Manifest& m, MutableByteSpan page) {
  std::byte* p = page.data();
  // SAFETY: REQUIRES page.size() == kPageBytes; the header ends at kManifestHeaderBytes (48).
  std::fill(page.begin(), page.end(), std::byte{0});
  StoreLe<uint32_t>(p + 0, kManifestMagic);
  StoreLe<uint16_t>(p + 4, kManifestVersion);
  StoreLe<uint16_t>(p + 6, m.flags);
  StoreLe<uint64_t>(p + 8, m.count);
  std::copy(m.digest.begin(), m.digest.end(), p + 16);
}

Expected<Manifest> DecodeManifest(ByteSpan page) {
  if (page.size() != kPageBytes) return CorruptError("a manifest is one 4 KiB page, not " + Num(page.size()) + " bytes");
  ByteReader r(page);
  uint32_t magic = r.U32("magic");
  uint16_t version = r.U16("version");
  Manifest m;
  m.flags = r.U16("flags");
  m.count = r.U64("count");
  ByteSpan digest = r.Raw(kManifestDigestBytes, "digest");
  if (!r.ok()) return r.status();
  if (magic != kManifestMagic) return CorruptError("not a manifest (bad magic)");
  if (version != kManifestVersion) return CorruptError("manifest version " + Num(version) + " (this agent reads 1)");
  if ((m.flags & ~kManifestFlagUntracked) != 0) return CorruptError("manifest: unknown flags");
  std::copy(digest.begin(), digest.end(), m.digest.begin());
  r.ZerosOk(kPageBytes - kManifestHeaderBytes, "manifest padding");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("manifest"));
  return m;
}

// ---- error body ----

Bytes EncodeErrorBody(std::string_view text) {
  if (text.size() > kMaxErrorTextBytes) text = text.substr(0, kMaxErrorTextBytes);
  Bytes out;
  ByteWriter w(out);
  w.U16(static_cast<uint16_t>(text.size()));
  w.Zeros(2);
  w.Raw(AsBytes(text));
  return out;
}

Expected<std::string> DecodeErrorBody(ByteSpan body) {
  ByteReader r(body);
  uint16_t length = r.U16("text_length");
  r.ZerosOk(2, "error reserved");
  if (r.ok() && length > kMaxErrorTextBytes) return CorruptError("error text too long");
  ByteSpan text = r.Raw(length, "error text");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("error body"));
  std::string out;
  for (std::byte b : text) {
    char c = static_cast<char>(b);
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');  // printable only: it ends up in a log line
  }
  return out;
}

}  // namespace gmem::agent
