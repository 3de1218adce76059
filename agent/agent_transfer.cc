// Agent, part two: moving pages — EXPORT (seal private pages into the bounce buffer), IMPORT
// (open blobs from it and write the pages in place, private) and DIRTY.

#include <cstring>
#include <string>

#include "agent/agent.h"

namespace gmem::agent {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

}  // namespace

Agent::Reply Agent::Export(GuestPlatform& platform, ByteSpan body, const SharedArea& area) {
  auto request = DecodeExportRequest(body);
  if (!request.ok()) return Error(AgentStatus::kMalformed, request.status().message());
  if (session_.state != State::kReady || session_.role != Role::kExport) {
    return Error(AgentStatus::kBadState, "EXPORT needs an export session whose key agreement is complete");
  }
  MutableByteSpan page = scratch_.span().first(kPageBytes);
  MutableByteSpan blob = scratch_.span().subspan(kMaxPagesPerRequest * kPageBytes, kBlobBytes);
  ExportResponse out;
  uint32_t offset = 0;
  for (uint64_t gfn : request->gfns) {
    ExportEntry e;
    e.gfn = gfn;
    if (!GfnAllowed(platform, gfn)) {
      e.status = AgentStatus::kOutOfRange;
    } else if (!platform.IsPrivate(gfn)) {
      e.status = AgentStatus::kNotPrivate;
    } else {
      if (Status s = platform.ReadPrivatePage(gfn, page); !s.ok()) {
        return Error(AgentStatus::kInternal, "reading private page " + Num(gfn) + ": " + s.message());
      }
      BlobHeader h;
      h.gfn = gfn;
      h.epoch = session_.epoch;
      h.sequence = session_.next_sequence++;
      if (Status s = session_.cipher->Seal(h, page, blob); !s.ok()) {
        return Error(AgentStatus::kInternal, "sealing page " + Num(gfn) + ": " + s.message());
      }
      // Only ciphertext reaches shared memory.
      std::memcpy(area.bounce.data() + offset, blob.data(), kBlobBytes);
      platform.NoteExported(gfn, page);
      e.offset = offset;
      e.length = kBlobBytes;
      offset += kBlobBytes;
      ++counters_.pages_exported;
    }
    out.entries.push_back(e);
  }
  SecureWipe(page.data(), page.size());
  return Reply{AgentStatus::kOk, 0, EncodeExportResponse(out)};
}

Agent::Reply Agent::Import(GuestPlatform& platform, ByteSpan body, const SharedArea& area) {
  auto request = DecodeImportRequest(body);
  if (!request.ok()) return Error(AgentStatus::kMalformed, request.status().message());
  if (session_.state != State::kReady || session_.role != Role::kImport) {
    return Error(AgentStatus::kBadState, "IMPORT needs an import session whose key agreement is complete");
  }
  const auto& entries = request->entries;
  // Whatever happens, no opened page stays in scratch after this request.
  struct WipeScratch {
    SecretBytes& s;
    ~WipeScratch() { SecureWipe(s.data(), s.size()); }
  } wipe{scratch_};
  // Pass 1: every blob is copied out of shared memory once, checked and opened into private
  // scratch. Nothing is written to the guest unless every blob of the request is good.
  std::unordered_map<uint64_t, uint64_t> pending;  // gfn -> highest sequence in this request
  std::vector<uint64_t> sequences;
  MutableByteSpan blob = scratch_.span().subspan(kMaxPagesPerRequest * kPageBytes, kBlobBytes);
  for (uint32_t i = 0; i < entries.size(); ++i) {
    const ImportEntry& e = entries[i];
    const std::string which = "entry " + Num(i) + " (gfn " + Num(e.gfn) + ")";
    if (!GfnAllowed(platform, e.gfn)) return Error(AgentStatus::kOutOfRange, which + " is not guest RAM the agent may import into", i);
    if (e.length != kBlobBytes) {
      return Error(AgentStatus::kMalformed, which + ": a blob is " + Num(kBlobBytes) + " bytes, not " + Num(e.length), i);
    }
    if (uint64_t{e.offset} + e.length > kBounceBytes) return Error(AgentStatus::kLimit, which + " lies outside the bounce buffer", i);
    std::memcpy(blob.data(), area.bounce.data() + e.offset, kBlobBytes);
    auto header = DecodeBlobHeader(blob);
    if (!header.ok()) return Error(AgentStatus::kMalformed, which + ": " + header.status().message(), i);
    if (header->epoch != session_.epoch) {
      return Fail(AgentStatus::kWrongEpoch,
                  which + ": the blob is of epoch " + Num(header->epoch) + ", this session's epoch is " + Num(session_.epoch), i);
    }
    if (header->gfn != e.gfn) {
      return Fail(AgentStatus::kWrongGfn, which + ": the blob was sealed for gfn " + Num(header->gfn), i);
    }
    MutableByteSpan page = scratch_.span().subspan(size_t{i} * kPageBytes, kPageBytes);
    auto opened = session_.cipher->Open(blob, page);
    if (!opened.ok()) {
      if (opened.status().code() == Code::kAuth) {
        return Fail(AgentStatus::kAuth, which + ": the blob failed authentication (altered, or sealed under another key)", i);
      }
      return Error(AgentStatus::kInternal, which + ": " + opened.status().message(), i);
    }
    uint64_t last = 0;
    if (auto it = session_.last_import.find(e.gfn); it != session_.last_import.end()) last = it->second;
    if (auto it = pending.find(e.gfn); it != pending.end() && it->second > last) last = it->second;
    if (opened->sequence <= last) {
      return Fail(AgentStatus::kReplay, which + ": sequence " + Num(opened->sequence) +
                                            " is not above the last one imported for this page (" + Num(last) +
                                            "): a replayed or reordered blob", i);
    }
    pending[e.gfn] = opened->sequence;
    sequences.push_back(opened->sequence);
  }
  // Pass 2: accept each page as private and write it in place.
  for (uint32_t i = 0; i < entries.size(); ++i) {
    ByteSpan page = scratch_.span().subspan(size_t{i} * kPageBytes, kPageBytes);
    if (Status s = platform.WritePrivatePage(entries[i].gfn, page); !s.ok()) {
      return Fail(AgentStatus::kInternal, "writing page " + Num(entries[i].gfn) + ": " + s.message(), i);
    }
    session_.last_import[entries[i].gfn] = sequences[i];
    ++counters_.pages_imported;
  }
  ImportResponse out;
  out.imported = static_cast<uint32_t>(entries.size());
  return Reply{AgentStatus::kOk, 0, EncodeImportResponse(out)};
}

Agent::Reply Agent::Dirty(GuestPlatform& platform, ByteSpan body, const SharedArea& area) {
  auto request = DecodeDirtyRequest(body);
  if (!request.ok()) return Error(AgentStatus::kMalformed, request.status().message());
  if (session_.state != State::kReady || session_.role != Role::kExport) {
    return Error(AgentStatus::kBadState, "DIRTY needs an export session whose key agreement is complete");
  }
  DirtyResponse out;
  if (!platform.tracks_private_writes()) {
    out.flags = kDirtyFlagAll;
    return Reply{AgentStatus::kOk, 0, EncodeDirtyResponse(out)};
  }
  uint32_t max = request->max_entries == 0 ? kMaxDirtyPerRequest : request->max_entries;
  std::vector<uint64_t> gfns;
  auto next = platform.CollectDirty(request->cursor, max, gfns);
  if (!next.ok()) return Error(AgentStatus::kInternal, next.status().message());
  if (gfns.size() > max) return Error(AgentStatus::kInternal, "the platform reported too many dirty pages");
  for (size_t i = 0; i < gfns.size(); ++i) StoreLe<uint64_t>(area.bounce.data() + 8 * i, gfns[i]);
  out.count = static_cast<uint32_t>(gfns.size());
  out.next_cursor = *next;
  if (*next < platform.gfn_limit()) out.flags |= kDirtyFlagMore;
  return Reply{AgentStatus::kOk, 0, EncodeDirtyResponse(out)};
}

}  // namespace gmem::agent
