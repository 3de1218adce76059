#include "migrate/channel_pool.h"

#include <chrono>

#include "memory/page.h"
#include "migrate/compression_choice.h"

namespace gmem::migrate {

ChannelPool::ChannelPool(std::vector<format::ImageWriter> writers, uint32_t slot_pages, bool adaptive)
    : writers_(std::move(writers)), adaptive_(adaptive) {
  for (size_t i = 0; i < 2 * writers_.size(); ++i) {
    auto slot = std::make_unique<BatchSlot>();
    slot->buffer.resize(BatchSlot::kHeadroom + uint64_t{slot_pages} * memory::kPageSize);
    free_.push_back(slot.get());
    slots_.push_back(std::move(slot));
  }
  for (size_t i = 0; i < writers_.size(); ++i) threads_.emplace_back([this, i] { Work(i); });
}

ChannelPool::~ChannelPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ChannelPool::Work(size_t channel) {
  format::ImageWriter& writer = writers_[channel];
  CompressionChoice choice;
  for (;;) {
    BatchSlot* slot = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;  // batches still queued are dropped: the migration is over
      slot = queue_.front();
      queue_.pop_front();
      ++busy_;
    }
    uint64_t before = writer.bytes_written();
    bool compress = !adaptive_ || choice.Next();
    auto start = std::chrono::steady_clock::now();
    // A channel that failed once refuses further writes; the first error is what counts.
    Status st = writer.WritePages(slot->batch, compress);
    if (adaptive_ && st.ok()) {
      choice.Record(compress, uint64_t{slot->batch.data.size()} * memory::kPageSize,
                    std::chrono::steady_clock::now() - start);
    }
    wire_bytes_.fetch_add(writer.bytes_written() - before);
    if (slot->mapping != nullptr) slot->mapping->Release(slot->release_first, slot->release_count).IgnoreError();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
      free_.push_back(slot);
      if (!st.ok() && error_.ok()) error_ = st.WithContext("channel " + std::to_string(channel));
    }
    done_cv_.notify_all();
  }
}

Expected<BatchSlot*> ChannelPool::Acquire(const std::atomic<bool>* cancel) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (!error_.ok()) return error_;
    if (cancel != nullptr && cancel->load()) return Status(Code::kCancelled, "cancelled");
    if (!free_.empty()) {
      BatchSlot* slot = free_.back();
      free_.pop_back();
      slot->batch.runs.clear();
      slot->batch.data.clear();
      slot->batch.headroom = MutableByteSpan(slot->buffer.data(), BatchSlot::kHeadroom);
      slot->mapping = nullptr;
      return slot;
    }
    done_cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void ChannelPool::Submit(BatchSlot* slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(slot);
  }
  work_cv_.notify_one();
}

void ChannelPool::Release(BatchSlot* slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(slot);
  }
  done_cv_.notify_all();
}

Status ChannelPool::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return queue_.empty() && busy_ == 0; });
  return error_;
}

void ChannelPool::SyncWireBytes() {
  uint64_t total = 0;
  for (const format::ImageWriter& w : writers_) total += w.bytes_written();
  wire_bytes_.store(total);
}

uint64_t ChannelPool::pages_records() const {
  uint64_t total = 0;
  for (const format::ImageWriter& w : writers_) total += w.pages_records();
  return total;
}

uint64_t ChannelPool::zstd_records() const {
  uint64_t total = 0;
  for (const format::ImageWriter& w : writers_) total += w.zstd_records();
  return total;
}

}  // namespace gmem::migrate
