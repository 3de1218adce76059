#pragma once
// ImageContents: the guest memory an image describes, reduced to one 64-bit hash per page (plus
// the page's attribute and the generation that set it), so that two images can be compared by
// `gmem-snapshot diff` with memory proportional to their page count — 13 bytes a page — never to
// their contents. Built by decoding the image once with format::ImageReader: every record is
// authenticated, and END and end of file are checked, so a damaged image is an error, not a diff.
//
// What a page holds follows the restore rules: the newest generation of a page wins (FORMAT.md
// §6); a ZERO run makes it a zero page; a page in no batch is zero (a fresh guest_memfd); ATTRS
// records overlay the runs they carry, pages start SHARED. A private page's "contents" is its
// agent-sealed blob (the host cannot see more).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/expected.h"
#include "base/io.h"
#include "format/image_header.h"
#include "format/keys.h"
#include "format/records.h"
#include "format/wire.h"
#include "snapshot/image_chain.h"

namespace gmem::snapshot {

struct RegionContents {
  format::Region region;
  std::vector<uint64_t> hashes;          // per page: XXH3-64 of its contents
  std::vector<uint32_t> generations;     // per page: generation of the write that set it (0: none)
  std::vector<format::PageAttr> attrs;   // per page
  uint64_t attrs_generation = 0;
};

struct ImageContents {
  format::ImageHeader header;
  std::vector<RegionContents> regions;  // layout order
  // XXH3-64 over the STATE entries (names and blobs) except "vmm-digest", which is derived from
  // memory; nullopt when the image has no STATE.
  std::optional<uint64_t> state_hash;
  // The VMM's "digest:checksum" stored at save, if any.
  std::optional<std::string> vmm_digest;
  uint64_t records = 0;
};

// The XXH3-64 a page of `page_size` zero bytes hashes to.
uint64_t ZeroPageHash(uint32_t page_size);

struct ContentsOptions {
  bool allow_insecure = false;
  // The tables of one image may take at most this much memory (13 bytes per guest page).
  uint64_t max_table_bytes = uint64_t{1} << 30;
};

// Decodes the whole image from `source` with `key`. Incremental images (HAS_PARENT) and
// multi-channel images are refused (kUnsupported): they do not describe all of memory alone.
Expected<ImageContents> ReadImageContents(ByteSource& source, const format::KeySource& key,
                                          const ContentsOptions& options);

// Decodes a chain (oldest first, as FindChain() returns it) as a restore would apply it: the
// first image is full, each next one an increment of the one before (checked with CheckLink()
// once both are read, and the layouts must be equal), and the result describes the VM of the
// last image (its header, state and stored digest; `records` counts the whole chain). Errors
// name the image ("'inc2.img': record 9 ...", "'inc2.img': parent 'full.img': record 9 ...").
Expected<ImageContents> ReadChainContents(const std::vector<ChainImage>& chain, const format::KeySource& key,
                                          const ContentsOptions& options);

}  // namespace gmem::snapshot
