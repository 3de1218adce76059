#include "migrate/switchover.h"

#include <poll.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace gmem::migrate {

namespace {

constexpr char kMagic[8] = {'G', 'M', 'E', 'M', 'S', 'W', '1', '\n'};
constexpr size_t kFixedSize = 8 + 4 + 4 + 32;  // magic, type, reason length, mac

void PutU32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}

uint32_t GetU32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint32_t>(p[i]);
  return v;
}

}  // namespace

std::string_view SwitchoverTypeName(SwitchoverType type) {
  switch (type) {
    case SwitchoverType::kReady: return "READY";
    case SwitchoverType::kAbort: return "ABORT";
    case SwitchoverType::kCommit: return "COMMIT";
    case SwitchoverType::kResumed: return "RESUMED";
    case SwitchoverType::kDigest: return "DIGEST";
    case SwitchoverType::kAgentShare: return "AGENT_SHARE";
    default: return "INVALID";
  }
}

Expected<std::array<std::byte, 32>> SwitchoverLink::Mac(SwitchoverType type, const std::string& reason) const {
  Bytes msg;
  const std::string_view label = "gmemkit switchover";
  for (char c : label) msg.push_back(static_cast<std::byte>(c));
  msg.insert(msg.end(), session_.begin(), session_.end());
  std::byte word[4];
  PutU32(word, static_cast<uint32_t>(type));
  msg.insert(msg.end(), word, word + 4);
  for (char c : reason) msg.push_back(static_cast<std::byte>(c));
  static const std::byte kZeroKey[32] = {};
  const void* key = key_->empty() ? kZeroKey : key_->data();
  size_t key_len = key_->empty() ? sizeof(kZeroKey) : key_->size();
  std::array<std::byte, 32> mac{};
  size_t mac_len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key, key_len,
                reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                reinterpret_cast<unsigned char*>(mac.data()), mac.size(), &mac_len) == nullptr ||
      mac_len != mac.size()) {
    return Status(Code::kIo, "OpenSSL: HMAC failed");
  }
  return mac;
}

Status SwitchoverLink::Send(const SwitchoverMessage& message) {
  std::string reason = message.reason.substr(0, kMaxAbortReason);
  GMEM_ASSIGN_OR_RETURN(auto mac, Mac(message.type, reason));
  Bytes frame(kFixedSize + reason.size());
  std::memcpy(frame.data(), kMagic, 8);
  PutU32(frame.data() + 8, static_cast<uint32_t>(message.type));
  PutU32(frame.data() + 12, static_cast<uint32_t>(reason.size()));
  std::memcpy(frame.data() + 16, reason.data(), reason.size());
  std::memcpy(frame.data() + 16 + reason.size(), mac.data(), mac.size());
  return out_->Write(frame).WithContext(std::string("sending ") + std::string(SwitchoverTypeName(message.type)));
}

Expected<SwitchoverMessage> SwitchoverLink::Receive() {
  std::byte head[16];
  GMEM_ASSIGN_OR_RETURN(size_t n, ReadFull(*in_, head));
  if (n == 0) return Status(Code::kPeerAborted, "the peer closed the connection");
  if (n < sizeof(head)) return Status(Code::kPeerAborted, "the connection ended inside a switchover message");
  if (std::memcmp(head, kMagic, 8) != 0) return ProtocolError("not a switchover message (bad magic)");
  SwitchoverMessage message;
  message.type = static_cast<SwitchoverType>(GetU32(head + 8));
  uint32_t reason_len = GetU32(head + 12);
  if (message.type < SwitchoverType::kReady || message.type > SwitchoverType::kAgentShare) {
    return ProtocolError("unknown switchover message type " + std::to_string(GetU32(head + 8)));
  }
  if (reason_len > kMaxAbortReason) return ProtocolError("switchover reason too long");
  Bytes rest(reason_len + 32);
  GMEM_ASSIGN_OR_RETURN(size_t got, ReadFull(*in_, rest));
  if (got < rest.size()) return Status(Code::kPeerAborted, "the connection ended inside a switchover message");
  message.reason.assign(reinterpret_cast<const char*>(rest.data()), reason_len);
  GMEM_ASSIGN_OR_RETURN(auto mac, Mac(message.type, message.reason));
  if (CRYPTO_memcmp(mac.data(), rest.data() + reason_len, mac.size()) != 0) {
    return AuthError(std::string("switchover message ") + std::string(SwitchoverTypeName(message.type)) +
                     ": authentication failed");
  }
  return message;
}

Status SwitchoverLink::Expect(SwitchoverType expected) {
  GMEM_ASSIGN_OR_RETURN(SwitchoverMessage got, Receive());
  if (got.type == expected) return Status::Ok();
  if (got.type == SwitchoverType::kAbort) return Status(Code::kPeerAborted, "the peer aborted: " + got.reason);
  return ProtocolError(std::string("expected ") + std::string(SwitchoverTypeName(expected)) + ", got " +
                       std::string(SwitchoverTypeName(got.type)));
}

Status WaitReadable(int fd, const std::atomic<bool>* cancel) {
  for (;;) {
    if (cancel != nullptr && cancel->load()) return Status(Code::kCancelled, "cancelled");
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, 100);
    if (n > 0) return Status::Ok();  // readable, or hung up: the read that follows tells which
    if (n < 0 && errno != EINTR) return ErrnoStatus(Code::kIo, "poll");
  }
}

}  // namespace gmem::migrate
