#pragma once
// SourceRegion: what the source engine keeps per guest_memfd region — the toolkit's one mapping,
// the per-attribute dirty tracker and the source that feeds it (KVM's dirty log through the VMM
// in hva slot mode, content hashing in gmem slot mode).

#include <memory>
#include <vector>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "format/records.h"
#include "memory/content_hash_source.h"
#include "memory/dirty_tracker.h"
#include "memory/guest_reported_source.h"
#include "memory/guest_memfd_mapping.h"
#include "migrate/vmm_dirty_log_source.h"

namespace gmem::migrate {

enum class DirtyMode { kKvmDirtyLog, kContentHash };

struct SourceRegion {
  format::Region region;
  std::unique_ptr<memory::GuestMemfdMapping> mapping;
  std::unique_ptr<memory::DirtyTracker> tracker;
  memory::ContentHashSource* hash = nullptr;  // owned by tracker; kContentHash only
  VmmDirtyLogSource* log = nullptr;           // owned by tracker; kKvmDirtyLog only
  // Private pages the guest's agent reports (DIRTY), once an export session is open; owned by
  // tracker. Without it no source watches private pages: they are dirty in every pass.
  memory::GuestReportedSource* agent = nullptr;

  uint64_t first_gmem_page() const { return region.gmem_offset / region.page_size; }
};

// Maps each guest_memfd (one per region, layout order) and builds its tracker with `initial`
// attributes. REQUIRES: fds.size() == layout.regions.size() == initial.size().
Expected<std::vector<SourceRegion>> MakeSourceRegions(const format::LayoutRecord& layout,
                                                      std::vector<UniqueFd>& fds,
                                                      const std::vector<memory::AttributeMap>& initial,
                                                      DirtyMode mode);

// Maps each guest_memfd of an incoming VM for writing (the target side).
Expected<std::vector<memory::GuestMemfdMapping>> MapRegions(const format::LayoutRecord& layout,
                                                            std::vector<UniqueFd>& fds);

}  // namespace gmem::migrate
