#pragma once
// DirtyTracker: dirty state per attribute for one region (DESIGN.md, "Dirty tracking per
// attribute"). Per page it keeps the attribute now, the attribute the target has (none before the
// first send) and whether the contents changed since the last send. Each pass asks every
// DirtySource, best first, records conversions as dirty events, treats pages no complete source
// watches as always dirty, and reports what is dirty, per attribute and per source.
//
// Use:   report = BeginPass(attrs, conversions);  send report.dirty;  MarkSent(pages sent);
// A page stays dirty until MarkSent; pages not sent in a pass show up again in the next.
// Not thread-safe; one tracker per region, driven by one thread.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/expected.h"
#include "memory/attribute_map.h"
#include "memory/dirty_source.h"
#include "memory/page_bitmap.h"

namespace gmem::memory {

struct DirtyReport {
  uint64_t pass = 0;           // 1 for the first pass
  PageBitmap dirty;            // pages to send in this pass
  uint64_t dirty_shared = 0;   // dirty pages that are shared now
  uint64_t dirty_private = 0;  // dirty pages that are private now
  // Pages each source or event flagged in this pass, indexed by DirtySourceKind (a page may
  // count under several).
  std::array<uint64_t, kNumDirtySourceKinds> by_source{};

  uint64_t count() const { return dirty_shared + dirty_private; }
  uint64_t flagged_by(DirtySourceKind kind) const { return by_source[static_cast<size_t>(kind)]; }
  // "pass 3: 120 dirty (100 shared, 20 private); kvm-dirty-bitmap 100, guest-reported 20"
  std::string ToString() const;
};

class DirtyTracker {
 public:
  // A region whose pages start with `initial` attributes; nothing has been sent yet, so the first
  // pass reports every page.
  explicit DirtyTracker(const AttributeMap& initial);

  uint64_t npages() const { return attrs_.npages(); }
  uint64_t pass() const { return pass_; }
  // The attributes as of the last BeginPass.
  const AttributeMap& attributes() const { return attrs_; }
  // The attribute the target has for `page`, or 0 (invalid) if it has never received it.
  PageAttr target_attr(uint64_t page) const { return static_cast<PageAttr>(target_[page]); }

  // Adds a source; sources are asked in DirtySourceKind rank order. The tracker owns it.
  void AddSource(std::unique_ptr<DirtySource> source);

  // Records a host-side change (punch hole, VMM write) of region pages `range`.
  // kInvalidArgument outside the region.
  Status NoteHostChange(PageRange range);

  // Starts a pass. `attributes_now` is the region's attribute map now (same npages; else
  // kInvalidArgument); `conversions` are the ranges converted since the last pass (from
  // AttributeSource::TakeConversions) — attribute differences to the last pass are detected as
  // well, but a page converted there and back again is only seen through `conversions`.
  // REQUIRES: no page is converted while the pass runs (the content hash reads shared pages).
  // If a source fails the pass fails; what it and the sources before it reported stays flagged
  // for the next pass.
  Expected<DirtyReport> BeginPass(const AttributeMap& attributes_now, std::span<const PageRange> conversions = {});

  // Records that `pages` reached the target, each with its attribute as of the last BeginPass.
  // kInvalidArgument (and nothing recorded) if a page is outside the region.
  Status MarkSent(std::span<const uint64_t> pages);
  Status MarkSent(const PageBitmap& pages);

 private:
  Status CollectSources(DirtyReport& report, PageBitmap& covered);
  PageBitmap VisibleTo(const Coverage& coverage) const;
  void Flag(const PageBitmap& pages, DirtySourceKind kind, DirtyReport& report);
  void MarkOneSent(uint64_t page);

  AttributeMap attrs_;
  std::vector<uint8_t> target_;  // PageAttr the target has; 0 = none
  PageBitmap changed_;           // contents changed since last send
  PageBitmap host_changes_;      // NoteHostChange since the last pass
  std::vector<std::unique_ptr<DirtySource>> sources_;
  uint64_t pass_ = 0;
};

}  // namespace gmem::memory
