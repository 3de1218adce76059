#pragma once
// Builders shared by the format tests: keys, layouts, page contents of each kind, and complete
// images with every record type.

#include <cstdint>
#include <memory>
#include <random>

#include "base/bytes.h"
#include "format/image_reader.h"
#include "format/image_writer.h"
#include "format/keys.h"
#include "format/stream_keys.h"

namespace gmem::format::testing {

// A fixed key (bytes 0..31) and a second, different one.
SecretBytes FixedKey(uint8_t first = 0);
KeySource FixedKeySource(uint8_t first = 0);
// Cheap scrypt costs so passphrase tests stay fast.
KeySource TestPassphrase(std::string_view passphrase);

LayoutRecord TwoRegionLayout();

enum class PageKind { kZero, kText, kStructured, kRandom };
// One page of `size` bytes of the given kind, deterministic in `seed`.
Bytes MakePage(PageKind kind, uint64_t seed, size_t size = 4096);

// A complete small image with every record type, written with `key`.
struct SampleImage {
  Bytes bytes;
  std::shared_ptr<const StreamKeys> keys;
  LayoutRecord layout;
  AttrsRecord attrs;
  std::vector<Bytes> pages;  // the data pages of the PAGES record, in order
  PrivateRecord priv;
  PassRecord pass;
  StateRecord state;
  EndRecord end;
};
struct SampleOptions {
  Compression compression = Compression::kZstd;
  size_t data_pages = 3;
  std::optional<StreamId> stream_id;
};
SampleImage WriteSample(const KeySource& key, const SampleOptions& options = {});

// Reads every record of `bytes`; returns the first error or the records' types.
Expected<std::vector<RecordType>> ReadAll(ByteSpan bytes, const KeySource& key, bool allow_insecure = false);

}  // namespace gmem::format::testing
