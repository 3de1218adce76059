#pragma once
// DirtySource: one way of learning which pages of a region changed (DESIGN.md, "Dirty tracking
// per attribute"). The DirtyTracker asks every source once per pass, best source first.
// Page indices are relative to the region.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "memory/attribute_map.h"
#include "memory/page.h"
#include "memory/page_bitmap.h"

namespace gmem::memory {

// Why a page is dirty. The first four are sources, in rank order (best first); the rest are
// events the tracker itself records. Zero is invalid (these values appear in reports).
enum class DirtySourceKind : uint8_t {
  kKvmDirtyRing = 1,    // KVM dirty ring (KVM_CAP_DIRTY_LOG_RING_ACQ_REL)
  kKvmDirtyBitmap = 2,  // KVM_GET_DIRTY_LOG (+ KVM_CLEAR_DIRTY_LOG)
  kGuestReported = 3,   // page lists handed in by the guest's agent or the VMM
  kContentHash = 4,     // xxHash3-128 of shared pages versus what was sent
  kConversion = 5,      // the page's attribute changed
  kHostChange = 6,      // the host changed it (punch hole, VMM write) and said so
  kUnsent = 7,          // never sent, or sent with another attribute
  kUncovered = 8,       // no complete source watches it: dirty in every pass
};
inline constexpr size_t kNumDirtySourceKinds = 9;  // index = value; 0 unused
std::string_view DirtySourceKindName(DirtySourceKind kind);

// The pages a source watches: region pages `pages` while they have an attribute it can see.
// `complete` says it sees every change of those pages; an incomplete (supplementary) source's
// reports still count, but pages it alone watches are also hashed or treated as uncovered.
struct Coverage {
  PageRange pages;
  bool sees_shared = false;
  bool sees_private = false;
  bool complete = true;

  bool Sees(PageAttr attr) const { return attr == PageAttr::kShared ? sees_shared : sees_private; }
};

// What the tracker tells a source about the pass.
struct CollectContext {
  // Region attributes at this pass.
  const AttributeMap& attributes;
  // Pages this source is asked to examine: those it watches that no better complete source
  // watches. Sources that report what they saw anyway (KVM) may ignore it; the content hash reads
  // only these (and never a page that is not shared).
  const PageBitmap& candidates;
};

class DirtySource {
 public:
  virtual ~DirtySource() = default;

  virtual DirtySourceKind kind() const = 0;
  virtual Coverage coverage() const = 0;

  // Sets in `changed` (sized to the region) every page that changed since this source's previous
  // Collect. On error nothing may be lost: pages already set in `changed` still count, and what
  // was not reported must be reported by the next Collect.
  virtual Status Collect(const CollectContext& context, PageBitmap& changed) = 0;

  // Told that `page` reached the target with attribute `attr` (after the pass's Collect).
  virtual void OnSent(uint64_t page, PageAttr attr) {
    (void)page;
    (void)attr;
  }
};

}  // namespace gmem::memory
