#pragma once
// AttributeMap: the shared/private attribute of every 4 KiB page of one region, stored as runs
// (DESIGN.md, "Guest memory and attributes"). A plain value type; not thread-safe.
//
// Invariant: the runs tile [0, npages()) with no gap and no overlap, and no two neighbouring
// runs carry the same attribute (every mutation coalesces). So the run list of two maps with the
// same pages is identical exactly when the maps are equal.

#include <cstdint>
#include <map>
#include <span>
#include <string_view>
#include <vector>

#include "base/expected.h"
#include "base/status.h"
#include "memory/page.h"

namespace gmem::memory {

// A page's attribute. The values are the wire convention of the image format: zero is invalid,
// anything else unknown is rejected.
enum class PageAttr : uint8_t {
  kShared = 1,   // host-readable through the guest_memfd mapping
  kPrivate = 2,  // host-inaccessible; leaves only as an agent-sealed blob
};

// "shared" / "private" / "invalid".
std::string_view PageAttrName(PageAttr attr);
// True for kShared and kPrivate only.
bool IsValidPageAttr(PageAttr attr);

// One run of pages with the same attribute.
struct AttrRun {
  uint64_t first = 0;
  uint64_t count = 0;
  PageAttr attr = PageAttr::kShared;

  uint64_t end() const { return first + count; }
  bool operator==(const AttrRun&) const = default;
};

class AttributeMap {
 public:
  // An empty map (zero pages).
  AttributeMap() = default;
  // `npages` pages, all `initial`. REQUIRES: IsValidPageAttr(initial).
  AttributeMap(uint64_t npages, PageAttr initial);

  // Rebuilds a map from runs as stored in an image. The runs must be in order, each non-empty
  // and valid, and together tile exactly [0, npages); neighbouring runs with the same attribute
  // are accepted and merged. Anything else is kInvalidArgument naming the offending run.
  static Expected<AttributeMap> FromRuns(uint64_t npages, std::span<const AttrRun> runs);

  uint64_t npages() const { return npages_; }

  // Sets pages [first, first + count) to `attr`, splitting and coalescing runs as needed.
  // count == 0 is a no-op. kInvalidArgument (and no change) if the range leaves the map or the
  // attribute is invalid.
  Status SetRange(uint64_t first, uint64_t count, PageAttr attr);

  // REQUIRES: page < npages().
  PageAttr Get(uint64_t page) const;

  // Calls fn(const AttrRun&) for every run, ascending.
  template <typename Fn>
  void ForEachRun(Fn&& fn) const {
    for (const auto& [first, run] : runs_) fn(AttrRun{first, run.end - first, run.attr});
  }

  // Calls fn(const AttrRun&) for every run that intersects [first, first + count), clipped to it.
  template <typename Fn>
  void ForEachRunIn(uint64_t first, uint64_t count, Fn&& fn) const {
    uint64_t end = first + count > npages_ ? npages_ : first + count;
    if (first >= end) return;
    auto it = runs_.upper_bound(first);
    --it;
    for (; it != runs_.end() && it->first < end; ++it) {
      uint64_t a = it->first > first ? it->first : first;
      uint64_t b = it->second.end < end ? it->second.end : end;
      fn(AttrRun{a, b - a, it->second.attr});
    }
  }

  std::vector<AttrRun> Runs() const;
  size_t run_count() const { return runs_.size(); }

  // The ranges of pages whose attribute differs between this map and `other`, ascending and
  // maximal. kInvalidArgument if the maps do not have the same number of pages.
  Expected<std::vector<PageRange>> Compare(const AttributeMap& other) const;

  uint64_t CountPrivate() const { return private_pages_; }

  // What converting [first, first + count) to `attr` must change: the runs in that range whose
  // attribute differs. kInvalidArgument for an invalid attribute or a range outside the map.
  Expected<std::vector<PageRange>> RunsToConvert(uint64_t first, uint64_t count, PageAttr attr) const;
  uint64_t CountShared() const { return npages_ - private_pages_; }

  bool operator==(const AttributeMap& other) const;

 private:
  struct Run {
    uint64_t end;  // one past the last page
    PageAttr attr;
  };
  using RunMap = std::map<uint64_t, Run>;  // keyed by first page

  // Makes `page` the first page of a run (no-op at 0, at npages_ or at an existing boundary).
  void SplitAt(uint64_t page);
  // Merges the run at `it` with equal neighbours.
  void CoalesceAround(RunMap::iterator it);

  uint64_t npages_ = 0;
  uint64_t private_pages_ = 0;
  RunMap runs_;
};

}  // namespace gmem::memory
