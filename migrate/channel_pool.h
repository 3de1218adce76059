#pragma once
// ChannelPool: the sending half of the source's pipeline. One worker thread per channel owns
// that channel's ImageWriter and compresses, seals and sends the batches handed to it (a single
// channel, such as a file, gets two workers that encode in parallel and take turns to write); the
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
#include "memory/deferred_release.h"
#include "memory/guest_memfd_mapping.h"

namespace gmem::migrate {

// A batch buffer: room for the batch's page runs (the headroom), then page data for up to
// `slot_pages` pages, and the batch that describes them. A raw batch is encoded and sealed in
// place in it (format::PageBatchInput::headroom): its pages are copied once, out of guest memory.
struct BatchSlot {
  static constexpr size_t kHeadroom = size_t{format::kMaxPageRuns} * format::kPageRunSize;
  Bytes buffer;
  std::byte* pages() { return buffer.data() + kHeadroom; }
  format::PageBatchInput batch;
  // Guest pages [release_first, +release_count) of `mapping` that the batch read: once the worker
  // has encoded the batch they go to the pool's DeferredRelease, which drops them from the
  // process's page tables, so that streaming a whole guest does not map all of it.
  const memory::GuestMemfdMapping* mapping = nullptr;
  uint64_t release_first = 0;
  uint64_t release_count = 0;
};

class ChannelPool {
 public:
  // Takes the channels' writers (channel order) and starts one worker per writer (at least two),
  // with 4 batch buffers of `slot_pages` pages per worker (with 2, the workers and the reading
  // thread waited on each other more: ~2.5 % slower on a 2 GiB plaintext migration here).
  // `adaptive`: each worker decides per batch whether to compress (CompressionChoice, --compress
  // auto); else the stream's compression applies to every batch.
  ChannelPool(std::vector<format::ImageWriter> writers, uint32_t slot_pages, bool adaptive = false);
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
  // Pages read for a batch that went nowhere (all zero): released with the encoded ones.
  void ReleaseLater(const memory::GuestMemfdMapping& mapping, uint64_t first_page, uint64_t count) {
    release_.Add(mapping, first_page, count);
  }
  // Waits until every submitted batch was written, then releases every page still pending; the
  // first worker error, if any.
  // kCancelled once `cancel` is set while waiting (a channel blocked on a peer that stopped
  // reading would never drain).
  Status Drain(const std::atomic<bool>* cancel = nullptr);

  size_t channels() const { return writers_.size(); }
  format::ImageWriter& writer(size_t i) { return writers_[i]; }
  // Bytes written on all channels so far (readable from any thread).
  uint64_t wire_bytes() const { return wire_bytes_.load(); }
  // Recomputes wire_bytes() from the writers. REQUIRES: drained (no worker busy).
  void SyncWireBytes();
  // PAGES records written on all channels, and how many carry zstd. REQUIRES: drained.
  uint64_t pages_records() const;
  uint64_t zstd_records() const;

 private:
  // Worker `worker` feeds channel worker % channels; `shared`: more workers than channels.
  void Work(size_t worker, bool shared);

  std::vector<format::ImageWriter> writers_;
  std::unique_ptr<std::mutex[]> write_mu_;  // per channel: whose turn it is to write (shared)
  bool adaptive_ = false;
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
  memory::DeferredRelease release_;  // REQUIRES: flushed (Drain) before a mapping in it goes
  std::vector<std::thread> threads_;
};

}  // namespace gmem::migrate
