#pragma once
// What `gmem-snapshot inspect` and `verify` report about an image: Summarize() reads only the
// plaintext parts (no key; nothing authenticated), Verify() decrypts and checks every record and
// the END digest with the key.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/io.h"
#include "format/image_header.h"
#include "format/keys.h"
#include "format/records.h"
#include "snapshot/image_chain.h"

namespace gmem::snapshot {

struct ImageSummary {
  format::ImageHeader header;
  std::optional<format::LayoutRecord> layout;
  std::array<uint64_t, 8> records_by_type{};  // indexed by format::RecordType
  uint64_t records = 0;
  uint64_t data_pages = 0;
  uint64_t zero_pages = 0;
  uint64_t private_pages = 0;
  uint64_t raw_bytes = 0;     // data pages × page size
  uint64_t stored_bytes = 0;  // the sealed parts of PAGES records as stored
  uint64_t image_bytes = 0;   // the whole image
  std::optional<format::EndRecord> end;
  // An increment: pages equal to its parent's, so not stored (from the first PASS record's
  // counters: pass 1 handles every page). nullopt for an image without a parent.
  std::optional<uint64_t> unchanged_pages;
  // Verify() only (the names are sealed): whether STATE carries the page-hash table that lets
  // the image be a parent (migrate/incremental.h).
  std::optional<bool> page_hashes;
};

// Walks `source` without a key.
Expected<ImageSummary> Summarize(ByteSource& source);

// Reads every record with `key`, authenticating and decoding it, and checks END.
Expected<ImageSummary> Verify(ByteSource& source, const format::KeySource& key, bool allow_insecure);

// One verified image of a chain.
struct VerifiedImage {
  std::string path;
  ImageSummary summary;
};

// Verifies the image at `path` and, if it is an increment, its whole parent chain (FindChain()
// in `parent_dir`): every image with Verify(), oldest first, and every link with CheckLink()
// (stream id and END digest, both authenticated) and equal layouts. Errors about an ancestor
// name it ("parent 'full.img': ..."). Returns the chain oldest first.
Expected<std::vector<VerifiedImage>> VerifyChain(const std::string& path, const std::string& parent_dir,
                                                 const format::KeySource& key, bool allow_insecure);

}  // namespace gmem::snapshot
