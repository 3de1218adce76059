#pragma once
// Incremental snapshots (docs/snapshots.md, "Incremental"): a file stream may carry, in STATE
// records, the hash of every page of guest memory as it was at pause ("page-hashes/<region>/<n>"
// entries, XXH3-128 per page, at most kPageHashesPerEntry pages each). A later save of the same
// VM with that image as its parent sends only the pages whose hash differs (in both slot modes:
// the table does not depend on who else read the VMM's dirty log in between), and names the
// parent in its header (stream id and channel-0 END digest); restoring applies the chain oldest
// first.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/expected.h"
#include "format/records.h"
#include "format/wire.h"
#include "memory/content_hash_source.h"
#include "migrate/migration_types.h"

namespace gmem::migrate {

inline constexpr char kPageHashesPrefix[] = "page-hashes/";
inline constexpr uint64_t kPageHashesPerEntry = uint64_t{1} << 19;  // 8 MiB of hashes per entry

// STATE records (one entry each) holding `hashes`, the table of region `region_id`.
std::vector<format::StateRecord> EncodePageHashes(uint32_t region_id, std::span<const memory::PageHash> hashes);

// Collects the page-hash entries of an image's STATE records and checks them against its layout.
class PageHashTable {
 public:
  explicit PageHashTable(const format::LayoutRecord& layout);
  // Takes the entry if it is a page-hash entry (`taken` says whether it was); kCorrupt on a
  // malformed one (unknown region, bad index or size, a duplicate).
  Status Add(const format::StateEntry& entry, bool& taken);
  // The complete table, per region in layout order; kCorrupt if any entry is missing, kNotFound-
  // like kIncompatible if the image carries no table at all.
  Expected<std::vector<std::vector<memory::PageHash>>> Finish() &&;

 private:
  format::LayoutRecord layout_;
  std::vector<std::vector<memory::PageHash>> hashes_;
  std::vector<std::vector<bool>> have_;  // per region, per entry index
  bool any_ = false;
};

// What an incremental save needs of its parent image.
struct IncrementalBase {
  format::StreamId parent_stream_id{};
  format::Digest parent_digest{};  // the parent's channel-0 END digest
  format::LayoutRecord layout;
  std::vector<std::vector<memory::PageHash>> hashes;  // per region, layout order
};

// Reads and verifies the whole image at `path` (a file stream, one channel) and returns what a
// child needs: its identity and page-hash table. kIncompatible if it has no table (saved without
// page hashes).
Expected<IncrementalBase> LoadIncrementalBase(const std::string& path, const MigrationKey& key);

}  // namespace gmem::migrate
