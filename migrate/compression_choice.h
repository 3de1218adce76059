#pragma once
// CompressionChoice: `--compress auto`. Per channel, decides batch by batch whether zstd pays,
// from what the channel measured: the wall time each kind of batch took to encode, seal and
// write, per raw byte. On a fast link with busy cores a raw batch goes out faster than zstd can
// shrink it; on a slow link the smaller batch wins. The better kind is used; the other is tried
// again now and then (less often the further behind it is), so a change of link or content is
// noticed. Zero pages never reach it: they cost nothing either way.
// Thread-safety: one per channel worker; not shared.

#include <chrono>
#include <cstdint>

namespace gmem::migrate {

class CompressionChoice {
 public:
  // Whether the next batch should be compressed.
  bool Next();
  // What a batch of `raw_bytes` page bytes cost, compressed or not.
  void Record(bool compressed, uint64_t raw_bytes, std::chrono::nanoseconds took);

  // The current estimate, ns per raw byte (0 while unknown).
  double ns_per_byte(bool compressed) const { return estimates_[compressed].ns_per_byte; }

 private:
  struct Estimate {
    double ns_per_byte = 0;
    bool known = false;
  };
  // Batches smaller than this say little about throughput (fixed costs dominate).
  static constexpr uint64_t kMinSampleBytes = 64 << 10;

  Estimate estimates_[2];  // [0] raw, [1] zstd
  uint32_t since_other_ = 0;  // batches since the other kind was last tried
};

}  // namespace gmem::migrate
