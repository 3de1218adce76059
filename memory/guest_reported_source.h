#pragma once
// GuestReportedSource: dirty pages someone hands in as lists (DESIGN.md, dirty source 2): the
// guest's agent answering DIRTY {since} for private pages, or the VMM reporting its own writes.
// Thread-safe: Report may be called from any thread while the tracker collects.

#include <cstdint>
#include <mutex>
#include <span>

#include "memory/dirty_source.h"

namespace gmem::memory {

class GuestReportedSource final : public DirtySource {
 public:
  // A region of `npages` pages; `coverage` says which pages the reporter watches and whether it
  // reports every change of them (complete) or only some (e.g. the VMM's writes beside KVM's log).
  GuestReportedSource(uint64_t npages, Coverage coverage);

  // Records pages written since the last Collect. kInvalidArgument (nothing recorded) if any page
  // is outside the region.
  Status Report(std::span<const uint64_t> pages);
  Status ReportRange(PageRange range);

  DirtySourceKind kind() const override { return DirtySourceKind::kGuestReported; }
  Coverage coverage() const override { return coverage_; }
  Status Collect(const CollectContext& context, PageBitmap& changed) override;

 private:
  Coverage coverage_;
  std::mutex mu_;
  PageBitmap pending_;
};

}  // namespace gmem::memory
