#pragma once
// PAGES records (FORMAT.md §5.3): a batch of page runs of one region, zero runs costing nothing
// and DATA pages carried as one zstd frame, or raw when zstd does not shrink them. zstd stays
// inside this file pair; one encoder or decoder per thread (they keep a zstd context).

#include <cstdint>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "base/expected.h"
#include "format/records.h"
#include "format/wire.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace gmem::format {

struct PageRun {
  uint64_t first_page = 0;
  uint32_t npages = 0;
  RunKind kind = RunKind::kData;
  bool operator==(const PageRun&) const = default;
};

// What a writer sends: sorted, non-overlapping runs over one region, and one span per DATA page
// (page_size bytes each, in run order). The spans may point into guest memory; they are read
// once, during Encode().
struct PageBatchInput {
  uint32_t region_id = 0;
  uint64_t generation = 0;
  std::vector<PageRun> runs;
  std::vector<ByteSpan> data;
  // Optional: writable bytes of the caller's own buffer that end exactly where the first DATA
  // page starts, the pages lying back to back after them. A raw batch then gets its runs
  // written there and is sealed in place: its pages are never copied (EncodeInto).
  MutableByteSpan headroom{};
};

// A decoded batch. `data` holds the DATA pages back to back in run order: a view of the record
// as read (raw batches are not copied) or of `storage` (decompressed ones). Valid as long as the
// buffer the record was decoded from (ImageReader: until its next Next()).
struct PagesRecord {
  uint32_t region_id = 0;
  uint32_t page_size = 0;
  uint64_t generation = 0;
  PageEncoding encoding = PageEncoding::kRaw;
  uint32_t data_pages = 0;
  uint32_t zero_pages = 0;
  std::vector<PageRun> runs;
  ByteSpan data;
  Bytes storage;  // reused across decodes; never shrinks
  // Decoded with `defer_zstd`: the checked but not yet decompressed frame (a view like `data`),
  // and `data` empty until PageBatchDecoder::Decompress.
  ByteSpan zstd_frame;
};

class PageBatchEncoder {
 public:
  // `level` is a zstd level (negative = faster); ignored for Compression::kNone.
  static Expected<PageBatchEncoder> Create(Compression compression, int level);
  PageBatchEncoder(PageBatchEncoder&&) noexcept;
  PageBatchEncoder& operator=(PageBatchEncoder&&) noexcept;
  ~PageBatchEncoder();

  // Encodes `in` for `region` into the public summary and the (not yet sealed) sealed payload
  // `sealed`: in place in `in.headroom` and the pages after it when the batch goes raw and they
  // allow it, otherwise at the start of `scratch`, which grows as needed and never shrinks (a
  // reused buffer is not cleared for every batch). Fails with kInvalidArgument when `in` breaks
  // a rule of §5.3.
  // `try_compress` false: a zstd stream's batch goes raw without trying (--compress auto).
  // `defer_copy`: where a raw batch's pages would be copied into `scratch`, they are not, and
  // *defer_copy says so: sealed[runs, end) is then the caller's to fill from `in.data`, in order
  // (ImageWriter gathers them as it seals).
  Status EncodeInto(const PageBatchInput& in, const Region& region, Bytes& public_part, Bytes& scratch,
                    MutableByteSpan& sealed, bool try_compress = true, bool* defer_copy = nullptr);
  // Whether the last batch encoded went out as a zstd frame.
  bool last_was_zstd() const { return last_was_zstd_; }
  // The same, with the sealed payload copied into `sealed_part`, sized exactly.
  Status Encode(const PageBatchInput& in, const Region& region, Bytes& public_part,
                Bytes& sealed_part);

 private:
  struct CCtxDeleter { void operator()(ZSTD_CCtx_s* ctx) const; };
  PageBatchEncoder(Compression compression, std::unique_ptr<ZSTD_CCtx_s, CCtxDeleter> cctx);
  // Compresses the DATA pages into scratch[runs_end, ...); the frame's size, or 0 when zstd did
  // not shrink them.
  Expected<size_t> CompressInto(const PageBatchInput& in, uint64_t raw_bytes, Bytes& scratch, size_t runs_end);

  Compression compression_;
  std::unique_ptr<ZSTD_CCtx_s, CCtxDeleter> cctx_;
  Bytes gather_;  // the DATA pages back to back, for CompressInto
  bool last_was_zstd_ = false;
};

class PageBatchDecoder {
 public:
  static Expected<PageBatchDecoder> Create();
  PageBatchDecoder(PageBatchDecoder&&) noexcept;
  PageBatchDecoder& operator=(PageBatchDecoder&&) noexcept;
  ~PageBatchDecoder();

  // Decodes and checks a PAGES record against the layout and the header's compression.
  // `out` is overwritten; its data buffer is reused across calls.
  // `defer_zstd`: a zstd batch is checked (runs, frame header, frame size) but left compressed in
  // out.zstd_frame, for Decompress, perhaps on another thread.
  Status Decode(ByteSpan public_part, ByteSpan sealed_part, const LayoutRecord& layout,
                Compression allowed, PagesRecord& out, bool defer_zstd = false);
  // Decompresses `frame` (the zstd_frame a deferred Decode left, or a copy of it) into
  // out.storage and points out.data at it; kCorrupt unless it yields exactly out.data_pages pages.
  Status Decompress(ByteSpan frame, PagesRecord& out);

 private:
  struct DCtxDeleter { void operator()(ZSTD_DCtx_s* ctx) const; };
  explicit PageBatchDecoder(std::unique_ptr<ZSTD_DCtx_s, DCtxDeleter> dctx);
  std::unique_ptr<ZSTD_DCtx_s, DCtxDeleter> dctx_;
};

// The public summary of a PAGES record (§5.3), readable without a key.
struct PagesSummary {
  uint32_t region_id = 0;
  uint32_t page_size = 0;
  uint64_t generation = 0;
  PageEncoding encoding = PageEncoding::kInvalid;
  uint32_t run_count = 0;
  uint32_t data_pages = 0;
  uint32_t zero_pages = 0;
};
// Structural checks only (length, reserved bytes, known encoding, run_count bounds).
Expected<PagesSummary> DecodePagesSummary(ByteSpan public_part);

// Checks runs against §5.3 and counts DATA and ZERO pages (each must fit in u32).
Status ValidatePageRuns(const std::vector<PageRun>& runs, const Region& region, Code code,
                        uint32_t& data_pages, uint32_t& zero_pages);

}  // namespace gmem::format
