#include "format/image_reader.h"

#include <algorithm>
#include <cstdio>
#include <string>

namespace gmem::format {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Status Truncated(const char* where) { return CorruptError(std::string("truncated: stream ends ") + where); }

Expected<Bytes> ReadHeaderBytes(ByteSource& source) {
  Bytes bytes(kHeaderSize);
  GMEM_ASSIGN_OR_RETURN(size_t got, ReadFull(source, bytes));
  if (got == 0) return CorruptError("empty input: not a gmemkit image");
  if (got < kHeaderSize) return Truncated("inside the header");
  return bytes;
}

}  // namespace

ImageReader::ImageReader(ByteSource& source, std::shared_ptr<const StreamKeys> keys, const ReaderOptions& options,
                         RecordSealer sealer, PageBatchDecoder decoder, Sha256Stream digest)
    : source_(&source),
      keys_(std::move(keys)),
      options_(options),
      sealer_(std::move(sealer)),
      decoder_(std::move(decoder)),
      digest_(std::move(digest)) {}
ImageReader::ImageReader(ImageReader&&) noexcept = default;
ImageReader& ImageReader::operator=(ImageReader&&) noexcept = default;
ImageReader::~ImageReader() = default;

Expected<ImageReader> ImageReader::Open(ByteSource& source, const KeySource& key, const ReaderOptions& options) {
  if (options.channel != 0) return InvalidArgument("use OpenChannel() for channels other than 0");
  GMEM_ASSIGN_OR_RETURN(Bytes bytes, ReadHeaderBytes(source));
  GMEM_ASSIGN_OR_RETURN(StreamKeys keys, OpenStream(bytes, key, options.allow_insecure));
  auto shared = std::make_shared<const StreamKeys>(std::move(keys));
  GMEM_ASSIGN_OR_RETURN(RecordSealer sealer, RecordSealer::Create(*shared));
  GMEM_ASSIGN_OR_RETURN(PageBatchDecoder decoder, PageBatchDecoder::Create());
  GMEM_ASSIGN_OR_RETURN(Sha256Stream digest, Sha256Stream::Create());
  digest.Update(shared->header_digest());
  return ImageReader(source, std::move(shared), options, std::move(sealer), std::move(decoder), std::move(digest));
}

Expected<ImageReader> ImageReader::OpenChannel(ByteSource& source, std::shared_ptr<const StreamKeys> keys,
                                               const LayoutRecord& layout, const ReaderOptions& options) {
  if (!keys) return InvalidArgument("no stream keys");
  if (options.channel == 0 || options.channel >= keys->header().channel_count) {
    return InvalidArgument("channel " + std::to_string(options.channel) + " is not an extra channel of this stream");
  }
  GMEM_ASSIGN_OR_RETURN(Bytes bytes, ReadHeaderBytes(source));
  ByteSpan expected = keys->header_bytes();
  if (!std::equal(bytes.begin(), bytes.end(), expected.begin(), expected.end())) {
    return ProtocolError("channel " + std::to_string(options.channel) + " carries the header of another stream");
  }
  GMEM_ASSIGN_OR_RETURN(RecordSealer sealer, RecordSealer::Create(*keys));
  GMEM_ASSIGN_OR_RETURN(PageBatchDecoder decoder, PageBatchDecoder::Create());
  GMEM_ASSIGN_OR_RETURN(Sha256Stream digest, Sha256Stream::Create());
  digest.Update(keys->header_digest());
  ImageReader reader(source, std::move(keys), options, std::move(sealer), std::move(decoder), std::move(digest));
  reader.layout_ = layout;
  reader.have_layout_ = true;
  return reader;
}

Expected<const Record*> ImageReader::Next() {
  if (phase_ == Phase::kDone) return ProtocolError("read past END");
  if (phase_ == Phase::kFailed) return ProtocolError("an earlier record failed");
  uint64_t at = offset_;
  uint64_t index = sequence_;
  Expected<const Record*> record = ReadRecord();
  if (!record.ok()) {
    phase_ = Phase::kFailed;
    std::string where = "record " + std::to_string(index);
    if (record_.type != RecordType::kInvalid) where += std::string(" (") + RecordTypeName(record_.type) + ")";
    return std::move(record).status().WithContext(where + " at " + Hex(at));
  }
  return record;
}

Status ImageReader::CheckGrammar(const Frame& frame) const {
  if (frame.channel != options_.channel) {
    return ProtocolError("record belongs to channel " + std::to_string(frame.channel) + ", expected " +
                         std::to_string(options_.channel));
  }
  if (frame.sequence != sequence_) {
    return ProtocolError("out of sequence: expected record " + std::to_string(sequence_) + ", got " +
                         std::to_string(frame.sequence) + " (dropped, duplicated or reordered)");
  }
  if (frame.type == RecordType::kLayout) {
    if (options_.channel != 0) return ProtocolError("LAYOUT on a channel other than 0");
    if (have_layout_) return ProtocolError("second LAYOUT");
  } else if (!have_layout_) {
    return ProtocolError("the first record must be LAYOUT");
  }
  bool sealed_allowed = frame.type == RecordType::kPages || frame.type == RecordType::kPrivate ||
                        frame.type == RecordType::kState;
  if (!sealed_allowed && frame.sealed_length != 0) {
    return CorruptError(std::string(RecordTypeName(frame.type)) + " has a sealed part");
  }
  return Status::Ok();
}

Expected<const Record*> ImageReader::ReadRecord() {
  record_.type = RecordType::kInvalid;
  record_.index = sequence_;
  record_.offset = offset_;
  FrameBytes frame_bytes{};
  GMEM_ASSIGN_OR_RETURN(size_t got, ReadFull(*source_, frame_bytes));
  if (got == 0) return Truncated("before END");
  if (got < kFrameSize) return Truncated("inside a record frame");
  GMEM_ASSIGN_OR_RETURN(Frame frame, DecodeFrame(frame_bytes));
  record_.type = frame.type;
  GMEM_RETURN_IF_ERROR(CheckGrammar(frame));

  // Both lengths are bounded by DecodeFrame; the buffer still grows only as bytes arrive, so a
  // frame that merely claims 64 MiB costs no more memory than the bytes really sent.
  size_t body = size_t{frame.public_length} + frame.sealed_length + kTagSize;
  GMEM_RETURN_IF_ERROR(ReadBody(body));
  MutableByteSpan all = MutableByteSpan(buffer_).first(body);
  ByteSpan public_part = all.first(frame.public_length);
  MutableByteSpan sealed = all.subspan(frame.public_length, frame.sealed_length);
  Tag tag{};
  std::copy_n(all.end() - kTagSize, kTagSize, tag.begin());
  Status st = sealer_.Open(frame, frame_bytes, public_part, sealed, tag);
  if (!st.ok()) return st;

  GMEM_RETURN_IF_ERROR(Decode(frame, public_part, sealed));
  offset_ += kFrameSize + body;
  ++sequence_;
  if (frame.type == RecordType::kEnd) {
    GMEM_RETURN_IF_ERROR(ExpectEof());
    phase_ = Phase::kDone;
  } else {
    digest_.Update(tag);
  }
  return &record_;
}

Status ImageReader::Decode(const Frame& frame, ByteSpan public_part, ByteSpan sealed_part) {
  switch (frame.type) {
    case RecordType::kLayout: {
      GMEM_ASSIGN_OR_RETURN(LayoutRecord layout, DecodeLayout(public_part));
      layout_ = layout;
      have_layout_ = true;
      record_.body = std::move(layout);
      return Status::Ok();
    }
    case RecordType::kAttrs: {
      GMEM_ASSIGN_OR_RETURN(AttrsRecord attrs, DecodeAttrs(public_part, layout_));
      record_.body = std::move(attrs);
      return Status::Ok();
    }
    case RecordType::kPages: {
      // Reuse the previous batch's buffers when the last record was a batch too.
      if (!std::holds_alternative<PagesRecord>(record_.body)) record_.body = PagesRecord{};
      PagesRecord& pages = std::get<PagesRecord>(record_.body);
      GMEM_RETURN_IF_ERROR(
          decoder_.Decode(public_part, sealed_part, layout_, header().compression, pages, options_.defer_zstd));
      totals_.data_pages += pages.data_pages;
      totals_.zero_pages += pages.zero_pages;
      totals_.raw_bytes += uint64_t{pages.data_pages} * pages.page_size;
      return Status::Ok();
    }
    case RecordType::kPrivate: {
      GMEM_ASSIGN_OR_RETURN(PrivateRecord priv, DecodePrivate(public_part, sealed_part, layout_));
      totals_.private_pages += priv.blobs.size();
      record_.body = std::move(priv);
      return Status::Ok();
    }
    case RecordType::kPass: {
      GMEM_ASSIGN_OR_RETURN(PassRecord pass, DecodePass(public_part));
      record_.body = pass;
      return Status::Ok();
    }
    case RecordType::kState: {
      GMEM_ASSIGN_OR_RETURN(StateRecord state, DecodeState(public_part, sealed_part));
      record_.body = std::move(state);
      return Status::Ok();
    }
    case RecordType::kEnd: {
      GMEM_ASSIGN_OR_RETURN(EndRecord end, DecodeEnd(public_part));
      GMEM_RETURN_IF_ERROR(CheckEnd(end));
      record_.body = end;
      return Status::Ok();
    }
    case RecordType::kInvalid: break;
  }
  return CorruptError("unknown record type");
}

Status ImageReader::CheckEnd(const EndRecord& end) {
  EndRecord expected = totals_;
  expected.record_count = sequence_;
  expected.digest = digest_.Peek();
  if (end.record_count != expected.record_count) {
    return CorruptError("END counts " + std::to_string(end.record_count) + " records, read " +
                        std::to_string(expected.record_count));
  }
  if (end.data_pages != expected.data_pages || end.zero_pages != expected.zero_pages ||
      end.private_pages != expected.private_pages || end.raw_bytes != expected.raw_bytes) {
    return CorruptError("END totals differ from the records read");
  }
  if (end.digest != expected.digest) return CorruptError("END digest differs from the records read");
  return Status::Ok();
}

Status ImageReader::ReadBody(size_t body) {
  constexpr size_t kFirstChunk = 1 << 20;
  size_t have = 0;
  while (have < body) {
    size_t want = std::min(body, std::max(kFirstChunk, 2 * have));
    if (buffer_.size() < want) buffer_.resize(want);
    GMEM_ASSIGN_OR_RETURN(size_t got, ReadFull(*source_, MutableByteSpan(buffer_).subspan(have, want - have)));
    have += got;
    if (have < want) return Truncated("inside a record");
  }
  return Status::Ok();
}

Status ImageReader::ExpectEof() {
  if (!options_.expect_eof_after_end) return Status::Ok();
  std::byte extra[1];
  GMEM_ASSIGN_OR_RETURN(size_t got, source_->Read(extra));
  if (got != 0) return CorruptError("unexpected bytes after END");
  return Status::Ok();
}

}  // namespace gmem::format
