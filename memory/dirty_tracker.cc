#include "memory/dirty_tracker.h"

#include <algorithm>

namespace gmem::memory {

std::string_view DirtySourceKindName(DirtySourceKind kind) {
  switch (kind) {
    case DirtySourceKind::kKvmDirtyRing: return "kvm-dirty-ring";
    case DirtySourceKind::kKvmDirtyBitmap: return "kvm-dirty-bitmap";
    case DirtySourceKind::kGuestReported: return "guest-reported";
    case DirtySourceKind::kContentHash: return "content-hash";
    case DirtySourceKind::kConversion: return "conversion";
    case DirtySourceKind::kHostChange: return "host-change";
    case DirtySourceKind::kUnsent: return "unsent";
    case DirtySourceKind::kUncovered: return "uncovered";
  }
  return "invalid";
}

std::string DirtyReport::ToString() const {
  std::string out = "pass " + std::to_string(pass) + ": " + std::to_string(count()) + " dirty (" +
                    std::to_string(dirty_shared) + " shared, " + std::to_string(dirty_private) + " private)";
  const char* sep = "; ";
  for (size_t k = 1; k < kNumDirtySourceKinds; ++k) {
    if (by_source[k] == 0) continue;
    out += sep;
    out += DirtySourceKindName(static_cast<DirtySourceKind>(k));
    out += ' ';
    out += std::to_string(by_source[k]);
    sep = ", ";
  }
  return out;
}

DirtyTracker::DirtyTracker(const AttributeMap& initial)
    : attrs_(initial), target_(initial.npages(), 0), changed_(initial.npages()), host_changes_(initial.npages()) {}

void DirtyTracker::AddSource(std::unique_ptr<DirtySource> source) {
  // Keep rank order (best first); sources of equal rank keep the order they were added in.
  auto pos = std::upper_bound(sources_.begin(), sources_.end(), source->kind(),
                              [](DirtySourceKind k, const std::unique_ptr<DirtySource>& s) { return k < s->kind(); });
  sources_.insert(pos, std::move(source));
}

Status DirtyTracker::NoteHostChange(PageRange range) {
  if (range.first > npages() || range.count > npages() - range.first) {
    return InvalidArgument("host change: pages [" + std::to_string(range.first) + ", +" + std::to_string(range.count) +
                           ") outside the region's " + std::to_string(npages()) + " pages");
  }
  host_changes_.SetRange(range.first, range.count);
  return Status::Ok();
}

void DirtyTracker::Flag(const PageBitmap& pages, DirtySourceKind kind, DirtyReport& report) {
  report.by_source[static_cast<size_t>(kind)] += pages.Count();
  changed_.Or(pages);
}

PageBitmap DirtyTracker::VisibleTo(const Coverage& coverage) const {
  PageBitmap visible(npages());
  attrs_.ForEachRunIn(coverage.pages.first, coverage.pages.count, [&](const AttrRun& run) {
    if (coverage.Sees(run.attr)) visible.SetRange(run.first, run.count);
  });
  return visible;
}

Status DirtyTracker::CollectSources(DirtyReport& report, PageBitmap& covered) {
  for (const std::unique_ptr<DirtySource>& source : sources_) {
    const Coverage coverage = source->coverage();
    PageBitmap visible = VisibleTo(coverage);
    PageBitmap candidates = visible;
    candidates.AndNot(covered);
    PageBitmap seen(npages());
    Status s = source->Collect(CollectContext{attrs_, candidates}, seen);
    // A source only speaks for pages it can see (KVM never sees into private memory on real CoCo).
    // What a failing source did report is kept: it may already be gone from the source.
    seen.And(visible);
    Flag(seen, source->kind(), report);
    if (!s.ok()) return s.WithContext(std::string("dirty source ") + std::string(DirtySourceKindName(source->kind())));
    if (coverage.complete) covered.Or(visible);
  }
  return Status::Ok();
}

Expected<DirtyReport> DirtyTracker::BeginPass(const AttributeMap& attributes_now,
                                              std::span<const PageRange> conversions) {
  const uint64_t n = npages();
  if (attributes_now.npages() != n) {
    return InvalidArgument("attribute map has " + std::to_string(attributes_now.npages()) + " pages, region has " +
                           std::to_string(n));
  }
  for (const PageRange& c : conversions) {
    if (c.first > n || c.count > n - c.first) {
      return InvalidArgument("conversion [" + std::to_string(c.first) + ", +" + std::to_string(c.count) +
                             ") outside the region's " + std::to_string(n) + " pages");
    }
  }
  DirtyReport report;
  report.pass = ++pass_;

  // Conversions: attribute differences to the last pass, plus the reported conversion log.
  PageBitmap converted(n);
  GMEM_ASSIGN_OR_RETURN(std::vector<PageRange> differing, attrs_.Compare(attributes_now));
  for (const PageRange& r : differing) converted.SetRange(r.first, r.count);
  for (const PageRange& c : conversions) converted.SetRange(c.first, c.count);
  attrs_ = attributes_now;
  Flag(converted, DirtySourceKind::kConversion, report);
  Flag(host_changes_, DirtySourceKind::kHostChange, report);
  host_changes_.ClearAll();

  PageBitmap covered(n);
  GMEM_RETURN_IF_ERROR(CollectSources(report, covered));
  PageBitmap uncovered(n);
  uncovered.SetRange(0, n);
  uncovered.AndNot(covered);
  Flag(uncovered, DirtySourceKind::kUncovered, report);

  // Pages the target lacks in their present attribute.
  PageBitmap unsent(n);
  attrs_.ForEachRun([&](const AttrRun& run) {
    const uint8_t want = static_cast<uint8_t>(run.attr);
    for (uint64_t p = run.first; p < run.end(); ++p) {
      if (target_[p] != want) unsent.Set(p);
    }
  });
  report.by_source[static_cast<size_t>(DirtySourceKind::kUnsent)] = unsent.Count();

  report.dirty = changed_;
  report.dirty.Or(unsent);
  attrs_.ForEachRun([&](const AttrRun& run) {
    uint64_t c = report.dirty.CountRange(run.first, run.count);
    (run.attr == PageAttr::kPrivate ? report.dirty_private : report.dirty_shared) += c;
  });
  return report;
}

void DirtyTracker::MarkOneSent(uint64_t page) {
  PageAttr attr = attrs_.Get(page);
  target_[page] = static_cast<uint8_t>(attr);
  changed_.Clear(page);
  for (const std::unique_ptr<DirtySource>& source : sources_) source->OnSent(page, attr);
}

Status DirtyTracker::MarkSent(std::span<const uint64_t> pages) {
  for (uint64_t p : pages) {
    if (p >= npages()) {
      return InvalidArgument("mark sent: page " + std::to_string(p) + " outside the region's " +
                             std::to_string(npages()) + " pages");
    }
  }
  for (uint64_t p : pages) MarkOneSent(p);
  return Status::Ok();
}

Status DirtyTracker::MarkSent(const PageBitmap& pages) {
  if (pages.npages() != npages()) {
    return InvalidArgument("mark sent: bitmap of " + std::to_string(pages.npages()) + " pages, region has " +
                           std::to_string(npages()));
  }
  pages.ForEachSet([&](uint64_t p) { MarkOneSent(p); });
  return Status::Ok();
}

}  // namespace gmem::memory
