#include "memory/guest_reported_source.h"

#include <string>

namespace gmem::memory {

GuestReportedSource::GuestReportedSource(uint64_t npages, Coverage coverage) : coverage_(coverage), pending_(npages) {}

Status GuestReportedSource::Report(std::span<const uint64_t> pages) {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint64_t p : pages) {
    if (p >= pending_.npages()) {
      return InvalidArgument("reported dirty page " + std::to_string(p) + " outside the region's " +
                             std::to_string(pending_.npages()) + " pages");
    }
  }
  for (uint64_t p : pages) pending_.Set(p);
  return Status::Ok();
}

Status GuestReportedSource::ReportRange(PageRange range) {
  std::lock_guard<std::mutex> lock(mu_);
  if (range.first > pending_.npages() || range.count > pending_.npages() - range.first) {
    return InvalidArgument("reported dirty range [" + std::to_string(range.first) + ", +" +
                           std::to_string(range.count) + ") outside the region");
  }
  pending_.SetRange(range.first, range.count);
  return Status::Ok();
}

Status GuestReportedSource::Collect(const CollectContext& context, PageBitmap& changed) {
  (void)context;
  std::lock_guard<std::mutex> lock(mu_);
  if (changed.npages() != pending_.npages()) return InvalidArgument("reported source: region size mismatch");
  changed.Or(pending_);
  pending_.ClearAll();
  return Status::Ok();
}

}  // namespace gmem::memory
