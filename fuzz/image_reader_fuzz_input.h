#pragma once
// The input encoding of the image_reader_fuzz target, shared by the target
// (fuzz/image_reader_fuzz.cc) and its seed generator (fuzz/make_corpus.cc) so the checked-in
// corpus in fuzz/corpus/image_reader_fuzz/ keeps matching what the target expects.
//
// An input that starts with the image magic ("GMEMIMG\n") is a whole image: it is read once with
// the fixed key below and once as an unencrypted image (allow_insecure). Any other input is
//
//   selector (1 byte) ‖ payload
//
// where (selector & 0x7f) % kModeCount picks a Mode. Modes that take a public and a sealed part
// split the payload as  public_length (u16 LE) ‖ public ‖ sealed  (public_length is clamped to
// what is there). For kPages, selector bit 7 set means the header's compression is NONE.

#include <algorithm>
#include <cstdint>

#include "base/bytes.h"
#include "base/secret.h"
#include "format/keys.h"
#include "format/records.h"
#include "format/wire.h"

namespace gmem::fuzz {

enum class Mode : uint8_t {
  kLayout = 0,     // DecodeLayout(payload)
  kAttrs = 1,      // DecodeAttrs(payload, FuzzLayout())
  kPages = 2,      // PageBatchDecoder::Decode(public, sealed, FuzzLayout(), compression)
  kPrivate = 3,    // DecodePrivate(public, sealed, FuzzLayout())
  kPass = 4,       // DecodePass(payload)
  kState = 5,      // DecodeState(public, sealed)
  kEnd = 6,        // DecodeEnd(payload)
  kHeader = 7,     // DecodeHeader(payload)
  kFrame = 8,      // DecodeFrame(payload)
  kKeyFile = 9,    // ParseKeyFile(payload)
  // payload is an unencrypted image whose header checksum, record checksums and END digest the
  // target recomputes before reading it, so mutations get past the XXH3-128 checks.
  kFixedUpImage = 10,
};
inline constexpr uint8_t kModeCount = 11;
inline constexpr uint8_t kSelectorNoCompression = 0x80;

inline Mode ModeOf(uint8_t selector) { return static_cast<Mode>((selector & 0x7f) % kModeCount); }

inline bool StartsWithMagic(ByteSpan in) {
  if (in.size() < format::kMagic.size()) return false;
  return std::equal(format::kMagic.begin(), format::kMagic.end(), in.begin(),
                    [](uint8_t m, std::byte b) { return std::to_integer<uint8_t>(b) == m; });
}

// The key of the encrypted seeds: bytes 0, 1, ..., 31 (the same as the format tests' FixedKey()).
inline SecretBytes FuzzKey() {
  SecretBytes key(format::kKeySize);
  for (size_t i = 0; i < format::kKeySize; ++i) key.data()[i] = static_cast<std::byte>(i);
  return key;
}

// The layout the direct decoders are checked against. It has edge cases on purpose: huge pages,
// 1 GiB pages and a region of the maximum size (2^46 bytes).
inline format::LayoutRecord FuzzLayout() {
  format::LayoutRecord layout;
  layout.regions.push_back(format::Region{1, 4096, 0, 1ull << 30, 0, 0});
  layout.regions.push_back(format::Region{7, 2u << 20, 4ull << 30, 1ull << 30, 1ull << 30, 1});
  layout.regions.push_back(format::Region{9, 4096, 1ull << 46, 1ull << 46, 0, 0});
  layout.regions.push_back(format::Region{11, 1u << 30, 1ull << 47, 1ull << 46, 0, 0});
  return layout;
}

struct SplitParts {
  ByteSpan public_part;
  ByteSpan sealed_part;
};

inline SplitParts SplitPayload(ByteSpan payload) {
  if (payload.size() < 2) return {};
  size_t public_length = std::min<size_t>(LoadLe<uint16_t>(payload.data()), payload.size() - 2);
  return {payload.subspan(2, public_length), payload.subspan(2 + public_length)};
}

// The inverse of SplitPayload, for the seed generator. REQUIRES: public_part.size() < 65536.
inline Bytes JoinPayload(ByteSpan public_part, ByteSpan sealed_part) {
  Bytes out;
  ByteWriter w(out);
  w.U16(static_cast<uint16_t>(public_part.size()));
  w.Raw(public_part);
  w.Raw(sealed_part);
  return out;
}

}  // namespace gmem::fuzz
