#include "memory/attribute_map.h"

#include <algorithm>
#include <cassert>
#include <string>

namespace gmem::memory {

std::string_view PageAttrName(PageAttr attr) {
  switch (attr) {
    case PageAttr::kShared: return "shared";
    case PageAttr::kPrivate: return "private";
  }
  return "invalid";
}

bool IsValidPageAttr(PageAttr attr) { return attr == PageAttr::kShared || attr == PageAttr::kPrivate; }

AttributeMap::AttributeMap(uint64_t npages, PageAttr initial) : npages_(npages) {
  assert(IsValidPageAttr(initial));
  if (npages == 0) return;
  runs_.emplace(0, Run{npages, initial});
  if (initial == PageAttr::kPrivate) private_pages_ = npages;
}

Expected<AttributeMap> AttributeMap::FromRuns(uint64_t npages, std::span<const AttrRun> runs) {
  AttributeMap map;
  map.npages_ = npages;
  uint64_t next = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const AttrRun& r = runs[i];
    std::string where = "attribute run " + std::to_string(i);
    if (!IsValidPageAttr(r.attr)) {
      return InvalidArgument(where + ": invalid attribute " + std::to_string(static_cast<int>(r.attr)));
    }
    if (r.count == 0) return InvalidArgument(where + ": empty run");
    if (r.first != next) {
      return InvalidArgument(where + ": starts at page " + std::to_string(r.first) + ", expected " +
                             std::to_string(next));
    }
    if (r.count > npages - r.first) {
      return InvalidArgument(where + ": ends past the region's " + std::to_string(npages) + " pages");
    }
    auto last = map.runs_.empty() ? map.runs_.end() : std::prev(map.runs_.end());
    if (last != map.runs_.end() && last->second.attr == r.attr) {
      last->second.end = r.end();
    } else {
      map.runs_.emplace_hint(map.runs_.end(), r.first, Run{r.end(), r.attr});
    }
    if (r.attr == PageAttr::kPrivate) map.private_pages_ += r.count;
    next = r.end();
  }
  if (next != npages) {
    return InvalidArgument("attribute runs cover " + std::to_string(next) + " of " + std::to_string(npages) + " pages");
  }
  return map;
}

void AttributeMap::SplitAt(uint64_t page) {
  if (page == 0 || page >= npages_) return;
  auto it = runs_.upper_bound(page);
  --it;  // the run containing `page`: runs tile [0, npages_) and page < npages_
  if (it->first == page) return;
  Run tail = it->second;
  it->second.end = page;
  runs_.emplace_hint(std::next(it), page, tail);
}

void AttributeMap::CoalesceAround(RunMap::iterator it) {
  if (it != runs_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.attr == it->second.attr) {
      prev->second.end = it->second.end;
      runs_.erase(it);
      it = prev;
    }
  }
  auto next = std::next(it);
  if (next != runs_.end() && next->second.attr == it->second.attr) {
    it->second.end = next->second.end;
    runs_.erase(next);
  }
}

Status AttributeMap::SetRange(uint64_t first, uint64_t count, PageAttr attr) {
  if (!IsValidPageAttr(attr)) {
    return InvalidArgument("invalid page attribute " + std::to_string(static_cast<int>(attr)));
  }
  if (first > npages_ || count > npages_ - first) {
    return InvalidArgument("pages [" + std::to_string(first) + ", +" + std::to_string(count) +
                           ") outside the region's " + std::to_string(npages_) + " pages");
  }
  if (count == 0) return Status::Ok();
  uint64_t end = first + count;
  SplitAt(first);
  SplitAt(end);
  // Runs starting in [first, end) now tile the range exactly.
  auto it = runs_.find(first);
  while (it != runs_.end() && it->first < end) {
    if (it->second.attr == PageAttr::kPrivate) private_pages_ -= it->second.end - it->first;
    it = runs_.erase(it);
  }
  auto inserted = runs_.emplace_hint(it, first, Run{end, attr});
  if (attr == PageAttr::kPrivate) private_pages_ += count;
  CoalesceAround(inserted);
  return Status::Ok();
}

PageAttr AttributeMap::Get(uint64_t page) const {
  assert(page < npages_);
  auto it = runs_.upper_bound(page);
  --it;
  return it->second.attr;
}

std::vector<AttrRun> AttributeMap::Runs() const {
  std::vector<AttrRun> out;
  out.reserve(runs_.size());
  ForEachRun([&](const AttrRun& r) { out.push_back(r); });
  return out;
}

Expected<std::vector<PageRange>> AttributeMap::Compare(const AttributeMap& other) const {
  if (other.npages_ != npages_) {
    return InvalidArgument("cannot compare attribute maps of " + std::to_string(npages_) + " and " +
                           std::to_string(other.npages_) + " pages");
  }
  std::vector<PageRange> out;
  auto a = runs_.begin();
  auto b = other.runs_.begin();
  uint64_t pos = 0;
  // Walk both run lists together; each step covers the overlap of the current two runs.
  while (pos < npages_) {
    uint64_t seg_end = std::min(a->second.end, b->second.end);
    if (a->second.attr != b->second.attr) {
      if (!out.empty() && out.back().end() == pos) {
        out.back().count += seg_end - pos;
      } else {
        out.push_back(PageRange{pos, seg_end - pos});
      }
    }
    pos = seg_end;
    if (a->second.end == pos) ++a;
    if (b->second.end == pos) ++b;
  }
  return out;
}

bool AttributeMap::operator==(const AttributeMap& other) const {
  if (npages_ != other.npages_ || runs_.size() != other.runs_.size()) return false;
  auto b = other.runs_.begin();
  for (auto a = runs_.begin(); a != runs_.end(); ++a, ++b) {
    if (a->first != b->first || a->second.end != b->second.end || a->second.attr != b->second.attr) return false;
  }
  return true;
}

Expected<std::vector<PageRange>> AttributeMap::RunsToConvert(uint64_t first, uint64_t count, PageAttr attr) const {
  if (!IsValidPageAttr(attr)) return InvalidArgument("convert: invalid attribute");
  if (first > npages() || count > npages() - first) {
    return InvalidArgument("convert: pages [" + std::to_string(first) + ", +" + std::to_string(count) +
                           ") outside the region's " + std::to_string(npages()) + " pages");
  }
  std::vector<PageRange> changing;
  ForEachRunIn(first, count, [&](const AttrRun& run) {
    if (run.attr != attr) changing.push_back(PageRange{run.first, run.count});
  });
  return changing;
}

}  // namespace gmem::memory
