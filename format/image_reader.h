#pragma once
// ImageReader: the strict decoder of one channel of a stream (FORMAT.md §9). Open() reads and
// authenticates the header (a wrong key fails here, before any record is read); Next() returns
// one verified, decoded record at a time, ending with END, whose totals and digest it checks.
// Every error names the record index, type and byte offset.
// Thread-safety: one reader per channel, used from one thread.

#include <cstdint>
#include <memory>
#include <variant>

#include "base/io.h"
#include "format/crypto.h"
#include "format/page_batch.h"
#include "format/record_seal.h"
#include "format/records.h"
#include "format/stream_keys.h"

namespace gmem::format {

struct ReaderOptions {
  uint16_t channel = 0;
  // Accept cipher NONE images (the tools' --insecure-no-encryption).
  bool allow_insecure = false;
  // After END, require the source to be at its end (a file). Off for a live socket that carries
  // more messages after the stream.
  bool expect_eof_after_end = true;
  // Leave zstd PAGES compressed (PagesRecord::zstd_frame), for the caller to decompress on other
  // threads (PageBatchDecoder::Decompress). Everything else is checked as usual.
  bool defer_zstd = false;
};

struct Record {
  RecordType type = RecordType::kInvalid;
  uint64_t index = 0;   // the record's sequence number in its channel
  uint64_t offset = 0;  // byte offset of its frame in the channel
  std::variant<std::monostate, LayoutRecord, AttrsRecord, PagesRecord, PrivateRecord, PassRecord, StateRecord,
               EndRecord>
      body;
};

class ImageReader {
 public:
  // Reads the header from `source` and unlocks it with `key`.
  // REQUIRES: `source` outlives the reader.
  static Expected<ImageReader> Open(ByteSource& source, const KeySource& key, const ReaderOptions& options);
  // For channels after the first: the header must be byte-identical to the stream's, whose keys
  // and layout are already known.
  static Expected<ImageReader> OpenChannel(ByteSource& source, std::shared_ptr<const StreamKeys> keys,
                                           const LayoutRecord& layout, const ReaderOptions& options);
  ImageReader(ImageReader&&) noexcept;
  ImageReader& operator=(ImageReader&&) noexcept;
  ~ImageReader();

  // The next record, verified and decoded. The returned record stays valid until the next call.
  Expected<const Record*> Next();

  bool finished() const { return phase_ == Phase::kDone; }
  const ImageHeader& header() const { return keys_->header(); }
  std::shared_ptr<const StreamKeys> keys() const { return keys_; }
  // Empty until LAYOUT was read (channel 0).
  const LayoutRecord& layout() const { return layout_; }
  uint64_t offset() const { return offset_; }
  // Swaps the buffer that holds the last record's bytes with `other`. The last record's spans (a
  // deferred PagesRecord::zstd_frame) stay valid and now point into `other`; the reader reads on
  // into the buffer it got, growing it as needed.
  void ExchangeBuffer(Bytes& other) { buffer_.swap(other); }
  // Bytes the reader holds for record bodies (grows with the largest record actually received).
  size_t buffer_bytes() const { return buffer_.capacity(); }

 private:
  ImageReader(ByteSource& source, std::shared_ptr<const StreamKeys> keys, const ReaderOptions& options,
              RecordSealer sealer, PageBatchDecoder decoder, Sha256Stream digest);
  Expected<const Record*> ReadRecord();
  Status CheckGrammar(const Frame& frame) const;
  Status Decode(const Frame& frame, ByteSpan public_part, ByteSpan sealed_part);
  Status CheckEnd(const EndRecord& end);
  Status ReadBody(size_t body);
  Status ExpectEof();

  enum class Phase { kOpen, kDone, kFailed };

  ByteSource* source_;
  std::shared_ptr<const StreamKeys> keys_;
  ReaderOptions options_;
  RecordSealer sealer_;
  PageBatchDecoder decoder_;
  Sha256Stream digest_;
  Phase phase_ = Phase::kOpen;
  bool have_layout_ = false;
  LayoutRecord layout_;
  uint64_t sequence_ = 0;
  uint64_t offset_ = kHeaderSize;
  EndRecord totals_;
  Record record_;
  Bytes buffer_;
};

}  // namespace gmem::format
