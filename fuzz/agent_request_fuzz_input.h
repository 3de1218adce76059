#pragma once
// The input encoding of the agent_request_fuzz target, shared by the target
// (fuzz/agent_request_fuzz.cc) and its seed generator (fuzz/make_agent_corpus.cc) so the
// checked-in corpus in fuzz/corpus/agent_request_fuzz/ keeps matching what the target expects.
//
//   input := setup (u8) ‖ platform (u8) ‖ step*
//
// `setup % kSetupCount` picks the state the target puts a fresh Agent in before the steps (the
// target plays the peer agent and the host for that, so the fuzzer starts past the signatures
// and key agreements it cannot forge). `platform` picks the fake guest platform: bit 0 set means
// it cannot track private writes (DIRTY answers ALL); bits 1-2 pick gfn_limit (kGfnLimits); bit 3
// set means no page is private at the start (so an import session can FINISH: every private page
// must then have been imported in it).
//
// Each step starts with an op byte; `op % kOpCount` picks the Op. Every field is little-endian
// and read as far as the input goes (missing bytes are zero), and at most kMaxServes requests are
// served per input:
//
//   kRawPage   u16 length, bytes        the request page = bytes (zero-padded), then Serve
//   kRequest   u8 type, u16 length, body  a well-formed header (type, body_length = the body's
//                                       size, a fresh request_id) + body, then Serve
//   kBounce    u32 offset, u16 length, bytes   written into the bounce buffer at offset
//   kSealBlob  u32 offset, u64 gfn, u64 sequence, u8 tweak
//                                       a blob sealed under the session key the target knows (if
//                                       any) at offset; tweak bit 7: epoch + 1; low bits seed
//                                       the page
//   kPeer      u8 tweak                 PEER with a valid importer share answering the agent's
//                                       last exporter share (tweak != 0 breaks one field), Serve
//   kDecode    u16 length, bytes        the bytes go to every decoder of agent/ directly
//   kSealManifest u64 sequence, u8 tweak   a manifest (§6.1) sealed under the session key the
//                                       target knows (if any) at bounce offset 0, describing the
//                                       private pages and the sequences the agent imported;
//                                       tweak % 8 breaks one thing: 1 count, 2 digest, 3 flags,
//                                       4 magic, 5 the header's gfn (a page's), 6 epoch; else none

#include <cstdint>

#include "agent/key_agreement.h"
#include "agent/platform_key.h"
#include "agent/wire.h"
#include "base/bytes.h"
#include "base/expected.h"
#include "base/secret.h"

namespace gmem::fuzz::agent_input {

enum class Setup : uint8_t {
  kIdle = 0,              // a fresh agent
  kExportAwaitPeer = 1,   // HELLO(export, transport) served
  kExportTransport = 2,   // ... and PEER with the target's importer share: READY (export)
  kExportSealed = 3,      // HELLO(export, sealed): READY (export)
  kImportTransport = 4,   // HELLO(import, transport) with the target's exporter share: READY (import)
  kImportSealed = 5,      // HELLO(import, sealed) with SealedDescriptor(): READY (import)
  kUnprovisioned = 6,     // an agent without a platform key
};
inline constexpr uint8_t kSetupCount = 7;

enum class Op : uint8_t {
  kRawPage = 0,
  kRequest = 1,
  kBounce = 2,
  kSealBlob = 3,
  kPeer = 4,
  kDecode = 5,
  kSealManifest = 6,
};
inline constexpr uint8_t kOpCount = 7;

inline constexpr uint8_t kPlatformNoTracking = 1u << 0;
inline constexpr uint8_t kPlatformEmpty = 1u << 3;
// 640: RAM past the agent area (gfns 320..511); 512: it ends with the area; 320: it ends before
// it; 2^40: huge (offsets near the top of u64 when multiplied by the page size stay reachable).
inline constexpr uint64_t kGfnLimits[4] = {640, 512, 320, uint64_t{1} << 40};
inline uint64_t GfnLimitOf(uint8_t platform) { return kGfnLimits[(platform >> 1) & 3]; }

inline constexpr size_t kMaxServes = 32;
inline constexpr uint32_t kSealedEpoch = 5;     // the epoch of SealedDescriptor()
inline constexpr uint32_t kTransportEpoch = 9;  // the epoch of the target's exporter share

// The platform secret (bytes 0x40, 0x41, ...), the guest identity and the session of every
// input. Ed25519 signatures are deterministic, so SealedDescriptor() is the same on every run.
inline SecretBytes PlatformSecret() {
  SecretBytes s(agent::kPlatformSecretBytes);
  for (size_t i = 0; i < s.size(); ++i) s.data()[i] = static_cast<std::byte>(0x40 + i);
  return s;
}
inline agent::Measurement FuzzMeasurement() { return agent::MeasurementOf("agent_request_fuzz", {}); }
inline agent::SessionId FuzzSession() {
  agent::SessionId s{};
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::byte>(0xa0 + i);
  return s;
}

// A sealing descriptor (a share with mode SEALED) for FuzzSession() at kSealedEpoch, with a fixed
// salt, signed by `key`: HELLO(import, sealed) with it is accepted.
inline Expected<Bytes> SealedDescriptor(const agent::PlatformKey& key) {
  agent::Share share;
  share.role = agent::Role::kExport;
  share.mode = agent::Mode::kSealed;
  share.epoch = kSealedEpoch;
  share.session_id = FuzzSession();
  share.measurement = FuzzMeasurement();
  for (size_t i = 0; i < share.key_material.size(); ++i) share.key_material[i] = static_cast<std::byte>(0x5a ^ i);
  GMEM_ASSIGN_OR_RETURN(SecretBytes sealing, agent::DeriveSealingKey(key, share.measurement, share.key_material,
                                                                     share.session_id, share.epoch));
  GMEM_ASSIGN_OR_RETURN(share.key_check,
                        agent::SealingKeyCheck(sealing, ByteSpan(agent::EncodeShare(share)).first(agent::kShareCheckedBytes)));
  GMEM_RETURN_IF_ERROR(agent::SignShare(share, key));
  return agent::EncodeShare(share);
}

// Builds inputs (the seed generator's side of the encoding).
class InputBuilder {
 public:
  InputBuilder(Setup setup, uint8_t platform) {
    w_.U8(static_cast<uint8_t>(setup));
    w_.U8(platform);
  }
  InputBuilder(const InputBuilder&) = delete;  // w_ refers to out_
  InputBuilder& operator=(const InputBuilder&) = delete;
  InputBuilder& RawPage(ByteSpan page) {
    w_.U8(static_cast<uint8_t>(Op::kRawPage));
    w_.U16(static_cast<uint16_t>(page.size()));
    w_.Raw(page);
    return *this;
  }
  InputBuilder& Request(agent::MessageType type, ByteSpan body) {
    w_.U8(static_cast<uint8_t>(Op::kRequest));
    w_.U8(static_cast<uint8_t>(type));
    w_.U16(static_cast<uint16_t>(body.size()));
    w_.Raw(body);
    return *this;
  }
  InputBuilder& Bounce(uint32_t offset, ByteSpan bytes) {
    w_.U8(static_cast<uint8_t>(Op::kBounce));
    w_.U32(offset);
    w_.U16(static_cast<uint16_t>(bytes.size()));
    w_.Raw(bytes);
    return *this;
  }
  InputBuilder& SealBlob(uint32_t offset, uint64_t gfn, uint64_t sequence, uint8_t tweak) {
    w_.U8(static_cast<uint8_t>(Op::kSealBlob));
    w_.U32(offset);
    w_.U64(gfn);
    w_.U64(sequence);
    w_.U8(tweak);
    return *this;
  }
  InputBuilder& Peer(uint8_t tweak) {
    w_.U8(static_cast<uint8_t>(Op::kPeer));
    w_.U8(tweak);
    return *this;
  }
  InputBuilder& SealManifest(uint64_t sequence, uint8_t tweak) {
    w_.U8(static_cast<uint8_t>(Op::kSealManifest));
    w_.U64(sequence);
    w_.U8(tweak);
    return *this;
  }
  InputBuilder& Decode(ByteSpan bytes) {
    w_.U8(static_cast<uint8_t>(Op::kDecode));
    w_.U16(static_cast<uint16_t>(bytes.size()));
    w_.Raw(bytes);
    return *this;
  }
  const Bytes& bytes() const { return out_; }

 private:
  Bytes out_;
  ByteWriter w_{out_};
};

}  // namespace gmem::fuzz::agent_input
