#pragma once
// ImageWriter: encodes one channel of a stream (FORMAT.md §1) into a ByteSink — the header,
// then records in the order the caller writes them, each sealed, then END with the channel's
// totals and digest. Enforces the grammar: LAYOUT first on channel 0 (and only there), nothing
// after END. A write the caller got wrong (kInvalidArgument) changes nothing and may be
// corrected; after a failure of the sink or of sealing the writer refuses further writes.
// Thread-safety: one writer per channel, used from one thread.

#include <cstdint>
#include <memory>

#include "base/io.h"
#include "format/crypto.h"
#include "format/page_batch.h"
#include "format/record_seal.h"
#include "format/records.h"
#include "format/stream_keys.h"

namespace gmem::format {

struct WriterOptions {
  uint16_t channel = 0;
  int zstd_level = 1;
};

class ImageWriter {
 public:
  // REQUIRES: `sink` outlives the writer. Writes nothing until Begin().
  static Expected<ImageWriter> Create(ByteSink& sink, std::shared_ptr<const StreamKeys> keys,
                                      const WriterOptions& options);
  ImageWriter(ImageWriter&&) noexcept;
  ImageWriter& operator=(ImageWriter&&) noexcept;
  ~ImageWriter();

  // Writes the header. On channels other than 0, `layout` tells which regions exist.
  Status Begin(const LayoutRecord* layout = nullptr);
  Status WriteLayout(const LayoutRecord& layout);
  Status WriteAttrs(const AttrsRecord& record);
  // `try_compress` false: the batch goes raw even in a zstd stream (--compress auto decides).
  Status WritePages(const PageBatchInput& batch, bool try_compress = true);

  // Several threads feeding one channel (a file): each encodes (compresses, copies) its batches
  // in parallel with its own encoder, then writes them one at a time (seal and send), in any
  // order (records are numbered as written).
  struct EncodedPages {
    Bytes public_part;
    Bytes scratch;
    MutableByteSpan sealed;
    bool zstd = false;
    const PageBatchInput* batch = nullptr;  // what was encoded (kept alive until written)
    const Region* region = nullptr;
  };
  Expected<PageBatchEncoder> NewEncoder() const;
  // Reads only what does not change once LAYOUT is known: safe alongside other EncodePages calls
  // and one WriteEncoded. Checks the batch, not the writer's state (WriteEncoded does).
  Status EncodePages(const PageBatchInput& batch, bool try_compress, PageBatchEncoder& encoder,
                     EncodedPages& out) const;
  Status WriteEncoded(EncodedPages& encoded);
  Status WritePrivate(const PrivateRecord& record);
  Status WritePass(const PassRecord& record);
  Status WriteState(const StateRecord& record);
  // Writes END; the writer is then done.
  Expected<EndRecord> Finish();

  uint64_t bytes_written() const { return bytes_written_; }
  uint64_t records_written() const { return sequence_; }
  // PAGES records written, and how many of them carry a zstd frame.
  uint64_t pages_records() const { return pages_records_; }
  uint64_t zstd_records() const { return zstd_records_; }

 private:
  ImageWriter(ByteSink& sink, std::shared_ptr<const StreamKeys> keys, const WriterOptions& options,
              RecordSealer sealer, PageBatchEncoder encoder, Sha256Stream digest);
  Status CheckWritable(RecordType type) const;
  Expected<const Region*> RegionFor(uint32_t id) const;
  // `fill`: sealed[fill_at, end) is gathered from these spans while sealing (RecordSealer::Seal).
  // Adds a written PAGES record to the counters and END's totals.
  void CountPages(const PageBatchInput& batch, const Region& region, bool zstd);
  Status Emit(RecordType type, ByteSpan public_part, MutableByteSpan sealed, size_t fill_at = 0,
              std::span<const ByteSpan> fill = {});

  enum class Phase { kNew, kOpen, kDone, kFailed };

  ByteSink* sink_;
  std::shared_ptr<const StreamKeys> keys_;
  WriterOptions options_;
  RecordSealer sealer_;
  PageBatchEncoder encoder_;
  Sha256Stream digest_;
  Phase phase_ = Phase::kNew;
  Status failure_;  // why phase_ became kFailed
  bool have_layout_ = false;
  LayoutRecord layout_;
  uint64_t sequence_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t pages_records_ = 0;
  uint64_t zstd_records_ = 0;
  EndRecord totals_;
  Bytes public_;
  Bytes sealed_;
  Bytes pages_scratch_;  // PAGES payloads that are not sealed in place (EncodeInto)
};

}  // namespace gmem::format
