#include "agent/agent_client.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "format/crypto.h"

namespace gmem::agent {
namespace {

// How long the client waits for an agent that answers after the doorbell returned.
constexpr std::chrono::seconds kResponseTimeout{30};

std::string Num(uint64_t v) { return std::to_string(v); }

}  // namespace

Code CodeForAgentStatus(AgentStatus status) {
  switch (status) {
    case AgentStatus::kOk: return Code::kOk;
    case AgentStatus::kMalformed: return Code::kProtocol;
    case AgentStatus::kVersion: return Code::kIncompatible;
    case AgentStatus::kBadState: return Code::kProtocol;
    case AgentStatus::kNotProvisioned: return Code::kUnsupported;
    case AgentStatus::kAuth:
    case AgentStatus::kIdentity:
    case AgentStatus::kWrongEpoch:
    case AgentStatus::kWrongGfn:
    case AgentStatus::kReplay: return Code::kAuth;
    case AgentStatus::kNotPrivate:
    case AgentStatus::kOutOfRange:
    case AgentStatus::kLimit: return Code::kInvalidArgument;
    case AgentStatus::kSessionFailed: return Code::kProtocol;
    case AgentStatus::kInternal: return Code::kIo;
    case AgentStatus::kIncomplete: return Code::kAuth;
  }
  return Code::kProtocol;
}

Expected<AgentClient> AgentClient::Create(MutableByteSpan area, Doorbell& doorbell) {
  if (area.size() != kAreaBytes) return InvalidArgument("the agent area is " + Num(kAreaBytes) + " bytes");
  AgentClient client(area, doorbell);
  // A random first request id: a response left in the page by an earlier client never matches.
  std::byte first[8];
  GMEM_RETURN_IF_ERROR(format::RandomFill(MutableByteSpan(first, 8)));
  client.next_request_id_ = (LoadLe<uint64_t>(first) >> 1) + 1;
  return client;
}

Expected<AgentClient> AgentClient::ForMapping(const memory::GuestMemfdMapping& mapping, const memory::Region& region,
                                              Doorbell& doorbell) {
  if (kAreaGpa < region.gpa_base || kAreaGpa + kAreaBytes > region.gpa_end()) {
    return InvalidArgument("region " + Num(region.id) + " does not hold the agent area (GPA 0x140000..0x200000)");
  }
  uint64_t offset = region.gmem_offset + (kAreaGpa - region.gpa_base);
  if (offset + kAreaBytes > mapping.size_bytes()) return InvalidArgument("the mapping does not hold the agent area");
  // SAFETY: [offset, offset + kAreaBytes) lies inside the mapping (checked above).
  return Create(MutableByteSpan(mapping.data() + offset, kAreaBytes), doorbell);
}

namespace {

// Orders the host's accesses to the mailbox against the agent's, which runs in another process
// (or in the guest). ThreadSanitizer rejects thread fences (GCC: -Werror=tsan) and cannot see
// the other side anyway; there a compiler barrier remains, and the doorbell's syscall orders.
inline void MailboxFence(std::memory_order order) {
#if defined(__SANITIZE_THREAD__)
  std::atomic_signal_fence(order);
#else
  std::atomic_thread_fence(order);
#endif
}

}  // namespace

Expected<Bytes> AgentClient::Call(MessageType type, ByteSpan body) {
  const uint64_t id = next_request_id_++;
  auto start = std::chrono::steady_clock::now();
  RequestHeader h;
  h.type = type;
  h.minor = MessageMinor(type);  // an agent of an older minor still serves what it knows (§1)
  h.body_length = static_cast<uint32_t>(body.size());
  h.request_id = id;
  std::byte page[kMailboxPageBytes] = {};
  GMEM_RETURN_IF_ERROR(EncodeRequest(h, body, MutableByteSpan(page, kMailboxPageBytes)));
  std::memcpy(request_page().data(), page, kHeaderBytes + body.size());
  MailboxFence(std::memory_order_release);
  ++stats_.round_trips;
  GMEM_RETURN_IF_ERROR(doorbell_->Ring().WithContext(std::string("agent: ") + std::string(MessageTypeName(type))));
  // Single fetch of the response; poll until it names this request (an agent may answer late).
  const std::string what = "agent: " + std::string(MessageTypeName(type));
  for (auto backoff = std::chrono::microseconds(20);; backoff = std::min(backoff * 2, std::chrono::microseconds(5000))) {
    MailboxFence(std::memory_order_acquire);
    std::memcpy(page, response_page().data(), kMailboxPageBytes);
    ByteSpan response_body;
    auto rh = DecodeResponseHeader(ByteSpan(page, kMailboxPageBytes), &response_body);
    if (rh.ok() && rh->request_id == id) {
      stats_.agent_time += std::chrono::steady_clock::now() - start;
      agent_minor_ = rh->minor;
      if (rh->type != type && rh->status == AgentStatus::kOk) {
        return ProtocolError(what + ": the agent answered a " + std::string(MessageTypeName(rh->type)));
      }
      if (rh->status != AgentStatus::kOk) {
        auto text = DecodeErrorBody(response_body);
        return Status(CodeForAgentStatus(rh->status), what + ": " + (text.ok() ? *text : std::string("(no text)")) +
                                                          " (" + std::string(AgentStatusName(rh->status)) + ")");
      }
      return Bytes(response_body.begin(), response_body.end());
    }
    if (!rh.ok() && (rh.status().code() != Code::kCorrupt || doorbell_->synchronous())) {
      return rh.status().WithContext(what);
    }
    if (doorbell_->synchronous()) return ProtocolError(what + ": the agent answered another request");
    if (std::chrono::steady_clock::now() - start > kResponseTimeout) {
      return Status(Code::kIo, what + ": no response from the agent within " + Num(kResponseTimeout.count()) + " s");
    }
    std::this_thread::sleep_for(backoff);
  }
}

Expected<HelloResponse> AgentClient::Hello(Role role, Mode mode, const SessionId& session_id, ByteSpan peer_share) {
  HelloRequest q;
  q.role = role;
  q.mode = mode;
  q.session_id = session_id;
  q.peer_share.assign(peer_share.begin(), peer_share.end());
  GMEM_ASSIGN_OR_RETURN(Bytes body, Call(MessageType::kHello, EncodeHelloRequest(q)));
  auto out = DecodeHelloResponse(body);
  if (!out.ok()) return out.status().WithContext("agent: HELLO response");
  return out;
}

Expected<PeerResponse> AgentClient::Peer(ByteSpan importer_share) {
  PeerRequest q;
  q.share.assign(importer_share.begin(), importer_share.end());
  GMEM_ASSIGN_OR_RETURN(Bytes body, Call(MessageType::kPeer, EncodePeerRequest(q)));
  auto out = DecodePeerResponse(body);
  if (!out.ok()) return out.status().WithContext("agent: PEER response");
  return out;
}

Status AgentClient::ExportBatch(std::span<const uint64_t> gfns, ExportResult& result) {
  ExportRequest q;
  q.gfns.assign(gfns.begin(), gfns.end());
  GMEM_ASSIGN_OR_RETURN(Bytes body, Call(MessageType::kExport, EncodeExportRequest(q)));
  auto response = DecodeExportResponse(body);
  if (!response.ok()) return response.status().WithContext("agent: EXPORT response");
  if (response->entries.size() != gfns.size()) return ProtocolError("agent: EXPORT answered another number of pages");
  for (size_t i = 0; i < gfns.size(); ++i) {
    const ExportEntry& e = response->entries[i];
    if (e.gfn != gfns[i]) return ProtocolError("agent: EXPORT answered for other pages");
    if (e.status == AgentStatus::kNotPrivate) {
      result.not_private.push_back(e.gfn);
      continue;
    }
    if (e.status != AgentStatus::kOk) {
      return Status(CodeForAgentStatus(e.status), "agent: EXPORT of gfn " + Num(e.gfn) + ": " +
                                                      std::string(AgentStatusName(e.status)));
    }
    ExportedBlob b;
    b.gfn = e.gfn;
    // One copy out of the shared bounce buffer (the decoder checked the range).
    b.blob.assign(bounce().begin() + e.offset, bounce().begin() + e.offset + e.length);
    stats_.blob_bytes += e.length;
    ++stats_.pages_exported;
    result.blobs.push_back(std::move(b));
  }
  return Status::Ok();
}

Expected<ExportResult> AgentClient::Export(std::span<const uint64_t> gfns) {
  ExportResult result;
  result.blobs.reserve(gfns.size());
  for (size_t at = 0; at < gfns.size(); at += kMaxPagesPerRequest) {
    size_t n = std::min<size_t>(kMaxPagesPerRequest, gfns.size() - at);
    GMEM_RETURN_IF_ERROR(ExportBatch(gfns.subspan(at, n), result));
  }
  return result;
}

Status AgentClient::ImportBatch(std::span<const ImportBlob> blobs) {
  ImportRequest q;
  uint32_t offset = 0;
  for (const ImportBlob& b : blobs) {
    if (b.blob.size() > kBounceBytes - offset) return InvalidArgument("agent: IMPORT blobs do not fit the bounce buffer");
    std::memcpy(bounce().data() + offset, b.blob.data(), b.blob.size());
    q.entries.push_back(ImportEntry{b.gfn, offset, static_cast<uint32_t>(b.blob.size())});
    offset += static_cast<uint32_t>(b.blob.size());
    stats_.blob_bytes += b.blob.size();
  }
  auto body = Call(MessageType::kImport, EncodeImportRequest(q));
  if (!body.ok()) return body.status();
  auto response = DecodeImportResponse(*body);
  if (!response.ok()) return response.status().WithContext("agent: IMPORT response");
  if (response->imported != blobs.size()) return ProtocolError("agent: IMPORT imported another number of pages");
  stats_.pages_imported += blobs.size();
  return Status::Ok();
}

Status AgentClient::Import(std::span<const ImportBlob> blobs) {
  // A request holds at most kMaxPagesPerRequest blobs, and they must fit the bounce buffer.
  size_t at = 0;
  while (at < blobs.size()) {
    size_t n = 0;
    uint64_t bytes = 0;
    while (at + n < blobs.size() && n < kMaxPagesPerRequest && bytes + blobs[at + n].blob.size() <= kBounceBytes) {
      bytes += blobs[at + n].blob.size();
      ++n;
    }
    if (n == 0) return InvalidArgument("agent: a blob of " + Num(blobs[at].blob.size()) + " bytes exceeds the bounce buffer");
    GMEM_RETURN_IF_ERROR(ImportBatch(blobs.subspan(at, n)));
    at += n;
  }
  return Status::Ok();
}

Expected<DirtyReport> AgentClient::Dirty() {
  DirtyReport report;
  uint64_t cursor = 0;
  for (;;) {
    DirtyRequest q;
    q.cursor = cursor;
    GMEM_ASSIGN_OR_RETURN(Bytes body, Call(MessageType::kDirty, EncodeDirtyRequest(q)));
    auto response = DecodeDirtyResponse(body);
    if (!response.ok()) return response.status().WithContext("agent: DIRTY response");
    if ((response->flags & kDirtyFlagAll) != 0) {
      report.all = true;
      report.gfns.clear();
      return report;
    }
    for (uint32_t i = 0; i < response->count; ++i) {
      uint64_t gfn = LoadLe<uint64_t>(bounce().data() + 8 * size_t{i});
      if (gfn < cursor || (!report.gfns.empty() && gfn <= report.gfns.back())) {
        return ProtocolError("agent: DIRTY list is not ascending");
      }
      report.gfns.push_back(gfn);
    }
    if ((response->flags & kDirtyFlagMore) == 0) return report;
    if (response->next_cursor <= cursor) return ProtocolError("agent: DIRTY cursor did not advance");
    cursor = response->next_cursor;
  }
}

Status AgentClient::Abort(uint32_t reason) {
  AbortRequest q;
  q.reason = reason;
  return Call(MessageType::kAbort, EncodeAbortRequest(q)).status();
}

Status AgentClient::CheckAgentSpeaksFinish() const {
  const uint16_t needed = MessageMinor(MessageType::kFinish);
  if (agent_minor_ && *agent_minor_ < needed) {
    return Status(Code::kUnsupported, "agent: FINISH needs protocol 1." + Num(needed) + ", the agent speaks 1." +
                                          Num(*agent_minor_));
  }
  return Status::Ok();
}

Expected<FinishResult> AgentClient::Finish() {
  GMEM_RETURN_IF_ERROR(CheckAgentSpeaksFinish());
  GMEM_ASSIGN_OR_RETURN(Bytes body, Call(MessageType::kFinish, EncodeFinishRequest(FinishRequest{0})));
  auto response = DecodeFinishResponse(body);
  if (!response.ok()) return response.status().WithContext("agent: FINISH response");
  if (response->length != kBlobBytes) return ProtocolError("agent: FINISH of an export session returned no manifest");
  FinishResult out;
  out.count = response->count;
  out.untracked = (response->flags & kManifestFlagUntracked) != 0;
  // One copy out of the shared bounce buffer.
  out.manifest.assign(bounce().begin(), bounce().begin() + kBlobBytes);
  stats_.blob_bytes += kBlobBytes;
  return out;
}

Expected<FinishResult> AgentClient::FinishImport(ByteSpan manifest) {
  if (manifest.size() != kBlobBytes) {
    return InvalidArgument("agent: a manifest is " + Num(kBlobBytes) + " bytes, not " + Num(manifest.size()));
  }
  GMEM_RETURN_IF_ERROR(CheckAgentSpeaksFinish());
  std::memcpy(bounce().data(), manifest.data(), kBlobBytes);
  stats_.blob_bytes += kBlobBytes;
  GMEM_ASSIGN_OR_RETURN(Bytes body, Call(MessageType::kFinish, EncodeFinishRequest(FinishRequest{kBlobBytes})));
  auto response = DecodeFinishResponse(body);
  if (!response.ok()) return response.status().WithContext("agent: FINISH response");
  if (response->length != 0) return ProtocolError("agent: FINISH of an import session answered with a manifest");
  FinishResult out;
  out.count = response->count;
  out.untracked = (response->flags & kManifestFlagUntracked) != 0;
  return out;
}

}  // namespace gmem::agent
