#include "format/image_scanner.h"

#include <algorithm>
#include <string>

namespace gmem::format {

Expected<ImageScanner> ImageScanner::Open(ByteSource& source) {
  Bytes bytes(kHeaderSize);
  GMEM_ASSIGN_OR_RETURN(size_t got, ReadFull(source, bytes));
  if (got == 0) return CorruptError("empty input: not a gmemkit image");
  if (got < kHeaderSize) return CorruptError("truncated: stream ends inside the header");
  GMEM_ASSIGN_OR_RETURN(ImageHeader header, DecodeHeader(bytes));
  return ImageScanner(source, header);
}

Status ImageScanner::Skip(uint64_t n) {
  Bytes scratch(static_cast<size_t>(std::min<uint64_t>(n, 1 << 20)));
  while (n > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, scratch.size()));
    GMEM_ASSIGN_OR_RETURN(size_t got, ReadFull(*source_, MutableByteSpan(scratch).first(chunk)));
    if (got < chunk) return CorruptError("truncated: stream ends inside a record");
    n -= chunk;
  }
  return Status::Ok();
}

Expected<std::optional<ScannedRecord>> ImageScanner::Next() {
  if (done_) return std::optional<ScannedRecord>();
  ScannedRecord rec;
  rec.offset = offset_;
  std::string where = "record " + std::to_string(sequence_);
  FrameBytes frame_bytes{};
  GMEM_ASSIGN_OR_RETURN(size_t got, ReadFull(*source_, frame_bytes));
  if (got == 0) return CorruptError("truncated: stream ends before END").WithContext(where);
  if (got < kFrameSize) return CorruptError("truncated: stream ends inside a record frame").WithContext(where);
  Expected<Frame> frame = DecodeFrame(frame_bytes);
  if (!frame.ok()) return frame.status().WithContext(where);
  rec.frame = *frame;
  if (rec.frame.sequence != sequence_) {
    return ProtocolError("out of sequence: expected record " + std::to_string(sequence_) + ", got " +
                         std::to_string(rec.frame.sequence));
  }
  rec.public_part.resize(rec.frame.public_length);
  GMEM_ASSIGN_OR_RETURN(got, ReadFull(*source_, rec.public_part));
  if (got < rec.public_part.size()) return CorruptError("truncated: stream ends inside a record").WithContext(where);
  GMEM_RETURN_IF_ERROR(Skip(uint64_t{rec.frame.sealed_length} + kTagSize).WithContext(where));
  offset_ += kFrameSize + rec.frame.public_length + rec.frame.sealed_length + kTagSize;
  ++sequence_;
  if (rec.frame.type == RecordType::kEnd) {
    done_ = true;
    std::byte extra[1];
    GMEM_ASSIGN_OR_RETURN(size_t more, source_->Read(extra));
    if (more != 0) return CorruptError("unexpected bytes after END");
  }
  return std::optional<ScannedRecord>(std::move(rec));
}

}  // namespace gmem::format
