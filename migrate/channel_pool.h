#pragma once
// ChannelPool: the sending half of the source's pipeline. One worker thread per channel owns
// that channel's ImageWriter and compresses, seals and sends the batches handed to it; the
// engine's thread reads pages out of guest memory (and detects zero pages) into a bounded set
// of batch buffers. Any worker takes the next batch, so pages of one pass may travel out of
// order across channels (the generation makes the newest win on the target).
//
// Thread-safety: Acquire/Submit/Drain from the engine's thread only. Between Drain() and the
// next Submit() the engine may use writer(i) itself (PASS, STATE, END).

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "format/image_writer.h"

namespace gmem::migrate {

// A batch buffer: page data for up to `capacity_pages` pages and the batch that describes it.
struct BatchSlot {
  Bytes buffer;
  format::PageBatchInput batch;
};

class ChannelPool {
 public:
  // Takes the channels' writers (channel order) and starts one worker per writer, with
  // 2 * writers.size() batch buffers of `slot_pages` pages.
  ChannelPool(std::vector<format::ImageWriter> writers, uint32_t slot_pages);
  ~ChannelPool();  // stops and joins the workers
  ChannelPool(const ChannelPool&) = delete;
  ChannelPool& operator=(const ChannelPool&) = delete;

  // A free buffer, waiting for one if needed; the first worker error instead, or kCancelled when
  // `cancel` is set while waiting.
  Expected<BatchSlot*> Acquire(const std::atomic<bool>* cancel);
  // Hands a filled slot to the workers. REQUIRES: `slot` came from Acquire().
  void Submit(BatchSlot* slot);
  // Returns an unused slot. REQUIRES: `slot` came from Acquire() and was not submitted.
  void Release(BatchSlot* slot);
  // Waits until every submitted batch was written; the first worker error, if any.
  Status Drain();

  size_t channels() const { return writers_.size(); }
  format::ImageWriter& writer(size_t i) { return writers_[i]; }
  // Bytes written on all channels so far (readable from any thread).
  uint64_t wire_bytes() const { return wire_bytes_.load(); }
  // Recomputes wire_bytes() from the writers. REQUIRES: drained (no worker busy).
  void SyncWireBytes();

 private:
  void Work(size_t channel);

  std::vector<format::ImageWriter> writers_;
  std::vector<std::unique_ptr<BatchSlot>> slots_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<BatchSlot*> queue_;  // submitted, not yet taken
  std::vector<BatchSlot*> free_;
  size_t busy_ = 0;
  bool stop_ = false;
  Status error_;
  std::atomic<uint64_t> wire_bytes_{0};
  std::vector<std::thread> threads_;
};

}  // namespace gmem::migrate
