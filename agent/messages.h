#pragma once
// The agent protocol's mailbox messages (docs/agent-protocol.md §3, §4): the 32-byte request and
// response headers and every message body, as plain values with encoders and strict decoders.
// Pure functions over buffers: no I/O, no crypto. Decoders check every length and count before
// they trust or allocate it, reject non-zero reserved fields, unknown enum values and trailing
// bytes, and answer kCorrupt naming the field.

#include <cstdint>
#include <string>
#include <vector>

#include "agent/wire.h"
#include "base/bytes.h"
#include "base/expected.h"

namespace gmem::agent {

// §3.1
struct RequestHeader {
  MessageType type = MessageType::kInvalid;
  uint16_t major = kVersionMajor;
  uint16_t minor = kVersionMinor;
  uint32_t body_length = 0;
  uint64_t request_id = 0;
};

// §3.2
struct ResponseHeader {
  MessageType type = MessageType::kInvalid;
  AgentStatus status = AgentStatus::kOk;
  uint16_t major = kVersionMajor;
  uint16_t minor = kVersionMinor;
  uint32_t body_length = 0;
  uint64_t request_id = 0;
  uint32_t detail = 0;  // the index of the failing entry, where one applies
};

// A whole mailbox page: header + body (REQUIRES body.size() <= kMaxBodyBytes). The rest of the
// page is left as it is: a reader looks only at header + body_length bytes.
Status EncodeRequest(const RequestHeader& header, ByteSpan body, MutableByteSpan page);
Status EncodeResponse(const ResponseHeader& header, ByteSpan body, MutableByteSpan page);

// Parse the header of `page` and return its body (a view into `page`). A request's version must
// have major == kVersionMajor (kIncompatible otherwise); the minor is returned for the caller to
// judge. A response must carry kResponseMagic.
Expected<RequestHeader> DecodeRequestHeader(ByteSpan page, ByteSpan* body);
Expected<ResponseHeader> DecodeResponseHeader(ByteSpan page, ByteSpan* body);

// ---- §4.1 HELLO ----
struct HelloRequest {
  Role role = Role::kInvalid;
  Mode mode = Mode::kInvalid;
  SessionId session_id{};
  Bytes peer_share;  // empty, or kShareBytes (IMPORT: the exporter's share or sealing descriptor)
};
Bytes EncodeHelloRequest(const HelloRequest& request);
Expected<HelloRequest> DecodeHelloRequest(ByteSpan body);

struct HelloResponse {
  uint32_t flags = 0;   // kHelloFlagKeyReady
  uint32_t epoch = 0;
  uint64_t key_id = 0;  // zero unless the key is ready
  Bytes share;          // empty, or kShareBytes
};
Bytes EncodeHelloResponse(const HelloResponse& response);
Expected<HelloResponse> DecodeHelloResponse(ByteSpan body);

// ---- §4.2 PEER ----
struct PeerRequest {
  Bytes share;  // kShareBytes
};
Bytes EncodePeerRequest(const PeerRequest& request);
Expected<PeerRequest> DecodePeerRequest(ByteSpan body);

struct PeerResponse {
  uint32_t flags = 0;
  uint32_t epoch = 0;
  uint64_t key_id = 0;
};
Bytes EncodePeerResponse(const PeerResponse& response);
Expected<PeerResponse> DecodePeerResponse(ByteSpan body);

// ---- §4.3 EXPORT ----
struct ExportRequest {
  std::vector<uint64_t> gfns;  // 1..kMaxPagesPerRequest
};
Bytes EncodeExportRequest(const ExportRequest& request);
Expected<ExportRequest> DecodeExportRequest(ByteSpan body);

struct ExportEntry {
  uint64_t gfn = 0;
  uint32_t offset = 0;  // in the bounce buffer
  uint32_t length = 0;  // 0 unless status is kOk
  AgentStatus status = AgentStatus::kOk;
  bool operator==(const ExportEntry&) const = default;
};
struct ExportResponse {
  std::vector<ExportEntry> entries;  // one per requested gfn, in request order
};
Bytes EncodeExportResponse(const ExportResponse& response);
// Also checks every kOk entry's [offset, offset + length) lies inside the bounce buffer.
Expected<ExportResponse> DecodeExportResponse(ByteSpan body);

// ---- §4.4 IMPORT ----
struct ImportEntry {
  uint64_t gfn = 0;
  uint32_t offset = 0;
  uint32_t length = 0;
  bool operator==(const ImportEntry&) const = default;
};
struct ImportRequest {
  std::vector<ImportEntry> entries;  // 1..kMaxPagesPerRequest
};
Bytes EncodeImportRequest(const ImportRequest& request);
// The agent itself checks that every entry's range lies inside the bounce buffer (kLimit if not).
Expected<ImportRequest> DecodeImportRequest(ByteSpan body);

struct ImportResponse {
  uint32_t imported = 0;
};
Bytes EncodeImportResponse(const ImportResponse& response);
Expected<ImportResponse> DecodeImportResponse(ByteSpan body);

// ---- §4.5 DIRTY ----
struct DirtyRequest {
  uint64_t cursor = 0;       // first gfn to consider
  uint32_t max_entries = 0;  // 0: as many as the bounce buffer holds
};
Bytes EncodeDirtyRequest(const DirtyRequest& request);
Expected<DirtyRequest> DecodeDirtyRequest(ByteSpan body);

struct DirtyResponse {
  uint32_t count = 0;        // gfns in the bounce buffer at offset 0, u64 LE, ascending
  uint32_t flags = 0;        // kDirtyFlagAll, kDirtyFlagMore
  uint64_t next_cursor = 0;  // with kDirtyFlagMore: where to continue
};
Bytes EncodeDirtyResponse(const DirtyResponse& response);
Expected<DirtyResponse> DecodeDirtyResponse(ByteSpan body);

// ---- §4.6 ABORT ----
struct AbortRequest {
  uint32_t reason = kAbortByHost;
};
Bytes EncodeAbortRequest(const AbortRequest& request);
Expected<AbortRequest> DecodeAbortRequest(ByteSpan body);

// ---- §4.7 FINISH (since 1.1) ----
struct FinishRequest {
  uint32_t length = 0;  // export: 0; import: kBlobBytes, the manifest at bounce offset 0
};
Bytes EncodeFinishRequest(const FinishRequest& request);
// Accepts length 0 or kBlobBytes; which one the session's role needs is the agent's to check.
Expected<FinishRequest> DecodeFinishRequest(ByteSpan body);

struct FinishResponse {
  uint32_t count = 0;   // private pages the manifest covers
  uint32_t flags = 0;   // kManifestFlagUntracked
  uint32_t length = 0;  // export: kBlobBytes, the manifest at bounce offset 0; import: 0
};
Bytes EncodeFinishResponse(const FinishResponse& response);
Expected<FinishResponse> DecodeFinishResponse(ByteSpan body);

// §6.1 The manifest's plaintext page (kPageBytes; the agent seals it as a blob for kManifestGfn).
struct Manifest {
  uint16_t flags = 0;  // kManifestFlagUntracked
  uint64_t count = 0;  // private pages covered
  ManifestDigest digest{};  // SHA-256 of their ascending (u64 gfn, u64 last sequence) list
  bool operator==(const Manifest&) const = default;
};
// REQUIRES: page.size() == kPageBytes. Writes the whole page (the rest zero).
void EncodeManifest(const Manifest& manifest, MutableByteSpan page);
// kCorrupt for another size, magic, version, unknown flags or non-zero bytes past the header.
Expected<Manifest> DecodeManifest(ByteSpan page);

// ---- §3.3 error body ----
Bytes EncodeErrorBody(std::string_view text);  // truncated to kMaxErrorTextBytes
Expected<std::string> DecodeErrorBody(ByteSpan body);

}  // namespace gmem::agent
