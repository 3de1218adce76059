#include "format/image_writer.h"

#include <string>

namespace gmem::format {

ImageWriter::ImageWriter(ByteSink& sink, std::shared_ptr<const StreamKeys> keys, const WriterOptions& options,
                         RecordSealer sealer, PageBatchEncoder encoder, Sha256Stream digest)
    : sink_(&sink),
      keys_(std::move(keys)),
      options_(options),
      sealer_(std::move(sealer)),
      encoder_(std::move(encoder)),
      digest_(std::move(digest)) {}
ImageWriter::ImageWriter(ImageWriter&&) noexcept = default;
ImageWriter& ImageWriter::operator=(ImageWriter&&) noexcept = default;
ImageWriter::~ImageWriter() = default;

Expected<ImageWriter> ImageWriter::Create(ByteSink& sink, std::shared_ptr<const StreamKeys> keys,
                                          const WriterOptions& options) {
  if (!keys) return InvalidArgument("no stream keys");
  if (options.channel >= keys->header().channel_count) {
    return InvalidArgument("channel " + std::to_string(options.channel) + " is not below the stream's " +
                           std::to_string(keys->header().channel_count) + " channels");
  }
  GMEM_ASSIGN_OR_RETURN(RecordSealer sealer, RecordSealer::Create(*keys));
  GMEM_ASSIGN_OR_RETURN(PageBatchEncoder encoder, PageBatchEncoder::Create(keys->header().compression, options.zstd_level));
  GMEM_ASSIGN_OR_RETURN(Sha256Stream digest, Sha256Stream::Create());
  digest.Update(keys->header_digest());
  return ImageWriter(sink, std::move(keys), options, std::move(sealer), std::move(encoder), std::move(digest));
}

Status ImageWriter::Begin(const LayoutRecord* layout) {
  if (phase_ != Phase::kNew) return InvalidArgument("Begin() called twice");
  if (options_.channel != 0) {
    if (layout == nullptr) return InvalidArgument("channels other than 0 need the layout");
    GMEM_RETURN_IF_ERROR(ValidateLayout(*layout).WithContext("layout"));
    layout_ = *layout;
    have_layout_ = true;
  }
  Status st = sink_->Write(keys_->header_bytes());
  if (!st.ok()) {
    phase_ = Phase::kFailed;
    failure_ = st.WithContext("writing image header");
    return failure_;
  }
  bytes_written_ += kHeaderSize;
  phase_ = Phase::kOpen;
  return Status::Ok();
}

Status ImageWriter::CheckWritable(RecordType type) const {
  switch (phase_) {
    case Phase::kNew: return InvalidArgument("Begin() must come first");
    case Phase::kDone: return InvalidArgument("the image is already finished");
    // The cause, again: a second thread writing to this channel reports what really happened.
    case Phase::kFailed: return Status(failure_.code(), "an earlier write failed: " + failure_.message(), failure_.sys_errno());
    case Phase::kOpen: break;
  }
  if (type == RecordType::kLayout) {
    if (options_.channel != 0) return InvalidArgument("LAYOUT belongs on channel 0");
    if (have_layout_) return InvalidArgument("LAYOUT was already written");
  } else if (!have_layout_) {
    return InvalidArgument(std::string(RecordTypeName(type)) + " before LAYOUT");
  }
  return Status::Ok();
}

Expected<const Region*> ImageWriter::RegionFor(uint32_t id) const {
  const Region* region = layout_.Find(id);
  if (region == nullptr) return InvalidArgument("region " + std::to_string(id) + " is not in the layout");
  return region;
}

Status ImageWriter::Emit(RecordType type, ByteSpan public_part, MutableByteSpan sealed, size_t fill_at,
                         std::span<const ByteSpan> fill) {
  Frame frame{type, options_.channel, static_cast<uint32_t>(public_part.size()), sequence_,
              static_cast<uint32_t>(sealed.size())};
  if (public_part.size() > kMaxPublicLength || sealed.size() > kMaxSealedLength) {
    return InvalidArgument(std::string(RecordTypeName(type)) + " record exceeds the size limits");
  }
  FrameBytes frame_bytes = EncodeFrame(frame);
  Expected<Tag> tag = sealer_.Seal(frame, frame_bytes, public_part, sealed, fill_at, fill);
  Status st = tag.ok() ? Status::Ok() : tag.status();
  // Frame and public part go out together; the sealed part is written from where it lies.
  if (st.ok()) {
    Bytes head(frame_bytes.begin(), frame_bytes.end());
    head.insert(head.end(), public_part.begin(), public_part.end());
    st = sink_->Write(head);
  }
  if (st.ok() && !sealed.empty()) st = sink_->Write(sealed);
  if (st.ok()) st = sink_->Write(*tag);
  if (!st.ok()) {
    phase_ = Phase::kFailed;
    failure_ = st.WithContext("record " + std::to_string(sequence_) + " (" + RecordTypeName(type) + ")");
    return failure_;
  }
  if (type != RecordType::kEnd) digest_.Update(*tag);
  bytes_written_ += kFrameSize + public_part.size() + sealed.size() + kTagSize;
  ++sequence_;
  return Status::Ok();
}

Status ImageWriter::WriteLayout(const LayoutRecord& layout) {
  GMEM_RETURN_IF_ERROR(CheckWritable(RecordType::kLayout));
  Status valid = ValidateLayout(layout);
  if (!valid.ok()) return InvalidArgument(valid.message()).WithContext("layout");
  Bytes public_part = EncodeLayout(layout);
  GMEM_RETURN_IF_ERROR(Emit(RecordType::kLayout, public_part, {}));
  layout_ = layout;
  have_layout_ = true;
  return Status::Ok();
}

Status ImageWriter::WriteAttrs(const AttrsRecord& record) {
  GMEM_RETURN_IF_ERROR(CheckWritable(RecordType::kAttrs));
  GMEM_ASSIGN_OR_RETURN(const Region* region, RegionFor(record.region_id));
  GMEM_ASSIGN_OR_RETURN(Bytes public_part, EncodeAttrs(record, *region));
  return Emit(RecordType::kAttrs, public_part, {});
}

Status ImageWriter::WritePages(const PageBatchInput& batch, bool try_compress) {
  GMEM_RETURN_IF_ERROR(CheckWritable(RecordType::kPages));
  GMEM_ASSIGN_OR_RETURN(const Region* region, RegionFor(batch.region_id));
  MutableByteSpan sealed;
  bool deferred = false;
  GMEM_RETURN_IF_ERROR(encoder_.EncodeInto(batch, *region, public_, pages_scratch_, sealed, try_compress, &deferred));
  // A raw batch not laid out in place: its pages are read once, as they are sealed into the record.
  size_t runs_bytes = batch.runs.size() * kPageRunSize;
  GMEM_RETURN_IF_ERROR(deferred ? Emit(RecordType::kPages, public_, sealed, runs_bytes, batch.data)
                                : Emit(RecordType::kPages, public_, sealed));
  CountPages(batch, *region, encoder_.last_was_zstd());
  return Status::Ok();
}

Expected<PageBatchEncoder> ImageWriter::NewEncoder() const {
  return PageBatchEncoder::Create(keys_->header().compression, options_.zstd_level);
}

Status ImageWriter::EncodePages(const PageBatchInput& batch, bool try_compress, PageBatchEncoder& encoder,
                                EncodedPages& out) const {
  if (!have_layout_) return InvalidArgument("PAGES before LAYOUT");
  GMEM_ASSIGN_OR_RETURN(const Region* region, RegionFor(batch.region_id));
  GMEM_RETURN_IF_ERROR(encoder.EncodeInto(batch, *region, out.public_part, out.scratch, out.sealed, try_compress));
  out.zstd = encoder.last_was_zstd();
  out.batch = &batch;
  out.region = region;
  return Status::Ok();
}

Status ImageWriter::WriteEncoded(EncodedPages& encoded) {
  GMEM_RETURN_IF_ERROR(CheckWritable(RecordType::kPages));
  GMEM_RETURN_IF_ERROR(Emit(RecordType::kPages, encoded.public_part, encoded.sealed));
  CountPages(*encoded.batch, *encoded.region, encoded.zstd);
  return Status::Ok();
}

void ImageWriter::CountPages(const PageBatchInput& batch, const Region& region, bool zstd) {
  ++pages_records_;
  if (zstd) ++zstd_records_;
  totals_.data_pages += batch.data.size();
  for (const PageRun& run : batch.runs) {
    if (run.kind == RunKind::kZero) totals_.zero_pages += run.npages;
  }
  totals_.raw_bytes += uint64_t{batch.data.size()} * region.page_size;
}

Status ImageWriter::WritePrivate(const PrivateRecord& record) {
  GMEM_RETURN_IF_ERROR(CheckWritable(RecordType::kPrivate));
  GMEM_ASSIGN_OR_RETURN(const Region* region, RegionFor(record.region_id));
  GMEM_RETURN_IF_ERROR(EncodePrivate(record, *region, public_, sealed_));
  GMEM_RETURN_IF_ERROR(Emit(RecordType::kPrivate, public_, sealed_));
  totals_.private_pages += record.blobs.size();
  return Status::Ok();
}

Status ImageWriter::WritePass(const PassRecord& record) {
  GMEM_RETURN_IF_ERROR(CheckWritable(RecordType::kPass));
  GMEM_ASSIGN_OR_RETURN(Bytes public_part, EncodePass(record));
  return Emit(RecordType::kPass, public_part, {});
}

Status ImageWriter::WriteState(const StateRecord& record) {
  GMEM_RETURN_IF_ERROR(CheckWritable(RecordType::kState));
  GMEM_RETURN_IF_ERROR(EncodeState(record, public_, sealed_));
  return Emit(RecordType::kState, public_, sealed_);
}

Expected<EndRecord> ImageWriter::Finish() {
  GMEM_RETURN_IF_ERROR(CheckWritable(RecordType::kEnd));
  EndRecord end = totals_;
  end.record_count = sequence_;
  end.digest = digest_.Peek();
  Bytes public_part = EncodeEnd(end);
  GMEM_RETURN_IF_ERROR(Emit(RecordType::kEnd, public_part, {}));
  phase_ = Phase::kDone;
  return end;
}

}  // namespace gmem::format
