// Agent, part two: moving pages — EXPORT (seal private pages into the bounce buffer), IMPORT
// (open blobs from it and write the pages in place, private), DIRTY, and FINISH, which seals
// (export) or checks (import) the manifest of the session's private pages.

#include <cstring>
#include <string>

#include "agent/agent.h"
#include "format/crypto.h"

namespace gmem::agent {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }
std::string PrivatePages(uint64_t n) { return Num(n) + (n == 1 ? " private page" : " private pages"); }

// Wipes the agent's scratch when the request is done, however it ends: no opened page stays.
struct ScratchWipe {
  SecretBytes& s;
  ~ScratchWipe() { SecureWipe(s.data(), s.size()); }
};

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
      session_.last_export[gfn] = h.sequence;
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
  ScratchWipe wipe{scratch_};
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
    if (sequences[i] > session_.max_import_sequence) session_.max_import_sequence = sequences[i];
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

// ---- FINISH (§4.7) ----

Expected<Agent::PrivateSummary> Agent::SummarisePrivatePages(const GuestPlatform& platform,
                                                             const std::unordered_map<uint64_t, uint64_t>& last) const {
  GMEM_ASSIGN_OR_RETURN(format::Sha256Stream sha, format::Sha256Stream::Create());
  PrivateSummary out;
  // The digest input, (u64 gfn, u64 sequence) per page in ascending gfn order, in batches.
  constexpr size_t kBatch = 256;
  std::byte batch[kBatch * kManifestEntryBytes];
  size_t n = 0;
  const uint64_t limit = platform.gfn_limit();
  for (uint64_t gfn = platform.NextPrivate(0); gfn < limit; gfn = platform.NextPrivate(gfn + 1)) {
    if (!GfnAllowed(platform, gfn)) continue;
    ++out.count;
    auto it = last.find(gfn);
    if (it == last.end()) {
      if (!out.first_missing) out.first_missing = gfn;
      continue;
    }
    StoreLe<uint64_t>(batch + n * kManifestEntryBytes, gfn);
    StoreLe<uint64_t>(batch + n * kManifestEntryBytes + 8, it->second);
    if (++n == kBatch) {
      sha.Update(ByteSpan(batch, n * kManifestEntryBytes));
      n = 0;
    }
  }
  sha.Update(ByteSpan(batch, n * kManifestEntryBytes));
  format::Digest d = sha.Peek();
  std::copy(d.begin(), d.end(), out.digest.begin());
  return out;
}

Agent::Reply Agent::Finish(GuestPlatform& platform, ByteSpan body, const SharedArea& area) {
  auto request = DecodeFinishRequest(body);
  if (!request.ok()) return Error(AgentStatus::kMalformed, request.status().message());
  if (session_.state != State::kReady) {
    return Error(AgentStatus::kBadState, "FINISH needs a session whose key agreement is complete");
  }
  return session_.role == Role::kExport ? FinishExport(platform, *request, area)
                                        : FinishImport(platform, *request, area);
}

Agent::Reply Agent::CheckNothingDirty(GuestPlatform& platform) {
  // The same question as DIRTY, from gfn 0 over all of guest RAM; one dirty page is enough.
  for (uint64_t cursor = 0; cursor < platform.gfn_limit();) {
    std::vector<uint64_t> dirty;
    auto next = platform.CollectDirty(cursor, 1, dirty);
    if (!next.ok()) return Error(AgentStatus::kInternal, next.status().message());
    if (!dirty.empty()) {
      if (!session_.last_export.contains(dirty[0])) {
        return Error(AgentStatus::kBadState, "private page " + Num(dirty[0]) + " was never exported in this session");
      }
      return Error(AgentStatus::kBadState,
                   "page " + Num(dirty[0]) + " changed since its last export: export it before FINISH");
    }
    if (*next <= cursor) return Error(AgentStatus::kInternal, "the platform's dirty scan did not advance");
    cursor = *next;
  }
  return Reply{};
}

Agent::Reply Agent::FinishExport(GuestPlatform& platform, const FinishRequest& request, const SharedArea& area) {
  if (request.length != 0) return Error(AgentStatus::kMalformed, "FINISH of an export session carries no manifest (length 0)");
  // Refusals here are not security failures: the host exports what is missing and asks again.
  const bool tracked = platform.tracks_private_writes();
  if (tracked) {
    if (Reply dirty = CheckNothingDirty(platform); dirty.status != AgentStatus::kOk) return dirty;
  }
  auto summary = SummarisePrivatePages(platform, session_.last_export);
  if (!summary.ok()) return Error(AgentStatus::kInternal, summary.status().message());
  if (summary->first_missing) {
    return Error(AgentStatus::kBadState,
                 "private page " + Num(*summary->first_missing) + " was never exported in this session");
  }
  if (summary->count > UINT32_MAX) {
    return Error(AgentStatus::kLimit, Num(summary->count) + " private pages: a manifest covers at most 2^32 - 1");
  }
  Manifest manifest;
  manifest.flags = tracked ? 0 : kManifestFlagUntracked;
  manifest.count = summary->count;
  manifest.digest = summary->digest;
  MutableByteSpan page = scratch_.span().first(kPageBytes);
  MutableByteSpan blob = scratch_.span().subspan(kMaxPagesPerRequest * kPageBytes, kBlobBytes);
  EncodeManifest(manifest, page);
  BlobHeader h;
  h.gfn = kManifestGfn;
  h.epoch = session_.epoch;
  h.sequence = session_.next_sequence++;  // the nonce stays unique: a manifest is a blob like any other
  Status sealed = session_.cipher->Seal(h, page, blob);
  SecureWipe(page.data(), page.size());
  if (!sealed.ok()) return Error(AgentStatus::kInternal, "sealing the manifest: " + sealed.message());
  std::memcpy(area.bounce.data(), blob.data(), kBlobBytes);
  // The manifest is the session's last word: nothing is sealed under its key after it.
  session_.state = State::kFinished;
  session_.cipher.reset();
  FinishResponse out;
  out.count = static_cast<uint32_t>(manifest.count);
  out.flags = manifest.flags;
  out.length = kBlobBytes;
  return Reply{AgentStatus::kOk, 0, EncodeFinishResponse(out)};
}

Agent::Reply Agent::FinishImport(GuestPlatform& platform, const FinishRequest& request, const SharedArea& area) {
  if (request.length != kBlobBytes) {
    return Error(AgentStatus::kMalformed, "FINISH of an import session needs the exporter's manifest (length " +
                                              Num(kBlobBytes) + ")");
  }
  ScratchWipe wipe{scratch_};
  MutableByteSpan page = scratch_.span().first(kPageBytes);
  MutableByteSpan blob = scratch_.span().subspan(kMaxPagesPerRequest * kPageBytes, kBlobBytes);
  std::memcpy(blob.data(), area.bounce.data(), kBlobBytes);  // single fetch
  auto header = DecodeBlobHeader(blob);
  if (!header.ok()) return Error(AgentStatus::kMalformed, "the manifest: " + header.status().message());
  if (header->gfn != kManifestGfn) {
    return Fail(AgentStatus::kMalformed, "the manifest is a blob sealed for gfn " + Num(header->gfn) + ", not a manifest");
  }
  if (header->epoch != session_.epoch) {
    return Fail(AgentStatus::kWrongEpoch, "the manifest is of epoch " + Num(header->epoch) +
                                              ", this session's epoch is " + Num(session_.epoch));
  }
  auto opened = session_.cipher->Open(blob, page);
  if (!opened.ok()) {
    if (opened.status().code() == Code::kAuth) {
      return Fail(AgentStatus::kAuth, "the manifest failed authentication (altered, or sealed under another key)");
    }
    return Error(AgentStatus::kInternal, "the manifest: " + opened.status().message());
  }
  if (opened->sequence <= session_.max_import_sequence) {
    return Fail(AgentStatus::kReplay, "the manifest's sequence " + Num(opened->sequence) +
                                          " is not above every blob imported in this session (" +
                                          Num(session_.max_import_sequence) + "): it is not its exporter's last word");
  }
  auto manifest = DecodeManifest(page);
  if (!manifest.ok()) return Fail(AgentStatus::kMalformed, "the manifest: " + manifest.status().message());
  if (manifest->count > UINT32_MAX) return Fail(AgentStatus::kMalformed, "the manifest counts more than 2^32 - 1 pages");
  auto here = SummarisePrivatePages(platform, session_.last_import);
  if (!here.ok()) return Error(AgentStatus::kInternal, here.status().message());
  const std::string stale = "the private pages here are not the exporter's latest: ";
  if (here->count != manifest->count) {
    return Fail(AgentStatus::kIncomplete, stale + PrivatePages(here->count) + " here, " + Num(manifest->count) +
                                              " in the manifest");
  }
  if (here->first_missing) {
    return Fail(AgentStatus::kIncomplete, stale + "private page " + Num(*here->first_missing) +
                                              " was never imported in this session (withheld)");
  }
  if (here->digest != manifest->digest) {
    return Fail(AgentStatus::kIncomplete, stale + "the same number of private pages (" + Num(here->count) +
                                              "), but other pages or other versions: a page's newest blob was "
                                              "withheld or replayed");
  }
  session_.state = State::kFinished;
  session_.cipher.reset();
  FinishResponse out;
  out.count = static_cast<uint32_t>(manifest->count);
  out.flags = manifest->flags;
  return Reply{AgentStatus::kOk, 0, EncodeFinishResponse(out)};
}

}  // namespace gmem::agent
