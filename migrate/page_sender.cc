#include "migrate/page_sender.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace gmem::migrate {

PageSender::PageSender(ChannelPool& pool, const std::atomic<bool>* cancel, MigrationEvents* events)
    : pool_(&pool), cancel_(cancel), events_(events) {}

PageSender::~PageSender() {
  if (slot_ != nullptr) pool_->Release(slot_);
}

void PageSender::LoadWindow(SourceRegion& region, uint64_t page, bool populate, PassStats& stats) {
  window_ = page / kWindowPages;
  uint64_t first = window_ * kWindowPages;
  uint64_t count = std::min<uint64_t>(kWindowPages, region.region.npages() - first);
  auto start = std::chrono::steady_clock::now();
  window_known_ = region.mapping->Residency(region.first_gmem_page() + first, count, resident_).ok();
  // The convergence policy's cost of a window: what a sparse final pass pays for a few pages.
  ++stats.windows;
  stats.window_us += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
  if (!window_known_ || !populate) return;
  // Map each run of resident shared pages with one call instead of a fault per page (a
  // guest_memfd has no fault-around). Best effort: a failure only means slower faults.
  const memory::AttributeMap& attrs = region.tracker->attributes();
  for (uint64_t i = 0; i < count;) {
    if ((resident_[i] & 1) == 0 || attrs.Get(first + i) != memory::PageAttr::kShared) {
      ++i;
      continue;
    }
    uint64_t end = i + 1;
    while (end < count && (resident_[end] & 1) != 0 && attrs.Get(first + end) == memory::PageAttr::kShared) ++end;
    region.mapping->PopulateRead(region.first_gmem_page() + first + i, end - i).IgnoreError();
    i = end;
  }
}

bool PageSender::IsHole(uint64_t page) const {
  return window_known_ && (resident_[page % kWindowPages] & 1) == 0;
}

Status PageSender::CopyPage(SourceRegion& region, uint64_t page, std::byte* dst) {
  if (region.hash != nullptr) return region.hash->CopyForSend(page, {dst, memory::kPageSize});
  // SAFETY: page < region npages (from the tracker's bitmap) and the page is shared, so the
  // mapping is readable there; KVM logs any guest write after this copy for the next pass.
  std::memcpy(dst, region.mapping->PageAddress(region.first_gmem_page() + page), memory::kPageSize);
  return Status::Ok();
}

void PageSender::AddPage(uint64_t page, format::RunKind kind) {
  std::vector<format::PageRun>& runs = slot_->batch.runs;
  if (!runs.empty() && runs.back().kind == kind && runs.back().first_page + runs.back().npages == page) {
    ++runs.back().npages;
  } else {
    runs.push_back({page, 1, kind});
  }
}

Status PageSender::DropConvertedPages(PassStats& stats) {
  GMEM_ASSIGN_OR_RETURN(uint64_t conversions, fence_->Conversions());
  if (conversions == view_conversions_) return Status::Ok();  // nothing converted since the view
  std::vector<format::PageRun> runs = std::move(slot_->batch.runs);
  slot_->batch.runs.clear();
  uint32_t kept = 0;
  uint32_t data_index = 0;
  for (const format::PageRun& run : runs) {
    for (uint64_t page = run.first_page; page < run.first_page + run.npages; ++page) {
      GMEM_ASSIGN_OR_RETURN(bool now_private, fence_->IsPrivateNow(region_index_, page));
      if (run.kind == format::RunKind::kData) {
        if (now_private) {
          --stats.data_pages;  // never leaves: the agent exports the page
        } else {
          if (kept != data_index) {
            std::memmove(slot_->pages() + uint64_t{kept} * memory::kPageSize,
                         slot_->pages() + uint64_t{data_index} * memory::kPageSize, memory::kPageSize);
          }
          ++kept;
          AddPage(page, run.kind);
        }
        ++data_index;
      } else if (!now_private) {
        AddPage(page, run.kind);
      }
    }
  }
  stats.raw_bytes -= uint64_t{buffered_ - kept} * memory::kPageSize;
  buffered_ = kept;
  return Status::Ok();
}

Status PageSender::Flush(SourceRegion& region, uint64_t generation, PassStats& stats) {
  if (handled_.empty()) return Status::Ok();
  GMEM_RETURN_IF_ERROR(region.tracker->MarkSent(handled_));
  stats.raw_bytes += uint64_t{buffered_} * memory::kPageSize;
  progress_ += handled_.size();
  if (!slot_->batch.runs.empty() && fence_ != nullptr) GMEM_RETURN_IF_ERROR(DropConvertedPages(stats));
  // The pages read for this batch leave the process's page tables once they are encoded (or now,
  // when nothing of them goes out). handled_ ascends within a pass.
  uint64_t release_first = region.first_gmem_page() + handled_.front();
  uint64_t release_count = handled_.back() - handled_.front() + 1;
  if (slot_->batch.runs.empty()) pool_->ReleaseLater(*region.mapping, release_first, release_count);
  if (!slot_->batch.runs.empty()) {
    slot_->mapping = region.mapping.get();
    slot_->release_first = release_first;
    slot_->release_count = release_count;
    slot_->batch.region_id = region.region.id;
    slot_->batch.generation = generation;
    for (uint32_t i = 0; i < buffered_; ++i) {
      const std::byte* page = direct_ ? sources_[i] : slot_->pages() + uint64_t{i} * memory::kPageSize;
      slot_->batch.data.push_back(ByteSpan(page, memory::kPageSize));
    }
    pool_->Submit(slot_);
    slot_ = nullptr;
  }
  handled_.clear();
  sources_.clear();
  buffered_ = 0;
  if (events_ != nullptr) events_->OnProgress(stats.pass, progress_, total_, pool_->wire_bytes());
  return Status::Ok();
}

Status PageSender::Send(SourceRegion& region, const memory::PageBitmap& dirty, uint64_t generation,
                        bool skip_zero, uint64_t total, PassStats& stats,
                        const std::vector<memory::PageHash>* unchanged, size_t region_index,
                        std::vector<memory::PageHash>* record) {
  Status status;
  region_index_ = region_index;
  total_ = total;
  const memory::AttributeMap& attrs = region.tracker->attributes();
  window_ = UINT64_MAX;
  // With a dirty log and nothing to vet or compare, pages are not copied here: the batch points
  // into guest memory and the channel's worker reads each page once, as it encodes (copy, seal or
  // compress), so the two workers share the reading. A guest write after the log was taken marks
  // the page dirty again, whatever the worker read. The content hash must see the bytes sent
  // and the fence vets copies, so those copy here.
  direct_ = region.hash == nullptr && fence_ == nullptr && unchanged == nullptr;
  dirty.ForEachSet([&](uint64_t page) {
    if (!status.ok()) return;
    if (attrs.Get(page) != memory::PageAttr::kShared) {
      // Never read: a private page leaves only through the guest's agent (the engine refuses a
      // VM with private pages unless an agent exports them).
      if (fence_ == nullptr) status = Unsupported("private page reached the page sender");
      return;
    }
    if (slot_ == nullptr) {
      auto slot = pool_->Acquire(cancel_);
      if (!slot.ok()) {
        status = slot.status();
        return;
      }
      slot_ = *slot;
    }
    if (page / kWindowPages != window_) LoadWindow(region, page, /*populate=*/skip_zero || unchanged != nullptr, stats);
    bool hole = IsHole(page);
    const std::byte* src = region.mapping->PageAddress(region.first_gmem_page() + page);
    std::byte* dst = slot_->pages() + uint64_t{buffered_} * memory::kPageSize;
    // A hole reads as zeros and is never touched (reading it would allocate it).
    if (hole) {
      status = region.hash != nullptr ? region.hash->NoteHoleForSend(page) : Status::Ok();
    } else if (!direct_) {
      status = CopyPage(region, page, dst);
      src = dst;
    }
    if (!status.ok()) return;
    handled_.push_back(page);
    memory::PageHash hash{};
    if (unchanged != nullptr || record != nullptr) hash = hole ? memory::ZeroPageHash() : memory::HashPage(src);
    if (record != nullptr) (*record)[page] = hash;
    if (unchanged != nullptr && hash == (*unchanged)[page]) {
      ++stats.unchanged_pages;  // the parent image has exactly this page
    } else if (hole || memory::IsZeroPage(src)) {
      ++stats.zero_pages;
      if (!skip_zero) AddPage(page, format::RunKind::kZero);
    } else {
      ++stats.data_pages;
      AddPage(page, format::RunKind::kData);
      if (direct_) sources_.push_back(src);
      ++buffered_;
    }
    if (buffered_ == kBatchPages || handled_.size() >= 4 * kBatchPages) status = Flush(region, generation, stats);
  });
  GMEM_RETURN_IF_ERROR(status);
  return Flush(region, generation, stats);
}

}  // namespace gmem::migrate
