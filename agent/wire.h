#pragma once
// Wire constants of the gmemkit agent protocol v1.1. Mirrors docs/agent-protocol.md section by
// section; a change here changes the spec and the version in the same commit.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gmem::agent {

// §1 Versioning. 1.1 added FINISH (§4.7), the manifest (§6.1) and INCOMPLETE (§8).
inline constexpr uint16_t kVersionMajor = 1;
inline constexpr uint16_t kVersionMinor = 1;

// §2 The agent area: guest-physical, always shared, in the first region of guest RAM.
inline constexpr uint64_t kAreaGpa = 0x140000;
inline constexpr uint64_t kAreaBytes = 0xc0000;  // up to 0x200000
inline constexpr uint64_t kRequestOffset = 0x0;       // the request page
inline constexpr uint64_t kResponseOffset = 0x1000;   // the response page
inline constexpr uint64_t kBounceOffset = 0x40000;    // GPA 0x180000
inline constexpr size_t kMailboxPageBytes = 4096;
inline constexpr size_t kBounceBytes = 512 * 1024;
static_assert(kBounceOffset + kBounceBytes == kAreaBytes);
static_assert(kResponseOffset + kMailboxPageBytes <= kBounceOffset);

// §3 Mailbox headers.
inline constexpr uint32_t kRequestMagic = 0x51414d47;   // "GMAQ"
inline constexpr uint32_t kResponseMagic = 0x52414d47;  // "GMAR"
inline constexpr size_t kHeaderBytes = 32;
inline constexpr size_t kMaxBodyBytes = kMailboxPageBytes - kHeaderBytes;  // 4064

enum class MessageType : uint16_t {
  kInvalid = 0,
  kHello = 1,
  kPeer = 2,
  kExport = 3,
  kImport = 4,
  kDirty = 5,
  kAbort = 6,
  kFinish = 7,  // since 1.1
};
inline constexpr uint16_t kMaxMessageType = 7;
std::string_view MessageTypeName(MessageType type);
// The minor version that introduced `type` (§1): a host sends each request with it, so an agent
// of an older minor still serves every message it knows; an agent refuses a request whose minor
// is older than its type's (MALFORMED).
constexpr uint16_t MessageMinor(MessageType type) { return type == MessageType::kFinish ? 1 : 0; }

// §8 Status codes (u16). Zero is success; every other value names one way a request failed.
enum class AgentStatus : uint16_t {
  kOk = 0,
  kMalformed = 1,       // the request (or a share) is not well-formed
  kVersion = 2,         // unsupported protocol version
  kBadState = 3,        // the request does not fit the session's state or role
  kNotProvisioned = 4,  // the agent has no platform key
  kAuth = 5,            // a signature or a blob's tag did not verify
  kIdentity = 6,        // the peer or snapshot belongs to another guest identity or platform
  kWrongEpoch = 7,      // a blob of another epoch
  kWrongGfn = 8,        // a blob for another gfn than the host named
  kReplay = 9,          // a blob whose sequence is not above the last one imported for its gfn
  kNotPrivate = 10,     // EXPORT entry: the page is not private (now)
  kOutOfRange = 11,     // a gfn outside guest RAM or inside the agent area
  kLimit = 12,          // too many entries, or offsets outside the bounce buffer
  kSessionFailed = 13,  // an earlier security failure ended the session: only HELLO/ABORT
  kInternal = 14,       // the agent failed (crypto, platform)
  kIncomplete = 15,     // FINISH: the private pages here are not the exporter's latest (since 1.1)
};
std::string_view AgentStatusName(AgentStatus status);
inline constexpr uint16_t kMaxAgentStatus = 15;

// §4 HELLO.
enum class Role : uint8_t { kInvalid = 0, kExport = 1, kImport = 2 };
enum class Mode : uint8_t { kInvalid = 0, kTransport = 1, kSealed = 2 };
std::string_view RoleName(Role role);
std::string_view ModeName(Mode mode);

inline constexpr size_t kSessionIdBytes = 32;
inline constexpr size_t kMeasurementBytes = 32;
using SessionId = std::array<std::byte, kSessionIdBytes>;
using Measurement = std::array<std::byte, kMeasurementBytes>;

inline constexpr uint32_t kHelloFlagKeyReady = 1u << 0;

// §5 Share (240 bytes).
inline constexpr uint32_t kShareMagic = 0x53414d47;  // "GMAS"
inline constexpr size_t kShareBytes = 240;
inline constexpr size_t kShareSignedBytes = 176;  // the signature covers share[0..175]
inline constexpr size_t kShareCheckedBytes = 144; // the key check covers share[0..143]
inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kSignatureBytes = 64;

// §6 Blob: 32-byte header, the page's ciphertext, a 16-byte tag.
inline constexpr uint32_t kBlobMagic = 0x42504d47;  // "GMPB"
inline constexpr uint8_t kBlobVersion = 1;
inline constexpr uint8_t kBlobAttrPrivate = 2;      // the format's PageAttr::kPrivate
inline constexpr uint8_t kPageShift = 12;
inline constexpr size_t kPageBytes = size_t{1} << kPageShift;
inline constexpr size_t kBlobHeaderBytes = 32;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kBlobBytes = kBlobHeaderBytes + kPageBytes + kTagBytes;  // 4144

// §6.1 The manifest (FINISH, §4.7): a blob whose header names kManifestGfn — no page can have it,
// every gfn is below gfn_limit() <= 2^64 - 1 — and whose plaintext page starts with these 48
// bytes, the rest zero. Its flags are also the FINISH response's flags.
inline constexpr uint64_t kManifestGfn = 0xffffffffffffffffull;
inline constexpr uint32_t kManifestMagic = 0x4e464d47;  // "GMFN"
inline constexpr uint16_t kManifestVersion = 1;
inline constexpr uint16_t kManifestFlagUntracked = 1u << 0;  // freshness not checked (§4.7)
inline constexpr size_t kManifestDigestBytes = 32;
inline constexpr size_t kManifestHeaderBytes = 16 + kManifestDigestBytes;  // 48
inline constexpr size_t kManifestEntryBytes = 16;  // digest input: u64 gfn, u64 last sequence
using ManifestDigest = std::array<std::byte, kManifestDigestBytes>;

// §7 Per-request limits.
inline constexpr size_t kExportEntryBytes = 24;
inline constexpr size_t kImportEntryBytes = 16;
inline constexpr uint32_t kMaxPagesPerRequest = kBounceBytes / kBlobBytes;  // 126
static_assert(8 + kMaxPagesPerRequest * 8 <= kMaxBodyBytes);                      // EXPORT request
static_assert(8 + kMaxPagesPerRequest * kExportEntryBytes <= kMaxBodyBytes);      // EXPORT response
static_assert(8 + kMaxPagesPerRequest * kImportEntryBytes <= kMaxBodyBytes);      // IMPORT request
inline constexpr uint32_t kMaxDirtyPerRequest = kBounceBytes / 8;                 // 65536 gfns
inline constexpr size_t kMaxErrorTextBytes = 512;

inline constexpr uint32_t kDirtyFlagAll = 1u << 0;   // the agent cannot track: every private page
inline constexpr uint32_t kDirtyFlagMore = 1u << 1;  // ask again from next_cursor

// ABORT reasons (informational).
inline constexpr uint32_t kAbortByHost = 1;
inline constexpr uint32_t kAbortPeerFailed = 2;

}  // namespace gmem::agent
