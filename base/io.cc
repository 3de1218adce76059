#include "base/io.h"

#include <algorithm>
#include <cstring>

namespace gmem {

Expected<size_t> ReadFull(ByteSource& source, MutableByteSpan out) {
  size_t got = 0;
  while (got < out.size()) {
    GMEM_ASSIGN_OR_RETURN(size_t n, source.Read(out.subspan(got)));
    if (n == 0) break;
    got += n;
  }
  return got;
}

Status MemorySink::Write(ByteSpan data) {
  bytes_.insert(bytes_.end(), data.begin(), data.end());
  return Status::Ok();
}

Expected<size_t> MemorySource::Read(MutableByteSpan out) {
  size_t n = std::min(out.size(), data_.size() - pos_);
  if (n != 0) std::memcpy(out.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

}  // namespace gmem
