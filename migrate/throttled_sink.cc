#include "migrate/throttled_sink.h"

#include <thread>

namespace gmem::migrate {

Status ThrottledSink::Write(ByteSpan data) {
  if (rate_ != 0) {
    if (!started_) {
      started_ = true;
      start_ = std::chrono::steady_clock::now();
    }
    // Where the byte count would be at the set rate; wait until the clock gets there.
    auto due = start_ + std::chrono::microseconds(static_cast<int64_t>(
                            static_cast<double>(bytes_) * 1e6 / static_cast<double>(rate_)));
    std::this_thread::sleep_until(due);
  }
  GMEM_RETURN_IF_ERROR(inner_->Write(data));
  bytes_ += data.size();
  return Status::Ok();
}

}  // namespace gmem::migrate
