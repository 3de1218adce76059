// Agent messages, part one: names, the mailbox headers, HELLO and PEER (docs/agent-protocol.md
// §3, §4.1, §4.2). Part two (EXPORT, IMPORT, DIRTY, ABORT, the error body) is messages_transfer.cc.

#include "agent/messages.h"

#include <string>

namespace gmem::agent {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

// Reads a u32 share length and the share: 0 (when allowed) or exactly kShareBytes.
Status ReadShare(ByteReader& r, uint32_t length, bool may_be_empty, Bytes& out, const char* what) {
  if (!r.ok()) return r.status();
  if (length != kShareBytes && !(may_be_empty && length == 0)) {
    return CorruptError(std::string(what) + " share_length " + Num(length) + " is not " + Num(kShareBytes) +
                        (may_be_empty ? " or 0" : ""));
  }
  ByteSpan s = r.Raw(length, "share");
  if (!r.ok()) return r.status();
  out.assign(s.begin(), s.end());
  return Status::Ok();
}

}  // namespace

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kHello: return "HELLO";
    case MessageType::kPeer: return "PEER";
    case MessageType::kExport: return "EXPORT";
    case MessageType::kImport: return "IMPORT";
    case MessageType::kDirty: return "DIRTY";
    case MessageType::kAbort: return "ABORT";
    case MessageType::kFinish: return "FINISH";
    case MessageType::kInvalid: break;
  }
  return "INVALID";
}

std::string_view AgentStatusName(AgentStatus status) {
  switch (status) {
    case AgentStatus::kOk: return "OK";
    case AgentStatus::kMalformed: return "MALFORMED";
    case AgentStatus::kVersion: return "VERSION";
    case AgentStatus::kBadState: return "BAD_STATE";
    case AgentStatus::kNotProvisioned: return "NOT_PROVISIONED";
    case AgentStatus::kAuth: return "AUTH";
    case AgentStatus::kIdentity: return "IDENTITY";
    case AgentStatus::kWrongEpoch: return "WRONG_EPOCH";
    case AgentStatus::kWrongGfn: return "WRONG_GFN";
    case AgentStatus::kReplay: return "REPLAY";
    case AgentStatus::kNotPrivate: return "NOT_PRIVATE";
    case AgentStatus::kOutOfRange: return "OUT_OF_RANGE";
    case AgentStatus::kLimit: return "LIMIT";
    case AgentStatus::kSessionFailed: return "SESSION_FAILED";
    case AgentStatus::kInternal: return "INTERNAL";
    case AgentStatus::kIncomplete: return "INCOMPLETE";
  }
  return "UNKNOWN";
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kExport: return "export";
    case Role::kImport: return "import";
    case Role::kInvalid: break;
  }
  return "invalid";
}

std::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kTransport: return "transport";
    case Mode::kSealed: return "sealed";
    case Mode::kInvalid: break;
  }
  return "invalid";
}

// ---- headers ----

namespace {

Status EncodeHeader(uint32_t magic, uint16_t major, uint16_t minor, uint16_t type, uint16_t status,
                    uint32_t body_length, uint64_t request_id, uint32_t detail, ByteSpan body, MutableByteSpan page) {
  if (page.size() < kMailboxPageBytes) return InvalidArgument("mailbox page is smaller than 4 KiB");
  if (body.size() > kMaxBodyBytes || body.size() != body_length) {
    return InvalidArgument("message body of " + Num(body.size()) + " bytes does not fit the mailbox page");
  }
  std::byte* p = page.data();
  // SAFETY: the page holds at least kHeaderBytes + kMaxBodyBytes bytes (checked above).
  StoreLe<uint32_t>(p + 0, magic);
  StoreLe<uint16_t>(p + 4, major);
  StoreLe<uint16_t>(p + 6, minor);
  StoreLe<uint16_t>(p + 8, type);
  StoreLe<uint16_t>(p + 10, status);
  StoreLe<uint32_t>(p + 12, body_length);
  StoreLe<uint64_t>(p + 16, request_id);
  StoreLe<uint32_t>(p + 24, detail);
  StoreLe<uint32_t>(p + 28, 0);
  for (size_t i = 0; i < body.size(); ++i) p[kHeaderBytes + i] = body[i];
  return Status::Ok();
}

}  // namespace

Status EncodeRequest(const RequestHeader& h, ByteSpan body, MutableByteSpan page) {
  return EncodeHeader(kRequestMagic, h.major, h.minor, static_cast<uint16_t>(h.type), 0, h.body_length,
                      h.request_id, 0, body, page);
}

Status EncodeResponse(const ResponseHeader& h, ByteSpan body, MutableByteSpan page) {
  return EncodeHeader(kResponseMagic, h.major, h.minor, static_cast<uint16_t>(h.type),
                      static_cast<uint16_t>(h.status), h.body_length, h.request_id, h.detail, body, page);
}

Expected<RequestHeader> DecodeRequestHeader(ByteSpan page, ByteSpan* body) {
  ByteReader r(page);
  uint32_t magic = r.U32("magic");
  if (r.ok() && magic != kRequestMagic) return CorruptError("not an agent request (bad magic)");
  RequestHeader h;
  h.major = r.U16("version_major");
  h.minor = r.U16("version_minor");
  uint16_t type = r.U16("type");
  r.ZerosOk(2, "request status");
  h.body_length = r.U32("body_length");
  h.request_id = r.U64("request_id");
  r.ZerosOk(8, "request reserved");
  if (!r.ok()) return r.status();
  if (h.major != kVersionMajor) {
    return IncompatibleError("agent protocol version " + Num(h.major) + "." + Num(h.minor) + " (this agent speaks " +
                             Num(kVersionMajor) + ".x)");
  }
  if (type == 0 || type > kMaxMessageType) {
    return CorruptError("unknown request type " + Num(type));
  }
  h.type = static_cast<MessageType>(type);
  if (h.body_length > kMaxBodyBytes || h.body_length > r.remaining()) {
    return CorruptError("request body_length " + Num(h.body_length) + " exceeds " + Num(kMaxBodyBytes));
  }
  *body = page.subspan(kHeaderBytes, h.body_length);
  return h;
}

Expected<ResponseHeader> DecodeResponseHeader(ByteSpan page, ByteSpan* body) {
  ByteReader r(page);
  uint32_t magic = r.U32("magic");
  if (r.ok() && magic != kResponseMagic) return CorruptError("no agent response in the mailbox (bad magic)");
  ResponseHeader h;
  h.major = r.U16("version_major");
  h.minor = r.U16("version_minor");
  uint16_t type = r.U16("type");
  uint16_t status = r.U16("status");
  h.body_length = r.U32("body_length");
  h.request_id = r.U64("request_id");
  h.detail = r.U32("detail");
  r.ZerosOk(4, "response reserved");
  if (!r.ok()) return r.status();
  if (h.major != kVersionMajor) {
    return IncompatibleError("the agent speaks protocol version " + Num(h.major) + "." + Num(h.minor) +
                             " (this host speaks " + Num(kVersionMajor) + ".x)");
  }
  if (type > kMaxMessageType) return CorruptError("unknown response type " + Num(type));
  if (status > kMaxAgentStatus) return CorruptError("unknown agent status " + Num(status));
  h.type = static_cast<MessageType>(type);
  h.status = static_cast<AgentStatus>(status);
  if (h.body_length > kMaxBodyBytes || h.body_length > r.remaining()) {
    return CorruptError("response body_length " + Num(h.body_length) + " exceeds " + Num(kMaxBodyBytes));
  }
  *body = page.subspan(kHeaderBytes, h.body_length);
  return h;
}

// ---- HELLO ----

Bytes EncodeHelloRequest(const HelloRequest& q) {
  Bytes out;
  ByteWriter w(out);
  w.U8(static_cast<uint8_t>(q.role));
  w.U8(static_cast<uint8_t>(q.mode));
  w.Zeros(2);
  w.U32(static_cast<uint32_t>(q.peer_share.size()));
  w.Raw(q.session_id);
  w.Raw(q.peer_share);
  return out;
}

Expected<HelloRequest> DecodeHelloRequest(ByteSpan body) {
  ByteReader r(body);
  HelloRequest q;
  uint8_t role = r.U8("role");
  uint8_t mode = r.U8("mode");
  r.ZerosOk(2, "HELLO reserved");
  uint32_t share_length = r.U32("share_length");
  ByteSpan sid = r.Raw(kSessionIdBytes, "session_id");
  if (!r.ok()) return r.status();
  if (role != static_cast<uint8_t>(Role::kExport) && role != static_cast<uint8_t>(Role::kImport)) {
    return CorruptError("HELLO: unknown role " + Num(role));
  }
  if (mode != static_cast<uint8_t>(Mode::kTransport) && mode != static_cast<uint8_t>(Mode::kSealed)) {
    return CorruptError("HELLO: unknown mode " + Num(mode));
  }
  q.role = static_cast<Role>(role);
  q.mode = static_cast<Mode>(mode);
  for (size_t i = 0; i < kSessionIdBytes; ++i) q.session_id[i] = sid[i];
  GMEM_RETURN_IF_ERROR(ReadShare(r, share_length, true, q.peer_share, "HELLO"));
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("HELLO"));
  return q;
}

Bytes EncodeHelloResponse(const HelloResponse& s) {
  Bytes out;
  ByteWriter w(out);
  w.U32(s.flags);
  w.U32(s.epoch);
  w.U64(s.key_id);
  w.U32(static_cast<uint32_t>(s.share.size()));
  w.Zeros(4);
  w.Raw(s.share);
  return out;
}

Expected<HelloResponse> DecodeHelloResponse(ByteSpan body) {
  ByteReader r(body);
  HelloResponse s;
  s.flags = r.U32("flags");
  s.epoch = r.U32("epoch");
  s.key_id = r.U64("key_id");
  uint32_t share_length = r.U32("share_length");
  r.ZerosOk(4, "HELLO response reserved");
  if (r.ok() && (s.flags & ~kHelloFlagKeyReady) != 0) return CorruptError("HELLO response: unknown flags");
  GMEM_RETURN_IF_ERROR(ReadShare(r, share_length, true, s.share, "HELLO response"));
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("HELLO response"));
  return s;
}

// ---- PEER ----

Bytes EncodePeerRequest(const PeerRequest& q) {
  Bytes out;
  ByteWriter w(out);
  w.U32(static_cast<uint32_t>(q.share.size()));
  w.Zeros(4);
  w.Raw(q.share);
  return out;
}

Expected<PeerRequest> DecodePeerRequest(ByteSpan body) {
  ByteReader r(body);
  PeerRequest q;
  uint32_t share_length = r.U32("share_length");
  r.ZerosOk(4, "PEER reserved");
  GMEM_RETURN_IF_ERROR(ReadShare(r, share_length, false, q.share, "PEER"));
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("PEER"));
  return q;
}

Bytes EncodePeerResponse(const PeerResponse& s) {
  Bytes out;
  ByteWriter w(out);
  w.U32(s.flags);
  w.U32(s.epoch);
  w.U64(s.key_id);
  return out;
}

Expected<PeerResponse> DecodePeerResponse(ByteSpan body) {
  ByteReader r(body);
  PeerResponse s;
  s.flags = r.U32("flags");
  s.epoch = r.U32("epoch");
  s.key_id = r.U64("key_id");
  GMEM_RETURN_IF_ERROR(r.ExpectEnd("PEER response"));
  if ((s.flags & ~kHelloFlagKeyReady) != 0) return CorruptError("PEER response: unknown flags");
  return s;
}

}  // namespace gmem::agent
