#pragma once
// PageSender: turns one pass's dirty set of a region into PAGES batches for the ChannelPool.
// Pages are copied out of the toolkit's mapping into a pool buffer (through the content hash when
// that is the dirty source, so the hash is of exactly the bytes sent), or, with a dirty log, left
// where they are for the channel's worker to read as it encodes; holes, pages with no memory
// behind them, are never read: they are zero pages. Zero pages become ZERO runs
// (or are skipped in pass 1, where the target's memory is still zero), and each full batch is
// submitted and marked sent in the tracker (a batch that then fails to go out fails the whole
// migration, so marking early loses nothing).
// Thread-safety: one sender, on the engine's thread.

#include <atomic>
#include <cstdint>
#include <vector>

#include "memory/page_bitmap.h"
#include "migrate/channel_pool.h"
#include "migrate/migration_types.h"
#include "migrate/source_region.h"

namespace gmem::migrate {

inline constexpr uint32_t kBatchPages = 256;  // 1 MiB of page data per PAGES record
// Pages whose residency (mincore) the sender reads at once, before it reads any of them.
inline constexpr uint64_t kWindowPages = 512;

// Tells a sender which pages were converted to private behind its back. The guest may convert
// a page after the pass read the attributes and then write private data into it; a copy taken
// in between would carry that data. (On real in-place conversion the host loses the page's
// mapping instead and the copy faults; the emulation cannot revoke the toolkit's mapping.)
class ConversionFence {
 public:
  virtual ~ConversionFence() = default;
  // The VMM's count of completed conversions so far.
  virtual Expected<uint64_t> Conversions() = 0;
  // Whether page `page` of the region with layout index `region_index` is private now.
  // Refreshes the view when Conversions() moved; a page converted after the copy does not matter.
  virtual Expected<bool> IsPrivateNow(size_t region_index, uint64_t page) = 0;
};

class PageSender {
 public:
  PageSender(ChannelPool& pool, const std::atomic<bool>* cancel, MigrationEvents* events);
  ~PageSender();  // returns a slot it holds unsubmitted
  PageSender(const PageSender&) = delete;
  PageSender& operator=(const PageSender&) = delete;

  // With a fence, private pages in a dirty set are left to the guest's agent (skipped) instead of
  // an error, and the fence vets every batch after its copies and before it leaves: pages
  // converted to private meanwhile are dropped from it (the agent exports them).
  // set_attributes_conversions: the fence's count when the pass read the attributes.
  void set_conversion_fence(ConversionFence* fence) { fence_ = fence; }
  void set_attributes_conversions(uint64_t conversions) { view_conversions_ = conversions; }
  // Starts counting progress for a new pass.
  void StartPass() { progress_ = 0; }
  // Sends the pages of `dirty` (shared pages only) with generation `generation`, adding to
  // `stats`. `skip_zero`: zero pages are not sent, only marked sent. `total` feeds progress.
  // `unchanged` (an incremental stream's pass 1): a page whose content hashes to its entry there
  // is already on the target (the parent has it): it is marked sent, not sent.
  // `record` (sized to the region): each page handled gets the hash of the content it goes out
  // with (zero pages, sent or skipped, too), so the table of what the image holds is built as the
  // pages pass instead of by reading all of memory again at the end.
  Status Send(SourceRegion& region, const memory::PageBitmap& dirty, uint64_t generation, bool skip_zero,
              uint64_t total, PassStats& stats, const std::vector<memory::PageHash>* unchanged = nullptr,
              size_t region_index = 0, std::vector<memory::PageHash>* record = nullptr);

 private:
  // Reads the residency of the window holding `page` (and, with `populate`, maps its resident
  // shared pages in one go). Counts the window and the time of the residency read in `stats`.
  void LoadWindow(SourceRegion& region, uint64_t page, bool populate, PassStats& stats);
  // Whether `page` (in the loaded window) has no memory behind it: it reads as zeros.
  bool IsHole(uint64_t page) const;
  Status CopyPage(SourceRegion& region, uint64_t page, std::byte* dst);
  Status Flush(SourceRegion& region, uint64_t generation, PassStats& stats);
  // Drops the pages of the filled batch that are private now (ConversionFence).
  Status DropConvertedPages(PassStats& stats);
  void AddPage(uint64_t page, format::RunKind kind);

  ChannelPool* pool_;
  const std::atomic<bool>* cancel_;
  MigrationEvents* events_;
  BatchSlot* slot_ = nullptr;      // the batch being filled
  std::vector<uint64_t> handled_;  // pages of the batch, skipped zero pages included
  uint32_t buffered_ = 0;          // data pages of the batch
  bool direct_ = false;            // the batch points into guest memory (Send)
  std::vector<const std::byte*> sources_;  // direct_: where each data page lies
  ConversionFence* fence_ = nullptr;
  uint64_t view_conversions_ = 0;
  size_t region_index_ = 0;  // of the region being sent
  uint64_t window_ = UINT64_MAX;  // LoadWindow's window index
  bool window_known_ = false;     // mincore succeeded for it
  unsigned char resident_[kWindowPages] = {};
  uint64_t progress_ = 0;
  uint64_t total_ = 0;
};

}  // namespace gmem::migrate
