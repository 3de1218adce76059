#pragma once
// PageDecodePool: decompresses and applies the zstd PAGES of a single-channel stream (a snapshot
// file) on worker threads while the channel's reader goes on reading and authenticating records,
// so restoring a compressed image keeps both cores busy. The reader hands over each batch it has
// authenticated and checked (ImageReader with ReaderOptions::defer_zstd); the pool copies the frame,
// or takes the reader's whole buffer in exchange for a spare one, so the reader may move on at once. Batches of one pass are distinct pages and later
// passes win by generation (as across channels), so the order they are applied in does not matter.
// Thread-safety: Submit/Drain from the reader's thread only; `apply` runs on the workers, several
// at a time.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/expected.h"
#include "format/page_batch.h"

namespace gmem::migrate {

class PageDecodePool {
 public:
  using Apply = std::function<Status(const format::PagesRecord&)>;
  // Swaps the buffer that holds a record's zstd frame with the spare it is given
  // (ImageReader::ExchangeBuffer): the frame then lives in the pool's buffer, uncopied.
  using Exchange = std::function<void(Bytes& spare)>;

  PageDecodePool(unsigned workers, Apply apply);
  ~PageDecodePool();  // stops and joins; batches not yet applied are dropped
  PageDecodePool(const PageDecodePool&) = delete;
  PageDecodePool& operator=(const PageDecodePool&) = delete;

  // Queues `record` (a deferred zstd batch: record.zstd_frame set), waiting for a free buffer;
  // the first worker error instead. With `exchange`, the pool takes the buffer record.zstd_frame
  // points into instead of copying the frame.
  Status Submit(const format::PagesRecord& record, const Exchange& exchange = nullptr);
  // Waits until every submitted batch was applied; the first error, if any.
  Status Drain();

 private:
  struct Item {
    format::PagesRecord record;
    Bytes buffer;     // holds the frame: a copy, or the reader's buffer taken in exchange
    ByteSpan frame;   // the frame within `buffer`
  };
  void Work();

  Apply apply_;
  std::vector<std::unique_ptr<Item>> items_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<Item*> queue_;
  std::vector<Item*> free_;
  size_t busy_ = 0;
  bool stop_ = false;
  Status error_;
  std::vector<std::thread> threads_;
};

}  // namespace gmem::migrate
