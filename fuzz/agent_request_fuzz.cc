// libFuzzer target for the guest side of the agent protocol (docs/agent-protocol.md): what a
// hostile host can put in front of the in-guest agent — the request page, the bounce buffer and
// the shares and blobs inside them. Every request must end in a well-formed response page (§3.2)
// with a defined status, never a crash, a hang, an out-of-bounds access or plaintext in shared
// memory.
//
// The input encoding is described in fuzz/agent_request_fuzz_input.h. An input first puts a
// fresh Agent (over a fake guest platform with a few private pages) in one of the session states;
// the target plays the host and the peer agent for that, and keeps the session key whenever it
// can know it (it holds the platform key), so the fuzzer can send blobs that pass the tag and
// reach the epoch, gfn and replay checks, and manifests that reach FINISH's checks in an import
// session. Then the steps: raw request pages, well-formed requests with fuzzed bodies,
// bounce-buffer bytes, sealed blobs and manifests, PEER with a valid share, and direct calls of
// every decoder of agent/ (each decoded value must encode back to the same bytes). An OK FINISH
// of an export session must seal a manifest of exactly the private pages and the sequences the
// target saw exported; an OK FINISH of an import session means every private page was imported.
//
// The request page, the response page and the bounce buffer are separate heap buffers, so ASan
// catches an access past any one of them.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>

#include "agent/agent.h"
#include "agent/blob.h"
#include "agent/guest_platform.h"
#include "agent/key_agreement.h"
#include "agent/messages.h"
#include "agent/platform_key.h"
#include "agent/wire.h"
#include "format/crypto.h"
#include "fuzz/agent_fuzz_decoders.h"
#include "fuzz/agent_fuzz_platform.h"
#include "fuzz/agent_request_fuzz_input.h"

namespace gmem::fuzz {
namespace {

using namespace gmem::agent;  // NOLINT: the whole file speaks the agent protocol
using agent_input::Op;
using agent_input::Setup;
using agent_fuzz::CanaryPage;
using agent_fuzz::Contains;
using agent_fuzz::Fail;
using agent_fuzz::FuzzDecoders;
using agent_fuzz::FuzzPlatform;
using agent_fuzz::kCanary;
using agent_fuzz::Same;

// The shared agent area: three separate heap buffers, allocated once.
struct Area {
  std::unique_ptr<std::byte[]> request{new std::byte[kMailboxPageBytes]};
  std::unique_ptr<std::byte[]> response{new std::byte[kMailboxPageBytes]};
  std::unique_ptr<std::byte[]> bounce{new std::byte[kBounceBytes]};
  SharedArea View() const {
    return SharedArea{MutableByteSpan(request.get(), kMailboxPageBytes),
                      MutableByteSpan(response.get(), kMailboxPageBytes), MutableByteSpan(bounce.get(), kBounceBytes)};
  }
  void Clear() {
    std::memset(request.get(), 0, kMailboxPageBytes);
    std::memset(response.get(), 0, kMailboxPageBytes);
    std::memset(bounce.get(), 0, kBounceBytes);
  }
};

struct Globals {
  std::shared_ptr<const PlatformKey> key;
  Bytes sealed_descriptor;
  Area area;
};

Globals& G() {
  static Globals* g = [] {
    auto* g = new Globals;
    g->key = std::make_shared<const PlatformKey>(PlatformKey::FromSecret(agent_input::PlatformSecret()).value());
    g->sealed_descriptor = agent_input::SealedDescriptor(*g->key).value();
    return g;
  }();
  return *g;
}

// Reads the input's fields; past the end, zeros.
class Cursor {
 public:
  explicit Cursor(ByteSpan in) : in_(in) {}
  bool done() const { return pos_ >= in_.size(); }
  template <typename T>
  T Get() {
    std::byte buf[sizeof(T)] = {};
    size_t n = std::min(sizeof(T), in_.size() - pos_);
    std::memcpy(buf, in_.data() + pos_, n);
    pos_ += n;
    return LoadLe<T>(buf);
  }
  ByteSpan Take(size_t n) {
    n = std::min(n, in_.size() - pos_);
    ByteSpan s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  ByteSpan in_;
  size_t pos_ = 0;
};

// AGENT_REQUEST_FUZZ_TRACE=1 prints every response's type, status and error text to stderr (to
// see what an input or a seed does: agent_request_fuzz -runs=0 INPUT).
bool Trace() {
  static const bool trace = getenv("AGENT_REQUEST_FUZZ_TRACE") != nullptr;
  return trace;
}

// ---- one input: an agent, its platform, and the host/peer the target plays ----

class Harness {
 public:
  Harness(Setup setup, uint8_t platform_bits)
      : g_(G()),
        area_(g_.area.View()),
        platform_(agent_input::GfnLimitOf(platform_bits), (platform_bits & agent_input::kPlatformNoTracking) == 0,
                  (platform_bits & agent_input::kPlatformEmpty) != 0),
        agent_(setup == Setup::kUnprovisioned ? nullptr : g_.key, agent_input::FuzzMeasurement()) {
    g_.area.Clear();
    switch (setup) {
      case Setup::kIdle:
      case Setup::kUnprovisioned: break;
      case Setup::kExportAwaitPeer: SendHello(Role::kExport, Mode::kTransport, {}); break;
      case Setup::kExportTransport:
        SendHello(Role::kExport, Mode::kTransport, {});
        SendPeer(0);
        break;
      case Setup::kExportSealed: SendHello(Role::kExport, Mode::kSealed, {}); break;
      case Setup::kImportTransport: ImportTransport(); break;
      case Setup::kImportSealed: SendHello(Role::kImport, Mode::kSealed, g_.sealed_descriptor); break;
    }
  }

  void Run(Cursor& in) {
    while (!in.done() && serves_ < agent_input::kMaxServes) {
      uint8_t op = in.Get<uint8_t>() % agent_input::kOpCount;
      switch (static_cast<Op>(op)) {
        case Op::kRawPage: {
          ByteSpan bytes = in.Take(in.Get<uint16_t>());
          bytes = bytes.first(std::min(bytes.size(), kMailboxPageBytes));
          std::memset(area_.request.data(), 0, kMailboxPageBytes);
          std::memcpy(area_.request.data(), bytes.data(), bytes.size());
          Serve();
          break;
        }
        case Op::kRequest: {
          auto type = static_cast<MessageType>(in.Get<uint8_t>());
          ByteSpan body = in.Take(in.Get<uint16_t>());
          Send(type, body.first(std::min(body.size(), kMaxBodyBytes)));
          break;
        }
        case Op::kBounce: {
          uint32_t offset = in.Get<uint32_t>() % kBounceBytes;
          ByteSpan bytes = in.Take(in.Get<uint16_t>());
          size_t n = std::min<size_t>(bytes.size(), kBounceBytes - offset);
          std::memcpy(area_.bounce.data() + offset, bytes.data(), n);
          break;
        }
        case Op::kSealBlob: {
          uint32_t offset = in.Get<uint32_t>() % (kBounceBytes - kBlobBytes + 1);
          uint64_t gfn = in.Get<uint64_t>();
          uint64_t sequence = in.Get<uint64_t>();
          uint8_t tweak = in.Get<uint8_t>();
          SealBlob(offset, gfn, sequence, tweak);
          break;
        }
        case Op::kPeer: SendPeer(in.Get<uint8_t>()); break;
        case Op::kDecode: FuzzDecoders(in.Take(in.Get<uint16_t>())); break;
        case Op::kSealManifest: {
          uint64_t sequence = in.Get<uint64_t>();
          SealManifest(sequence, in.Get<uint8_t>());
          break;
        }
      }
    }
    FUZZ_CHECK(agent_.counters().requests == serves_);
  }

 private:
  // Writes a well-formed request and serves it. Returns the response body when the status is OK.
  std::optional<Bytes> Send(MessageType type, ByteSpan body) {
    RequestHeader h;
    h.type = type;
    h.body_length = static_cast<uint32_t>(body.size());
    h.request_id = ++request_id_;
    std::memset(area_.request.data(), 0, kMailboxPageBytes);
    FUZZ_CHECK(EncodeRequest(h, body, area_.request).ok());
    return Serve();
  }

  std::optional<Bytes> SendHello(Role role, Mode mode, ByteSpan share) {
    HelloRequest q;
    q.role = role;
    q.mode = mode;
    q.session_id = agent_input::FuzzSession();
    q.peer_share.assign(share.begin(), share.end());
    return Send(MessageType::kHello, EncodeHelloRequest(q));
  }

  // The target plays the exporting agent: a share of its own, signed with the platform key.
  void ImportTransport() {
    auto eph = X25519Key::Generate();
    FUZZ_CHECK(eph.ok());
    Share s;
    s.role = Role::kExport;
    s.mode = Mode::kTransport;
    s.epoch = agent_input::kTransportEpoch;
    s.session_id = agent_input::FuzzSession();
    s.measurement = agent_input::FuzzMeasurement();
    s.key_material = eph->public_key();
    FUZZ_CHECK(SignShare(s, *g_.key).ok());
    Bytes share_s = EncodeShare(s);
    std::optional<Bytes> reply = SendHello(Role::kImport, Mode::kTransport, share_s);
    FUZZ_CHECK(reply.has_value());
    auto hello = DecodeHelloResponse(*reply);
    FUZZ_CHECK(hello.ok());
    auto share_t = DecodeShare(hello->share);
    FUZZ_CHECK(share_t.ok());
    auto secret = eph->Agree(share_t->key_material);
    FUZZ_CHECK(secret.ok());
    auto key = DeriveTransportKey(*secret, s.session_id, share_s, hello->share);
    FUZZ_CHECK(key.ok());
    UseKey(*key, s.epoch, hello->key_id);
  }

  // PEER answering the agent's last exporter share; tweak != 0 breaks one field of it.
  void SendPeer(uint8_t tweak) {
    if (export_share_.empty()) {
      Send(MessageType::kPeer, {});
      return;
    }
    Share exporter = DecodeShare(export_share_).value();
    auto eph = X25519Key::Generate();
    FUZZ_CHECK(eph.ok());
    Share s;
    s.role = Role::kImport;
    s.mode = Mode::kTransport;
    s.epoch = exporter.epoch;
    s.session_id = exporter.session_id;
    s.measurement = exporter.measurement;
    s.key_material = eph->public_key();
    s.peer_digest = ShareDigest(export_share_);
    switch (tweak % 6) {
      case 1: s.epoch ^= 1; break;
      case 2: s.session_id[0] ^= std::byte{1}; break;
      case 3: s.peer_digest[0] ^= std::byte{1}; break;
      case 4: s.measurement[0] ^= std::byte{1}; break;
      case 5: s.key_material = {}; break;  // a low-order point: an all-zero shared secret
      default: break;
    }
    FUZZ_CHECK(SignShare(s, *g_.key).ok());
    Bytes share_t = EncodeShare(s);
    Bytes share_s = export_share_;
    PeerRequest q;
    q.share = share_t;
    std::optional<Bytes> reply = Send(MessageType::kPeer, EncodePeerRequest(q));
    if (!reply) return;
    FUZZ_CHECK(tweak % 6 == 0);
    auto peer = DecodePeerResponse(*reply);
    FUZZ_CHECK(peer.ok() && peer->flags == kHelloFlagKeyReady);
    auto secret = eph->Agree(exporter.key_material);
    FUZZ_CHECK(secret.ok());
    auto key = DeriveTransportKey(*secret, exporter.session_id, share_s, share_t);
    FUZZ_CHECK(key.ok());
    UseKey(*key, exporter.epoch, peer->key_id);
  }

  void UseKey(const SecretBytes& key, uint32_t epoch, uint64_t key_id) {
    auto id = KeyId(key);
    FUZZ_CHECK(id.ok() && *id == key_id);  // the agent derived the same key
    auto cipher = BlobCipher::Create(key);
    FUZZ_CHECK(cipher.ok());
    cipher_.emplace(std::move(cipher).value());
    epoch_ = epoch;
    last_sequence_ = 0;
    sequences_.clear();
  }

  // The manifest of the private pages here, each with its sequence in `sequences_`.
  Manifest ManifestOfPrivatePages(bool* all_covered) const {
    Bytes list;
    ByteWriter w(list);
    Manifest m;
    *all_covered = true;
    for (const auto& [gfn, page] : platform_.private_pages()) {
      ++m.count;
      auto it = sequences_.find(gfn);
      if (it == sequences_.end()) {
        *all_covered = false;
        continue;
      }
      w.U64(gfn);
      w.U64(it->second);
    }
    format::Digest d = format::Sha256(list);
    std::copy(d.begin(), d.end(), m.digest.begin());
    return m;
  }

  void SealManifest(uint64_t sequence, uint8_t tweak) {
    if (!cipher_ || sequence == 0) return;
    bool covered = false;
    Manifest m = ManifestOfPrivatePages(&covered);
    m.flags = platform_.tracks_private_writes() ? 0 : kManifestFlagUntracked;
    BlobHeader h;
    h.gfn = kManifestGfn;
    h.epoch = epoch_;
    h.sequence = sequence;
    switch (tweak % 8) {
      case 1: ++m.count; break;
      case 2: m.digest[0] ^= std::byte{1}; break;
      case 3: m.flags = 2; break;
      case 5: h.gfn = 600; break;
      case 6: ++h.epoch; break;
      default: break;
    }
    Bytes page(kPageBytes);
    EncodeManifest(m, page);
    if (tweak % 8 == 4) page[0] ^= std::byte{1};
    Bytes blob(kBlobBytes);
    FUZZ_CHECK(cipher_->Seal(h, page, blob).ok());
    std::memcpy(area_.bounce.data(), blob.data(), kBlobBytes);
  }

  void SealBlob(uint32_t offset, uint64_t gfn, uint64_t sequence, uint8_t tweak) {
    if (!cipher_ || sequence == 0) return;
    BlobHeader h;
    h.gfn = gfn;
    h.epoch = epoch_ + ((tweak & 0x80) != 0 ? 1 : 0);
    h.sequence = sequence;
    Bytes page = CanaryPage(tweak & 0x7f);
    Bytes blob(kBlobBytes);
    FUZZ_CHECK(cipher_->Seal(h, page, blob).ok());
    std::memcpy(area_.bounce.data() + offset, blob.data(), kBlobBytes);
  }

  // Serves the request page and checks the response. Returns the body when the status is OK.
  std::optional<Bytes> Serve() {
    Bytes request(area_.request.begin(), area_.request.end());
    std::memset(area_.response.data(), 0xcc, kMailboxPageBytes);
    ++serves_;
    const uint64_t writes_before = platform_.writes();
    agent_.Serve(platform_, area_);
    FUZZ_CHECK(Same(area_.request, request));  // the agent never writes the request page
    FUZZ_CHECK(!Contains(area_.response, kCanary));

    ByteSpan body;
    Expected<ResponseHeader> r = DecodeResponseHeader(area_.response, &body);
    FUZZ_CHECK(r.ok());
    FUZZ_CHECK(r->major == kVersionMajor && r->minor == kVersionMinor);
    if (Trace()) {
      auto text = r->status == AgentStatus::kOk ? Expected<std::string>(std::string()) : DecodeErrorBody(body);
      fprintf(stderr, "  %s -> %s %s\n", std::string(MessageTypeName(r->type)).c_str(),
              std::string(AgentStatusName(r->status)).c_str(), text.ok() ? text->c_str() : "(bad error body)");
    }
    ByteSpan request_body;
    Expected<RequestHeader> q = DecodeRequestHeader(request, &request_body);
    if (q.ok() && q->type == MessageType::kHello) {
      // HELLO wipes the session first, whether it then succeeds or not.
      cipher_.reset();
      export_share_.clear();
      sequences_.clear();
    }
    if (q.ok()) {
      FUZZ_CHECK(r->type == q->type && r->request_id == q->request_id);
    } else {
      FUZZ_CHECK(r->status == AgentStatus::kMalformed || r->status == AgentStatus::kVersion);
      FUZZ_CHECK(r->request_id == LoadLe<uint64_t>(request.data() + 16));
    }
    if (r->status != AgentStatus::kOk) {
      FUZZ_CHECK(DecodeErrorBody(body).ok());
      // A rejected request writes nothing (§4.4); only a platform failure can stop one midway.
      FUZZ_CHECK(platform_.writes() == writes_before || r->status == AgentStatus::kInternal);
      FUZZ_CHECK(r->detail == 0 || r->type == MessageType::kImport);
      if (r->status == AgentStatus::kSessionFailed || IsSecurityFailure(r->status)) cipher_.reset();
      return std::nullopt;
    }
    FUZZ_CHECK(q.ok() && q->minor <= kVersionMinor && r->detail == 0);
    CheckOk(q->type, request_body, body);
    return Bytes(body.begin(), body.end());
  }

  static bool IsSecurityFailure(AgentStatus s) {
    return s == AgentStatus::kAuth || s == AgentStatus::kIdentity || s == AgentStatus::kWrongEpoch ||
           s == AgentStatus::kWrongGfn || s == AgentStatus::kReplay || s == AgentStatus::kIncomplete;
  }

  // An OK response: its body parses as the type's response, says what was asked, and the target
  // learns the session key where it can.
  void CheckOk(MessageType type, ByteSpan request_body, ByteSpan body) {
    switch (type) {
      case MessageType::kHello: {
        auto q = DecodeHelloRequest(request_body);
        auto s = DecodeHelloResponse(body);
        FUZZ_CHECK(q.ok() && s.ok());
        cipher_.reset();
        export_share_.clear();
        if (q->role == Role::kExport) {
          auto share = DecodeShare(s->share);
          FUZZ_CHECK(share.ok() && share->role == Role::kExport && share->mode == q->mode && share->epoch == s->epoch);
          FUZZ_CHECK(VerifyShare(*share, *g_.key).ok());
          if (q->mode == Mode::kTransport) {
            FUZZ_CHECK(s->flags == 0 && s->key_id == 0);
            export_share_ = s->share;
          } else {
            FUZZ_CHECK(s->flags == kHelloFlagKeyReady);
            auto key = DeriveSealingKey(*g_.key, share->measurement, share->key_material, share->session_id, share->epoch);
            FUZZ_CHECK(key.ok());
            UseKey(*key, share->epoch, s->key_id);
          }
        } else {
          FUZZ_CHECK(s->flags == kHelloFlagKeyReady);
          auto peer = DecodeShare(q->peer_share);
          FUZZ_CHECK(peer.ok() && peer->epoch == s->epoch && peer->epoch != 0);
          FUZZ_CHECK(VerifyShare(*peer, *g_.key).ok());
          if (q->mode == Mode::kSealed) {
            FUZZ_CHECK(s->share.empty());
            auto key = DeriveSealingKey(*g_.key, peer->measurement, peer->key_material, peer->session_id, peer->epoch);
            FUZZ_CHECK(key.ok());
            UseKey(*key, peer->epoch, s->key_id);
          }
          // IMPORT/TRANSPORT started by the input: the key needs a private key the target lacks.
        }
        break;
      }
      case MessageType::kPeer: FUZZ_CHECK(DecodePeerResponse(body).ok()); break;
      case MessageType::kExport: CheckExport(request_body, body); break;
      case MessageType::kImport: {
        auto q = DecodeImportRequest(request_body);
        auto s = DecodeImportResponse(body);
        FUZZ_CHECK(q.ok() && s.ok() && s->imported == q->entries.size());
        for (const ImportEntry& e : q->entries) {
          FUZZ_CHECK(platform_.PrivatePage(e.gfn) != nullptr);
          // The blobs are still in the bounce buffer: learn their sequences (for manifests).
          Expected<BlobHeader> h = DecodeBlobHeader(ByteSpan(area_.bounce).subspan(e.offset, e.length));
          FUZZ_CHECK(h.ok() && h->gfn == e.gfn);
          sequences_[e.gfn] = h->sequence;
        }
        break;
      }
      case MessageType::kFinish: CheckFinish(request_body, body); break;
      case MessageType::kDirty: CheckDirty(request_body, body); break;
      case MessageType::kAbort:
        FUZZ_CHECK(body.empty());
        cipher_.reset();
        export_share_.clear();
        sequences_.clear();
        break;
      case MessageType::kInvalid: Fail("OK for an invalid request type");
    }
  }

  void CheckExport(ByteSpan request_body, ByteSpan body) {
    auto q = DecodeExportRequest(request_body);
    auto s = DecodeExportResponse(body);
    FUZZ_CHECK(q.ok() && s.ok() && s->entries.size() == q->gfns.size());
    Bytes page(kPageBytes);
    for (size_t i = 0; i < s->entries.size(); ++i) {
      const ExportEntry& e = s->entries[i];
      FUZZ_CHECK(e.gfn == q->gfns[i]);
      if (e.status != AgentStatus::kOk) {
        FUZZ_CHECK(e.status == AgentStatus::kNotPrivate || e.status == AgentStatus::kOutOfRange);
        continue;
      }
      FUZZ_CHECK(e.length == kBlobBytes);
      ByteSpan blob = ByteSpan(area_.bounce).subspan(e.offset, e.length);
      FUZZ_CHECK(!Contains(blob, kCanary));  // only ciphertext reaches shared memory
      if (!cipher_) continue;
      auto h = cipher_->Open(blob, page);
      FUZZ_CHECK(h.ok() && h->gfn == e.gfn && h->epoch == epoch_ && h->sequence > last_sequence_);
      last_sequence_ = h->sequence;
      sequences_[e.gfn] = h->sequence;
      const Bytes* plain = platform_.PrivatePage(e.gfn);
      FUZZ_CHECK(plain != nullptr && *plain == page);
    }
  }

  // An OK FINISH. Export: the manifest is sealed, the last blob of the session, and covers exactly
  // the private pages with the sequences the target saw exported. Import: every private page
  // here was imported in this session, in the version the manifest names.
  void CheckFinish(ByteSpan request_body, ByteSpan body) {
    auto q = DecodeFinishRequest(request_body);
    auto s = DecodeFinishResponse(body);
    FUZZ_CHECK(q.ok() && s.ok());
    FUZZ_CHECK(s->count == platform_.private_pages().size());
    bool covered = false;
    Manifest expected = ManifestOfPrivatePages(&covered);
    if (q->length == 0) {
      FUZZ_CHECK(s->length == kBlobBytes);
      FUZZ_CHECK(((s->flags & kManifestFlagUntracked) != 0) == !platform_.tracks_private_writes());
      ByteSpan blob = ByteSpan(area_.bounce).first(kBlobBytes);
      FUZZ_CHECK(!Contains(blob, kCanary));
      if (cipher_) {
        Bytes page(kPageBytes);
        auto h = cipher_->Open(blob, page);
        FUZZ_CHECK(h.ok() && h->gfn == kManifestGfn && h->epoch == epoch_ && h->sequence > last_sequence_);
        auto m = DecodeManifest(page);
        FUZZ_CHECK(m.ok() && m->flags == s->flags && m->count == s->count);
        FUZZ_CHECK(covered && m->digest == expected.digest);
      }
    } else {
      FUZZ_CHECK(s->length == 0);
      if (cipher_) FUZZ_CHECK(covered);
    }
    // The session is finished and its key gone.
    cipher_.reset();
    sequences_.clear();
  }

  void CheckDirty(ByteSpan request_body, ByteSpan body) {
    auto q = DecodeDirtyRequest(request_body);
    auto s = DecodeDirtyResponse(body);
    FUZZ_CHECK(q.ok() && s.ok());
    if (!platform_.tracks_private_writes()) {
      FUZZ_CHECK(s->flags == kDirtyFlagAll && s->count == 0);
      return;
    }
    FUZZ_CHECK((s->flags & kDirtyFlagAll) == 0);
    FUZZ_CHECK(s->count <= (q->max_entries == 0 ? kMaxDirtyPerRequest : q->max_entries));
    uint64_t prev = 0;
    for (uint32_t i = 0; i < s->count; ++i) {
      uint64_t gfn = LoadLe<uint64_t>(area_.bounce.data() + 8 * size_t{i});
      FUZZ_CHECK(gfn >= q->cursor && (i == 0 || gfn > prev));
      FUZZ_CHECK(platform_.PrivatePage(gfn) != nullptr);
      prev = gfn;
    }
    FUZZ_CHECK(((s->flags & kDirtyFlagMore) != 0) == (s->next_cursor < platform_.gfn_limit()));
  }

  Globals& g_;
  SharedArea area_;
  FuzzPlatform platform_;
  Agent agent_;
  uint64_t request_id_ = 0;
  size_t serves_ = 0;
  std::optional<BlobCipher> cipher_;  // the session key, when the target knows it
  uint32_t epoch_ = 0;
  uint64_t last_sequence_ = 0;
  std::unordered_map<uint64_t, uint64_t> sequences_;  // gfn -> last sequence exported / imported
  Bytes export_share_;  // the agent's exporter share awaiting PEER
};

void FuzzOne(ByteSpan data) {
  Cursor in(data);
  auto setup = static_cast<Setup>(in.Get<uint8_t>() % agent_input::kSetupCount);
  uint8_t platform = in.Get<uint8_t>();
  Harness harness(setup, platform);
  harness.Run(in);
}

}  // namespace
}  // namespace gmem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gmem::fuzz::FuzzOne(gmem::ByteSpan(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}
