#include "migrate/channel_pool.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "memory/page.h"
#include "migrate/compression_choice.h"

namespace gmem::migrate {

ChannelPool::ChannelPool(std::vector<format::ImageWriter> writers, uint32_t slot_pages, bool adaptive)
    : writers_(std::move(writers)), adaptive_(adaptive) {
  // One worker per channel, and at least two: a single channel (a file) gets a second worker
  // that encodes in parallel and takes turns writing (ImageWriter::EncodePages/WriteEncoded).
  size_t workers = std::max<size_t>(writers_.size(), 2);
  write_mu_ = std::make_unique<std::mutex[]>(writers_.size());
  for (size_t i = 0; i < 4 * workers; ++i) {
    auto slot = std::make_unique<BatchSlot>();
    slot->buffer.resize(BatchSlot::kHeadroom + uint64_t{slot_pages} * memory::kPageSize);
    free_.push_back(slot.get());
    slots_.push_back(std::move(slot));
  }
  for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this, i, workers] { Work(i, workers > writers_.size()); });
}

ChannelPool::~ChannelPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ChannelPool::Work(size_t worker, bool shared) {
  size_t channel = worker % writers_.size();
  format::ImageWriter& writer = writers_[channel];
  CompressionChoice choice;
  // A shared channel: this worker's own encoder and buffers; only the write takes turns.
  std::optional<format::PageBatchEncoder> encoder;
  format::ImageWriter::EncodedPages encoded;
  Status setup;
  if (shared) {
    auto made = writer.NewEncoder();
    if (made.ok()) encoder.emplace(std::move(made).value());
    setup = made.status();
  }
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
    bool compress = !adaptive_ || choice.Next();
    auto start = std::chrono::steady_clock::now();
    // A channel that failed once refuses further writes; the first error is what counts.
    Status st = setup;
    if (!shared) {
      uint64_t before = writer.bytes_written();
      st = writer.WritePages(slot->batch, compress);
      wire_bytes_.fetch_add(writer.bytes_written() - before);
    } else if (st.ok()) {
      st = writer.EncodePages(slot->batch, compress, *encoder, encoded);
      if (st.ok()) {
        std::lock_guard<std::mutex> turn(write_mu_[channel]);
        uint64_t before = writer.bytes_written();
        st = writer.WriteEncoded(encoded);
        wire_bytes_.fetch_add(writer.bytes_written() - before);
      }
    }
    if (adaptive_ && st.ok()) {
      choice.Record(compress, uint64_t{slot->batch.data.size()} * memory::kPageSize,
                    std::chrono::steady_clock::now() - start);
    }
    if (slot->mapping != nullptr) release_.Add(*slot->mapping, slot->release_first, slot->release_count);
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

Status ChannelPool::Drain(const std::atomic<bool>* cancel) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!done_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return queue_.empty() && busy_ == 0; })) {
    if (cancel != nullptr && cancel->load()) return Status(Code::kCancelled, "cancelled");
  }
  release_.Flush();
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
