#pragma once
// Wire constants of the gmemkit image format v1.0. Mirrors format/FORMAT.md section by section;
// a change here changes the spec, the version and the golden images in the same commit.

#include <array>
#include <cstddef>
#include <cstdint>

namespace gmem::format {

// §2 Header.
inline constexpr std::array<uint8_t, 8> kMagic = {'G', 'M', 'E', 'M', 'I', 'M', 'G', '\n'};
inline constexpr uint16_t kVersionMajor = 1;
inline constexpr uint16_t kVersionMinor = 0;
inline constexpr size_t kHeaderSize = 192;
inline constexpr size_t kHeaderWrapAadSize = 144;  // header[0..143] is the key wrap's AAD
inline constexpr size_t kHeaderTagOffset = 176;

enum class Cipher : uint8_t { kInvalid = 0, kAes256Gcm = 1, kNone = 2 };
enum class Compression : uint8_t { kInvalid = 0, kNone = 1, kZstd = 2 };
enum class KeyWrap : uint8_t { kInvalid = 0, kKeyFile = 1, kPassphrase = 2, kNone = 3 };

inline constexpr uint8_t kHeaderFlagHasParent = 1u << 0;
inline constexpr uint8_t kHeaderKnownFlags = kHeaderFlagHasParent;
inline constexpr uint16_t kMaxChannels = 64;

inline constexpr size_t kStreamIdSize = 16;
inline constexpr size_t kDigestSize = 32;
inline constexpr size_t kSaltSize = 16;
inline constexpr size_t kKeyIdSize = 8;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kDataKeySize = 32;
inline constexpr size_t kTagSize = 16;

// scrypt cost bounds (§2) and defaults (§4.2).
inline constexpr uint8_t kMinScryptLog2N = 10;
inline constexpr uint8_t kMaxScryptLog2N = 20;
inline constexpr uint32_t kMaxScryptR = 16;
inline constexpr uint32_t kMaxScryptP = 4;
inline constexpr uint64_t kMaxScryptMemoryBytes = 1ull << 30;
inline constexpr uint8_t kDefaultScryptLog2N = 15;
inline constexpr uint32_t kDefaultScryptR = 8;
inline constexpr uint32_t kDefaultScryptP = 1;

// §3 Record frame.
inline constexpr size_t kFrameSize = 24;
inline constexpr uint32_t kMaxPublicLength = 64u << 10;
inline constexpr uint32_t kMaxSealedLength = 64u << 20;

enum class RecordType : uint8_t {
  kInvalid = 0,
  kLayout = 1,
  kAttrs = 2,
  kPages = 3,
  kPrivate = 4,
  kPass = 5,
  kState = 6,
  kEnd = 7,
};
const char* RecordTypeName(RecordType type);

// §5.1 LAYOUT.
inline constexpr uint32_t kMaxRegions = 256;
inline constexpr size_t kRegionEntrySize = 48;
inline constexpr uint32_t kMinPageSize = 4096;
inline constexpr uint32_t kMaxPageSize = 1u << 30;
inline constexpr uint64_t kMaxRegionBytes = 1ull << 46;

// §5.2 ATTRS.
enum class PageAttr : uint8_t { kInvalid = 0, kShared = 1, kPrivate = 2 };
inline constexpr uint32_t kAttrsHeaderSize = 16;
inline constexpr uint32_t kAttrRunSize = 24;
// As many runs as fit one public part (64 KiB): 2730.
inline constexpr uint32_t kMaxAttrRuns = (kMaxPublicLength - kAttrsHeaderSize) / kAttrRunSize;

// §5.3 PAGES.
enum class PageEncoding : uint8_t { kInvalid = 0, kRaw = 1, kZstd = 2 };
enum class RunKind : uint8_t { kInvalid = 0, kData = 1, kZero = 2 };
inline constexpr size_t kPagesSummarySize = 32;
inline constexpr size_t kPageRunSize = 16;
inline constexpr uint32_t kMaxPageRuns = 4096;
inline constexpr uint64_t kMaxBatchDataBytes = 16u << 20;

// §5.4 PRIVATE.
inline constexpr size_t kPrivateSummarySize = 24;
inline constexpr size_t kBlobEntryHeaderSize = 16;
inline constexpr uint32_t kMaxBlobs = 4096;
inline constexpr uint32_t kMaxBlobBytes = 64u << 10;

// §5.5 PASS.
inline constexpr size_t kPassSize = 64;
inline constexpr uint32_t kPassFlagFinal = 1u << 0;
inline constexpr uint32_t kPassKnownFlags = kPassFlagFinal;

// §5.6 STATE.
inline constexpr size_t kStateSummarySize = 8;
inline constexpr size_t kStateEntryHeaderSize = 8;
inline constexpr uint32_t kMaxStateEntries = 256;
inline constexpr uint16_t kMaxStateNameLength = 64;
inline constexpr uint32_t kMaxStateBlobBytes = 16u << 20;

// §5.7 END.
inline constexpr size_t kEndSize = 72;

using StreamId = std::array<std::byte, kStreamIdSize>;
using Digest = std::array<std::byte, kDigestSize>;
using Tag = std::array<std::byte, kTagSize>;

}  // namespace gmem::format
