#include "migrate/compression_choice.h"

#include <algorithm>

namespace gmem::migrate {

bool CompressionChoice::Next() {
  // Learn both kinds first: raw, then zstd.
  if (!estimates_[0].known) return false;
  if (!estimates_[1].known) return true;
  bool best = estimates_[1].ns_per_byte < estimates_[0].ns_per_byte;
  double ratio = estimates_[!best].ns_per_byte / std::max(estimates_[best].ns_per_byte, 1e-6);
  // A retry costs (ratio - 1) batches' time: retrying after 64 * (ratio - 1) batches keeps the
  // price of looking at ~1.6 % (bench/compare: 16 * ratio cost the plain case 5-9 %), between 16
  // batches when the kinds are close and 1024 (1 GiB on one channel) when the other is far behind.
  uint32_t interval = static_cast<uint32_t>(std::clamp(64.0 * (ratio - 1.0), 16.0, 1024.0));
  if (++since_other_ >= interval) {
    since_other_ = 0;
    return !best;
  }
  return best;
}

void CompressionChoice::Record(bool compressed, uint64_t raw_bytes, std::chrono::nanoseconds took) {
  if (raw_bytes < kMinSampleBytes) return;
  double sample = static_cast<double>(took.count()) / static_cast<double>(raw_bytes);
  Estimate& e = estimates_[compressed];
  // An exponential average: recent batches count most, one outlier does not flip the choice.
  e.ns_per_byte = e.known ? 0.75 * e.ns_per_byte + 0.25 * sample : sample;
  e.known = true;
}

}  // namespace gmem::migrate
