#include "migrate/page_decode_pool.h"

namespace gmem::migrate {

PageDecodePool::PageDecodePool(unsigned workers, Apply apply) : apply_(std::move(apply)) {
  workers = std::max(1u, workers);
  for (unsigned i = 0; i < 2 * workers; ++i) {
    items_.push_back(std::make_unique<Item>());
    free_.push_back(items_.back().get());
  }
  for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
}

PageDecodePool::~PageDecodePool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void PageDecodePool::Work() {
  auto decoder = format::PageBatchDecoder::Create();
  for (;;) {
    Item* item = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      item = queue_.front();
      queue_.pop_front();
      ++busy_;
    }
    Status st = decoder.status();
    if (st.ok()) st = decoder->Decompress(item->frame, item->record);
    if (st.ok()) st = apply_(item->record);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
      free_.push_back(item);
      if (!st.ok() && error_.ok()) error_ = st;
    }
    done_cv_.notify_all();
  }
}

Status PageDecodePool::Submit(const format::PagesRecord& record, const Exchange& exchange) {
  Item* item = nullptr;
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return !error_.ok() || !free_.empty(); });
    if (!error_.ok()) return error_;
    item = free_.back();
    free_.pop_back();
  }
  // Only the reader's thread touches a free item: copy outside the lock.
  format::PagesRecord& r = item->record;
  r.region_id = record.region_id;
  r.page_size = record.page_size;
  r.generation = record.generation;
  r.encoding = record.encoding;
  r.data_pages = record.data_pages;
  r.zero_pages = record.zero_pages;
  r.runs = record.runs;
  r.data = {};
  r.zstd_frame = {};
  if (exchange) {
    exchange(item->buffer);  // record.zstd_frame now points into item->buffer
    item->frame = record.zstd_frame;
  } else {
    item->buffer.assign(record.zstd_frame.begin(), record.zstd_frame.end());
    item->frame = item->buffer;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(item);
  }
  work_cv_.notify_one();
  return Status::Ok();
}

Status PageDecodePool::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return queue_.empty() && busy_ == 0; });
  return error_;
}

}  // namespace gmem::migrate
