#include "transport/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <string>

namespace gmem::transport {
namespace {

constexpr std::array<uint8_t, 8> kMagic = {'G', 'M', 'E', 'M', 'H', 'S', '1', '\n'};
constexpr uint16_t kVersion = 1;
constexpr uint16_t kFlagInsecure = 1;
constexpr size_t kNonceSize = 32;
constexpr size_t kMacSize = 32;
constexpr size_t kHelloSize = 8 + 2 + 2 + 2 + 2 + kNonceSize + kSessionIdSize;  // 64
constexpr size_t kChallengeSize = 8 + 2 + 2 + 4 + kNonceSize + kMacSize;        // 80
constexpr size_t kProofSize = 8 + 4 + 4 + kMacSize;                               // 48
constexpr size_t kResultSize = 8 + 4 + 4;                                         // 16
enum Verdict : uint32_t { kAccepted = 0, kWrongKey = 1, kModeMismatch = 2, kBadSession = 3 };

using Mac = std::array<std::byte, kMacSize>;

Status Failed(const std::string& why) { return AuthError("handshake failed: " + why); }

// HMAC-SHA256(key, label ‖ parts...). In insecure mode the key is all zero: the MACs then only
// check that both ends saw the same transcript.
Expected<Mac> Hmac(const SecretBytes& key, std::string_view label, std::initializer_list<ByteSpan> parts) {
  Bytes msg(label.size());
  std::memcpy(msg.data(), label.data(), label.size());
  for (ByteSpan p : parts) msg.insert(msg.end(), p.begin(), p.end());
  Mac mac{};
  size_t len = 0;
  std::array<std::byte, 32> zero{};
  const void* k = key.empty() ? static_cast<const void*>(zero.data()) : key.data();
  size_t klen = key.empty() ? zero.size() : key.size();
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, k, klen, reinterpret_cast<unsigned char*>(msg.data()),
                msg.size(), reinterpret_cast<unsigned char*>(mac.data()), mac.size(), &len) == nullptr) {
    return Status(Code::kIo, "OpenSSL: HMAC failed");
  }
  return mac;
}

bool MacEqual(const Mac& a, ByteSpan b) { return b.size() == kMacSize && CRYPTO_memcmp(a.data(), b.data(), kMacSize) == 0; }

Status ReadMessage(ByteSource& in, MutableByteSpan buf, const char* what) {
  GMEM_ASSIGN_OR_RETURN(size_t got, ReadFull(in, buf));
  if (got < buf.size()) {
    return Status(Code::kPeerAborted, std::string("handshake failed: peer closed the connection before ") + what);
  }
  if (std::memcmp(buf.data(), kMagic.data(), kMagic.size()) != 0) {
    return ProtocolError(std::string("handshake failed: ") + what + " is not a gmemkit handshake message");
  }
  return Status::Ok();
}

void PutMagic(ByteWriter& w) {
  for (uint8_t c : kMagic) w.U8(c);
}

Status VerdictError(uint32_t verdict, bool from_peer) {
  std::string who = from_peer ? "the peer says: " : "";
  switch (verdict) {
    case kWrongKey: return Failed(who + "the two ends hold different keys");
    case kModeMismatch: return Failed(who + "one end uses --insecure-no-encryption and the other does not");
    case kBadSession: return Failed(who + "this channel belongs to another migration");
    default: return ProtocolError("handshake failed: unknown verdict " + std::to_string(verdict));
  }
}

Expected<HandshakeResult> Initiate(ByteSink& out, ByteSource& in, const SecretBytes& key, const HandshakeOptions& o) {
  Bytes hello;
  ByteWriter w(hello);
  PutMagic(w);
  w.U16(kVersion);
  w.U16(o.insecure ? kFlagInsecure : 0);
  w.U16(o.channel);
  w.U16(o.channel_count);
  std::array<std::byte, kNonceSize> nonce_i{};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce_i.data()), kNonceSize) != 1) {
    return Status(Code::kIo, "OpenSSL: RAND_bytes failed");
  }
  w.Raw(nonce_i);
  w.Raw(o.channel == 0 ? SessionId{} : o.session_id);
  GMEM_RETURN_IF_ERROR(out.Write(hello));

  Bytes challenge(kChallengeSize);
  GMEM_RETURN_IF_ERROR(ReadMessage(in, challenge, "its challenge"));
  ByteReader r(challenge);
  r.Raw(8, "magic");
  uint16_t version = r.U16("version");
  uint16_t flags = r.U16("flags");
  uint32_t verdict = r.U32("verdict");
  ByteSpan nonce_r = r.Raw(kNonceSize, "nonce");
  ByteSpan mac_r = r.Raw(kMacSize, "mac");
  if (version != kVersion) return IncompatibleError("handshake failed: peer speaks version " + std::to_string(version));
  if (verdict != kAccepted) return VerdictError(verdict, true);

  uint32_t mine = kAccepted;
  if (((flags & kFlagInsecure) != 0) != o.insecure) mine = kModeMismatch;
  GMEM_ASSIGN_OR_RETURN(Mac expect_r, Hmac(key, "gmemkit hs responder", {hello, nonce_r}));
  if (mine == kAccepted && !MacEqual(expect_r, mac_r)) mine = kWrongKey;
  GMEM_ASSIGN_OR_RETURN(Mac mac_i, Hmac(key, "gmemkit hs initiator", {hello, nonce_r, mac_r}));
  Bytes proof;
  ByteWriter pw(proof);
  PutMagic(pw);
  pw.U32(mine);
  pw.U32(0);
  pw.Raw(mac_i);
  GMEM_RETURN_IF_ERROR(out.Write(proof));
  if (mine != kAccepted) return VerdictError(mine, false);

  Bytes result(kResultSize);
  GMEM_RETURN_IF_ERROR(ReadMessage(in, result, "its verdict"));
  uint32_t theirs = LoadLe<uint32_t>(result.data() + 8);
  if (theirs != kAccepted) return VerdictError(theirs, true);

  HandshakeResult res;
  if (o.channel == 0) {
    GMEM_ASSIGN_OR_RETURN(Mac sid, Hmac(key, "gmemkit hs session", {hello, nonce_r}));
    std::memcpy(res.session_id.data(), sid.data(), kSessionIdSize);
  } else {
    res.session_id = o.session_id;
  }
  return res;
}

Expected<HandshakeResult> Respond(ByteSink& out, ByteSource& in, const SecretBytes& key, const HandshakeOptions& o) {
  Bytes hello(kHelloSize);
  GMEM_RETURN_IF_ERROR(ReadMessage(in, hello, "its hello"));
  ByteReader r(hello);
  r.Raw(8, "magic");
  uint16_t version = r.U16("version");
  uint16_t flags = r.U16("flags");
  uint16_t channel = r.U16("channel");
  uint16_t channel_count = r.U16("channel_count");
  r.Raw(kNonceSize, "nonce");
  ByteSpan sid = r.Raw(kSessionIdSize, "session");

  uint32_t verdict = kAccepted;
  if (((flags & kFlagInsecure) != 0) != o.insecure) verdict = kModeMismatch;
  std::array<std::byte, kNonceSize> nonce_r{};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce_r.data()), kNonceSize) != 1) {
    return Status(Code::kIo, "OpenSSL: RAND_bytes failed");
  }
  GMEM_ASSIGN_OR_RETURN(Mac mac_r, Hmac(key, "gmemkit hs responder", {hello, nonce_r}));
  Bytes challenge;
  ByteWriter w(challenge);
  PutMagic(w);
  w.U16(kVersion);
  w.U16(o.insecure ? kFlagInsecure : 0);
  w.U32(version != kVersion ? kModeMismatch : verdict);
  w.Raw(nonce_r);
  w.Raw(mac_r);
  GMEM_RETURN_IF_ERROR(out.Write(challenge));
  if (version != kVersion) return IncompatibleError("handshake failed: peer speaks version " + std::to_string(version));
  if (verdict != kAccepted) return VerdictError(verdict, false);

  Bytes proof(kProofSize);
  GMEM_RETURN_IF_ERROR(ReadMessage(in, proof, "its proof"));
  uint32_t theirs = LoadLe<uint32_t>(proof.data() + 8);
  if (theirs != kAccepted) return VerdictError(theirs, true);
  GMEM_ASSIGN_OR_RETURN(Mac expect_i, Hmac(key, "gmemkit hs initiator", {hello, nonce_r, mac_r}));
  uint32_t final_verdict = kAccepted;
  if (!MacEqual(expect_i, ByteSpan(proof).subspan(16))) final_verdict = kWrongKey;
  bool session_ok = channel == o.channel && channel_count == o.channel_count &&
                    (o.channel == 0 || std::memcmp(sid.data(), o.session_id.data(), kSessionIdSize) == 0);
  if (final_verdict == kAccepted && !session_ok) final_verdict = kBadSession;
  Bytes result;
  ByteWriter rw(result);
  PutMagic(rw);
  rw.U32(final_verdict);
  rw.U32(0);
  GMEM_RETURN_IF_ERROR(out.Write(result));
  if (final_verdict != kAccepted) return VerdictError(final_verdict, false);

  HandshakeResult res;
  if (o.channel == 0) {
    GMEM_ASSIGN_OR_RETURN(Mac s, Hmac(key, "gmemkit hs session", {hello, nonce_r}));
    std::memcpy(res.session_id.data(), s.data(), kSessionIdSize);
  } else {
    res.session_id = o.session_id;
  }
  return res;
}

}  // namespace

Expected<HandshakeResult> Handshake(ByteSink& out, ByteSource& in, const SecretBytes& key,
                                    const HandshakeOptions& options) {
  if (!options.insecure && key.size() != 32) return InvalidArgument("the handshake needs a 32-byte key");
  if (options.channel >= options.channel_count) return InvalidArgument("channel index out of range");
  const SecretBytes& k = key;
  SecretBytes none;
  return options.role == HandshakeOptions::Role::kInitiator
             ? Initiate(out, in, options.insecure ? none : k, options)
             : Respond(out, in, options.insecure ? none : k, options);
}

}  // namespace gmem::transport
