// Agent, part one: serving the mailbox, sessions and key agreement (HELLO, PEER, ABORT).
// Part two (EXPORT, IMPORT, DIRTY, FINISH) is agent_transfer.cc.

#include "agent/agent.h"

#include <cstring>
#include <string>

#include "format/crypto.h"

namespace gmem::agent {
namespace {

std::string ShortHex(ByteSpan b) { return ToHex(b.first(8)); }

}  // namespace

Agent::Agent(std::shared_ptr<const PlatformKey> platform_key, const Measurement& measurement)
    : platform_key_(std::move(platform_key)),
      measurement_(measurement),
      scratch_(kMaxPagesPerRequest * kPageBytes + kBlobBytes) {}

Agent::Reply Agent::Error(AgentStatus status, std::string text, uint32_t detail) {
  return Reply{status, detail, EncodeErrorBody(text)};
}

Agent::Reply Agent::Fail(AgentStatus status, std::string text, uint32_t detail) {
  Reset();
  session_.state = State::kFailed;
  return Error(status, std::move(text), detail);
}

void Agent::Reset() {
  // The optional members free their EVP objects (OpenSSL clears key material when freeing).
  session_ = Session{};
  SecureWipe(scratch_.data(), scratch_.size());
}

bool Agent::GfnAllowed(const GuestPlatform& platform, uint64_t gfn) const {
  constexpr uint64_t kAreaFirst = kAreaGpa >> kPageShift;
  constexpr uint64_t kAreaEnd = (kAreaGpa + kAreaBytes) >> kPageShift;
  return gfn < platform.gfn_limit() && (gfn < kAreaFirst || gfn >= kAreaEnd);
}

void Agent::Serve(GuestPlatform& platform, const SharedArea& area) {
  ++counters_.requests;
  // Single fetch: the host may change the mailbox at any time; parse only our own copy.
  std::byte request[kMailboxPageBytes];
  std::memcpy(request, area.request.data(), kMailboxPageBytes);
  ByteSpan body;
  Reply reply;
  ResponseHeader out;
  auto header = DecodeRequestHeader(ByteSpan(request, kMailboxPageBytes), &body);
  if (!header.ok()) {
    const uint16_t type = LoadLe<uint16_t>(request + 8);
    out.type = static_cast<MessageType>(type <= kMaxMessageType ? type : 0);
    out.request_id = LoadLe<uint64_t>(request + 16);
    reply = Error(header.status().code() == Code::kIncompatible ? AgentStatus::kVersion : AgentStatus::kMalformed,
                  header.status().message());
  } else if (header->minor > kVersionMinor) {
    out.type = header->type;
    out.request_id = header->request_id;
    reply = Error(AgentStatus::kVersion, "this agent speaks protocol version " + std::to_string(kVersionMajor) + "." +
                                             std::to_string(kVersionMinor) + ", the request " +
                                             std::to_string(header->major) + "." + std::to_string(header->minor));
  } else {
    out.type = header->type;
    out.request_id = header->request_id;
    reply = Dispatch(platform, *header, body, area);
  }
  if (reply.status != AgentStatus::kOk) ++counters_.failures;
  out.status = reply.status;
  out.detail = reply.detail;
  out.body_length = static_cast<uint32_t>(reply.body.size());
  // The body first, the header (which names the request) last: a host that polls sees a complete
  // response once magic and request_id match (§3.2).
  std::byte page[kMailboxPageBytes] = {};
  if (!EncodeResponse(out, reply.body, MutableByteSpan(page, kMailboxPageBytes)).ok()) {
    out.status = AgentStatus::kInternal;
    out.body_length = 0;
    EncodeResponse(out, {}, MutableByteSpan(page, kMailboxPageBytes)).IgnoreError();
  }
  std::memcpy(area.response.data() + kHeaderBytes, page + kHeaderBytes, out.body_length);
  std::memcpy(area.response.data(), page, kHeaderBytes);
}

Agent::Reply Agent::Dispatch(GuestPlatform& platform, const RequestHeader& header, ByteSpan body,
                             const SharedArea& area) {
  switch (header.type) {
    case MessageType::kHello: return Hello(platform, body);
    case MessageType::kAbort: return Abort(body);
    default: break;
  }
  if (header.minor < MessageMinor(header.type)) {
    return Error(AgentStatus::kMalformed, std::string(MessageTypeName(header.type)) + " is a protocol 1." +
                                              std::to_string(MessageMinor(header.type)) + " message, the request says 1." +
                                              std::to_string(header.minor));
  }
  if (session_.state == State::kFailed) {
    return Error(AgentStatus::kSessionFailed, "the session ended after a security failure: start again with HELLO");
  }
  if (session_.state == State::kFinished) {
    return Error(AgentStatus::kBadState, "the session is finished (FINISH was its last word): start a new one with HELLO");
  }
  switch (header.type) {
    case MessageType::kPeer: return Peer(body);
    case MessageType::kExport: return Export(platform, body, area);
    case MessageType::kImport: return Import(platform, body, area);
    case MessageType::kDirty: return Dirty(platform, body, area);
    case MessageType::kFinish: return Finish(platform, body, area);
    default: return Error(AgentStatus::kMalformed, "unknown request");
  }
}

Status Agent::SetKey(const SecretBytes& key) {
  GMEM_ASSIGN_OR_RETURN(BlobCipher cipher, BlobCipher::Create(key));
  GMEM_ASSIGN_OR_RETURN(session_.key_id, KeyId(key));
  session_.cipher.emplace(std::move(cipher));
  return Status::Ok();
}

Agent::Reply Agent::Hello(GuestPlatform& platform, ByteSpan body) {
  Reset();
  auto request = DecodeHelloRequest(body);
  if (!request.ok()) return Error(AgentStatus::kMalformed, request.status().message());
  if (!platform_key_) {
    return Error(AgentStatus::kNotProvisioned,
                 "this agent has no platform key: it can neither prove itself to a peer nor derive a sealing key "
                 "(emulated: gmem-vmm run --platform-key FILE)");
  }
  if (request->role == Role::kExport) {
    platform.ResetExportBaseline();
    return HelloExport(*request);
  }
  return HelloImport(*request);
}

Agent::Reply Agent::HelloExport(const HelloRequest& q) {
  if (!q.peer_share.empty()) return Error(AgentStatus::kMalformed, "HELLO(export) carries no peer share");
  if (epoch_ == UINT32_MAX) return Error(AgentStatus::kInternal, "this agent ran out of epochs");
  uint32_t epoch = epoch_ + 1;
  Share share;
  share.role = Role::kExport;
  share.mode = q.mode;
  share.epoch = epoch;
  share.session_id = q.session_id;
  share.measurement = measurement_;
  SecretBytes sealing_key;
  if (q.mode == Mode::kTransport) {
    auto eph = X25519Key::Generate();
    if (!eph.ok()) return Error(AgentStatus::kInternal, eph.status().message());
    share.key_material = eph->public_key();
    session_.ephemeral.emplace(std::move(eph).value());
  } else {
    if (Status s = format::RandomFill(share.key_material); !s.ok()) return Error(AgentStatus::kInternal, s.message());
    auto key = DeriveSealingKey(*platform_key_, measurement_, share.key_material, q.session_id, epoch);
    if (!key.ok()) return Error(AgentStatus::kInternal, key.status().message());
    sealing_key = std::move(key).value();
    auto check = SealingKeyCheck(sealing_key, ByteSpan(EncodeShare(share)).first(kShareCheckedBytes));
    if (!check.ok()) return Error(AgentStatus::kInternal, check.status().message());
    share.key_check = *check;
  }
  if (Status s = SignShare(share, *platform_key_); !s.ok()) return Error(AgentStatus::kInternal, s.message());
  epoch_ = epoch;
  session_.role = Role::kExport;
  session_.mode = q.mode;
  session_.session_id = q.session_id;
  session_.epoch = epoch;
  session_.own_share = EncodeShare(share);
  HelloResponse out;
  out.epoch = epoch;
  out.share = session_.own_share;
  if (q.mode == Mode::kSealed) {
    if (Status s = SetKey(sealing_key); !s.ok()) return Error(AgentStatus::kInternal, s.message());
    session_.state = State::kReady;
    out.flags = kHelloFlagKeyReady;
    out.key_id = session_.key_id;
  } else {
    session_.state = State::kAwaitPeer;
  }
  return Reply{AgentStatus::kOk, 0, EncodeHelloResponse(out)};
}

Agent::Reply Agent::CheckPeerShare(const Share& share, Role role, Mode mode, const SessionId& session_id) {
  const bool sealed = mode == Mode::kSealed;
  const char* whose = role == Role::kExport ? (sealed ? "the snapshot's agent descriptor" : "the exporter's share")
                                            : "the importer's share";
  if (share.role != role || share.mode != mode) {
    return Error(AgentStatus::kMalformed, std::string(whose) + " has role " + std::string(RoleName(share.role)) +
                                             " and mode " + std::string(ModeName(share.mode)) + ", expected " +
                                             std::string(RoleName(role)) + "/" + std::string(ModeName(mode)));
  }
  if (!VerifyShare(share, *platform_key_).ok()) {
    if (sealed) {
      return Fail(AgentStatus::kIdentity, std::string(whose) +
                                              " is not signed by this platform's key: the snapshot was sealed on "
                                              "another platform (another platform key), or it was altered");
    }
    return Fail(AgentStatus::kAuth, std::string(whose) +
                                        " is not signed by this platform's key: a host substituted it, or the peer "
                                        "runs on another platform");
  }
  if (share.session_id != session_id) {
    return Fail(AgentStatus::kAuth, std::string(whose) + " belongs to another session (session id " +
                                        ShortHex(share.session_id) + "..., this session " + ShortHex(session_id) +
                                        "...)");
  }
  if (share.measurement != measurement_) {
    return Fail(AgentStatus::kIdentity,
                std::string(whose) + " comes from guest identity " + ShortHex(share.measurement) +
                    "..., this guest is " + ShortHex(measurement_) +
                    "...: " + (sealed ? "only the same guest identity derives the sealing key" : "a peer must be the same guest"));
  }
  return Reply{};
}

Agent::Reply Agent::HelloImport(const HelloRequest& q) {
  if (q.peer_share.empty()) {
    return Error(AgentStatus::kMalformed, "HELLO(import) needs the exporter's share or sealing descriptor");
  }
  auto peer = DecodeShare(q.peer_share);
  if (!peer.ok()) {
    return Error(peer.status().code() == Code::kIncompatible ? AgentStatus::kVersion : AgentStatus::kMalformed,
                 peer.status().message());
  }
  Reply checked = CheckPeerShare(*peer, Role::kExport, q.mode, q.session_id);
  if (checked.status != AgentStatus::kOk) return checked;
  if (peer->epoch == 0) return Fail(AgentStatus::kMalformed, "the exporter's share names epoch 0");
  session_.role = Role::kImport;
  session_.mode = q.mode;
  session_.session_id = q.session_id;
  session_.epoch = peer->epoch;
  HelloResponse out;
  out.epoch = peer->epoch;
  if (q.mode == Mode::kSealed) {
    auto key = DeriveSealingKey(*platform_key_, measurement_, peer->key_material, q.session_id, peer->epoch);
    if (!key.ok()) return Error(AgentStatus::kInternal, key.status().message());
    auto check = SealingKeyCheck(*key, ByteSpan(q.peer_share).first(kShareCheckedBytes));
    if (!check.ok()) return Error(AgentStatus::kInternal, check.status().message());
    if (*check != peer->key_check) {
      return Fail(AgentStatus::kIdentity,
                  "the sealing key this agent derives does not match the snapshot's: it was sealed on another "
                  "platform or for another guest identity");
    }
    if (Status s = SetKey(*key); !s.ok()) return Error(AgentStatus::kInternal, s.message());
  } else {
    auto eph = X25519Key::Generate();
    if (!eph.ok()) return Error(AgentStatus::kInternal, eph.status().message());
    Share share;
    share.role = Role::kImport;
    share.mode = Mode::kTransport;
    share.epoch = peer->epoch;
    share.session_id = q.session_id;
    share.measurement = measurement_;
    share.key_material = eph->public_key();
    share.peer_digest = ShareDigest(q.peer_share);
    if (Status s = SignShare(share, *platform_key_); !s.ok()) return Error(AgentStatus::kInternal, s.message());
    session_.own_share = EncodeShare(share);
    auto secret = eph->Agree(peer->key_material);
    if (!secret.ok()) return Fail(AgentStatus::kAuth, secret.status().message());
    auto key = DeriveTransportKey(*secret, q.session_id, q.peer_share, session_.own_share);
    if (!key.ok()) return Error(AgentStatus::kInternal, key.status().message());
    if (Status s = SetKey(*key); !s.ok()) return Error(AgentStatus::kInternal, s.message());
    out.share = session_.own_share;
  }
  if (peer->epoch > epoch_) epoch_ = peer->epoch;
  session_.state = State::kReady;
  out.flags = kHelloFlagKeyReady;
  out.key_id = session_.key_id;
  return Reply{AgentStatus::kOk, 0, EncodeHelloResponse(out)};
}

Agent::Reply Agent::Peer(ByteSpan body) {
  auto request = DecodePeerRequest(body);
  if (!request.ok()) return Error(AgentStatus::kMalformed, request.status().message());
  if (session_.state != State::kAwaitPeer || session_.role != Role::kExport || session_.mode != Mode::kTransport) {
    return Error(AgentStatus::kBadState, "PEER is only for an exporter waiting for the importer's share");
  }
  auto peer = DecodeShare(request->share);
  if (!peer.ok()) {
    return Error(peer.status().code() == Code::kIncompatible ? AgentStatus::kVersion : AgentStatus::kMalformed,
                 peer.status().message());
  }
  Reply checked = CheckPeerShare(*peer, Role::kImport, Mode::kTransport, session_.session_id);
  if (checked.status != AgentStatus::kOk) return checked;
  if (peer->peer_digest != ShareDigest(session_.own_share) || peer->epoch != session_.epoch) {
    return Fail(AgentStatus::kAuth, "the importer's share answers another exporter share");
  }
  auto secret = session_.ephemeral->Agree(peer->key_material);
  if (!secret.ok()) return Fail(AgentStatus::kAuth, secret.status().message());
  auto key = DeriveTransportKey(*secret, session_.session_id, session_.own_share, request->share);
  if (!key.ok()) return Error(AgentStatus::kInternal, key.status().message());
  if (Status s = SetKey(*key); !s.ok()) return Error(AgentStatus::kInternal, s.message());
  session_.ephemeral.reset();
  session_.state = State::kReady;
  PeerResponse out;
  out.flags = kHelloFlagKeyReady;
  out.epoch = session_.epoch;
  out.key_id = session_.key_id;
  return Reply{AgentStatus::kOk, 0, EncodePeerResponse(out)};
}

Agent::Reply Agent::Abort(ByteSpan body) {
  auto request = DecodeAbortRequest(body);
  if (!request.ok()) return Error(AgentStatus::kMalformed, request.status().message());
  Reset();
  return Reply{};
}

}  // namespace gmem::agent
