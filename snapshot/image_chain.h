#pragma once
// Chains of incremental images (docs/snapshots.md, "Incremental snapshots"). An increment names
// its parent in its header: the parent's stream id and the digest of the parent's END record
// (FORMAT.md §2, §5.7). FindChain() gathers the images a restore, verify or diff needs, oldest
// first, by looking the parent up by stream id among the images in a directory, reading headers
// only and without a key. Nothing it returns is authenticated: the readers that apply the chain
// check every link with the key (CheckLink(), and migrate::MigrationTarget on restore).

#include <string>
#include <vector>

#include "base/expected.h"
#include "format/image_header.h"
#include "format/wire.h"

namespace gmem::snapshot {

// Longer chains are refused (a directory crafted to loop forever is caught sooner).
inline constexpr size_t kMaxChainLength = 256;

// One image of a chain as found on disk: its header structurally decoded, not authenticated.
struct ChainImage {
  std::string path;
  format::ImageHeader header;
};

// The header of the image at `path`, read without a key. kIo if the file cannot be read;
// kCorrupt if it is no gmemkit image (bad magic, truncated header, ...).
Expected<format::ImageHeader> ReadImageHeader(const std::string& path);

// The chain that ends with `last`, oldest first (just `last` when it has no parent). Each parent
// is the image in `parent_dir` (empty: the directory of last.path) whose header's stream id is
// the one its child names. Files there that are not images, are not regular files, or are named
// like an atomic save's temporary (".NAME.tmp-XXXXXX") are ignored. When several images carry
// that stream id (copies), the one whose END digest (read without a key) matches the child's
// parent digest is taken, else the first by name: the link check on reading decides.
// Errors: kIncompatible when an ancestor is in none of the files ("a child without its parent");
// kCorrupt on a loop or a chain longer than kMaxChainLength; kIo if the directory can't be read.
Expected<std::vector<ChainImage>> FindChain(ChainImage last, const std::string& parent_dir);
// The same for the image at `path` (its header read with ReadImageHeader()).
Expected<std::vector<ChainImage>> FindChain(const std::string& path, const std::string& parent_dir);

// Checks one link with authenticated values: `child` (a header opened with the key) must name the
// image at `parent_path`, whose stream id is `parent_stream_id` and whose channel-0 END digest
// (read with the key) is `parent_end_digest`. kCorrupt, naming both files, if not.
Status CheckLink(const format::ImageHeader& child, const std::string& child_path, const std::string& parent_path,
                 const format::StreamId& parent_stream_id, const format::Digest& parent_end_digest);

}  // namespace gmem::snapshot
