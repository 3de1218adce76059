#include "migrate/vmm_dirty_log_source.h"

namespace gmem::migrate {

memory::Coverage VmmDirtyLogSource::coverage() const {
  memory::Coverage c;
  c.pages = {0, pending_.npages()};
  c.sees_shared = true;
  c.sees_private = false;
  c.complete = true;
  return c;
}

Status VmmDirtyLogSource::Collect(const memory::CollectContext& context, memory::PageBitmap& changed) {
  (void)context;
  changed.Or(pending_);
  pending_.ClearAll();
  return Status::Ok();
}

Status VmmDirtyLogSource::Add(std::span<const uint64_t> words) {
  std::span<uint64_t> mine = pending_.words();
  if (words.size() != mine.size()) return InvalidArgument("dirty log: bitmap size does not match the region");
  for (size_t i = 0; i < mine.size(); ++i) mine[i] |= words[i];
  // Keep the bits past npages clear, as PageBitmap requires.
  uint64_t tail = pending_.npages() % 64;
  if (tail != 0 && !mine.empty()) mine.back() &= (uint64_t{1} << tail) - 1;
  return Status::Ok();
}

}  // namespace gmem::migrate
