#pragma once
// `gmem-snapshot diff A B` (docs/snapshots.md, "diff"): how the VM that image B describes differs
// from the one image A describes — layout (regions added, removed or changed), pages whose
// contents differ (by region, and by the page's attribute in B), pages whose attribute differs,
// and whether the vCPU/device state differs. Both images are decoded and verified in full; what
// is kept is ImageContents (a hash per page), so memory stays proportional to the page count.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/expected.h"
#include "format/keys.h"
#include "format/records.h"
#include "snapshot/image_contents.h"

namespace gmem::snapshot {

// A region of one image that is missing from the other or differs in its layout entry
// (regions are matched by id).
struct RegionChange {
  enum class Kind { kAdded, kRemoved, kChanged };
  Kind kind = Kind::kChanged;
  uint32_t id = 0;
  std::optional<format::Region> a;  // absent for kAdded
  std::optional<format::Region> b;  // absent for kRemoved
  // kChanged: which fields differ ("size", "gpa", "gmem_offset", "page_size", "flags").
  std::vector<std::string> fields;
};

// Pages of a region present in both images (same id), compared page by page over the pages
// both have (a resized region compares its common prefix; a region whose page size changed is
// not compared page by page).
struct RegionDiff {
  uint32_t id = 0;
  uint64_t compared_pages = 0;
  uint64_t differ = 0;          // contents differ
  uint64_t differ_shared = 0;   // ... and the page is shared in B
  uint64_t differ_private = 0;  // ... and the page is private in B
  uint64_t to_private = 0;      // shared in A, private in B
  uint64_t to_shared = 0;       // private in A, shared in B
  uint64_t attr_changes() const { return to_private + to_shared; }
};

struct DiffReport {
  std::vector<RegionChange> layout_changes;
  std::vector<RegionDiff> regions;  // in A's layout order
  uint64_t differ = 0;
  uint64_t differ_shared = 0;
  uint64_t differ_private = 0;
  uint64_t attr_changes = 0;
  bool state_differs = false;

  bool identical() const {
    return layout_changes.empty() && differ == 0 && attr_changes == 0 && !state_differs;
  }
};

DiffReport Compare(const ImageContents& a, const ImageContents& b);

// Reads both files with `key` and compares them. An incremental image is read with its parent
// chain (FindChain() in `parent_dir`, empty: the image's own directory), so it compares as the VM
// it restores to. Errors name the file.
struct DiffInputs {
  ImageContents a;
  ImageContents b;
  std::vector<ChainImage> chain_a;  // oldest first, ending with A
  std::vector<ChainImage> chain_b;
  DiffReport report;
};
Expected<DiffInputs> DiffFiles(const std::string& path_a, const std::string& path_b, const std::string& parent_dir,
                               const format::KeySource& key, const ContentsOptions& options);

}  // namespace gmem::snapshot
