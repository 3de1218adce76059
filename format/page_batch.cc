#include "format/page_batch.h"

#include <zstd.h>

#include <cstring>
#include <string>

namespace gmem::format {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

}  // namespace

Status ValidatePageRuns(const std::vector<PageRun>& runs, const Region& region, Code code,
                        uint32_t& data_pages, uint32_t& zero_pages) {
  if (runs.empty() || runs.size() > kMaxPageRuns) {
    return Status(code, "PAGES run_count " + Num(runs.size()) + " is outside 1.." + Num(kMaxPageRuns));
  }
  uint64_t data = 0;
  uint64_t zero = 0;
  uint64_t next = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const PageRun& run = runs[i];
    std::string which = "page run " + Num(i);
    if (run.kind != RunKind::kData && run.kind != RunKind::kZero) {
      return Status(code, which + " has unknown kind " + Num(static_cast<uint8_t>(run.kind)));
    }
    if (run.npages == 0) return Status(code, which + " is empty");
    if (i > 0 && run.first_page < next) return Status(code, which + " is out of order or overlaps");
    if (run.first_page > region.npages() || run.npages > region.npages() - run.first_page) {
      return Status(code, which + " lies outside region " + Num(region.id));
    }
    next = run.first_page + run.npages;
    (run.kind == RunKind::kData ? data : zero) += run.npages;
  }
  if (data * region.page_size > kMaxBatchDataBytes) {
    return Status(code, "PAGES carries " + Num(data) + " data pages, more than 16 MiB");
  }
  if (zero > UINT32_MAX) return Status(code, "PAGES declares more than 2^32-1 zero pages");
  data_pages = static_cast<uint32_t>(data);
  zero_pages = static_cast<uint32_t>(zero);
  return Status::Ok();
}

// ---- Encoder ----

void PageBatchEncoder::CCtxDeleter::operator()(ZSTD_CCtx_s* ctx) const { ZSTD_freeCCtx(ctx); }

PageBatchEncoder::PageBatchEncoder(Compression compression,
                                   std::unique_ptr<ZSTD_CCtx_s, CCtxDeleter> cctx)
    : compression_(compression), cctx_(std::move(cctx)) {}
PageBatchEncoder::PageBatchEncoder(PageBatchEncoder&&) noexcept = default;
PageBatchEncoder& PageBatchEncoder::operator=(PageBatchEncoder&&) noexcept = default;
PageBatchEncoder::~PageBatchEncoder() = default;

Expected<PageBatchEncoder> PageBatchEncoder::Create(Compression compression, int level) {
  if (compression == Compression::kNone) return PageBatchEncoder(compression, nullptr);
  if (compression != Compression::kZstd) return InvalidArgument("unknown compression");
  if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
    return InvalidArgument("zstd level " + std::to_string(level) + " is outside " +
                           std::to_string(ZSTD_minCLevel()) + ".." + std::to_string(ZSTD_maxCLevel()));
  }
  std::unique_ptr<ZSTD_CCtx_s, CCtxDeleter> cctx(ZSTD_createCCtx());
  if (!cctx) return Status(Code::kIo, "out of memory creating a zstd context");
  size_t rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1);
  if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 0);
  if (ZSTD_isError(rc)) return InvalidArgument(std::string("zstd: ") + ZSTD_getErrorName(rc));
  return PageBatchEncoder(compression, std::move(cctx));
}

Expected<size_t> PageBatchEncoder::CompressInto(const PageBatchInput& in, uint64_t raw_bytes, Bytes& scratch,
                                                size_t runs_end) {
  // One-shot compression of the pages back to back: they are gathered first unless they already
  // are (one run of guest memory). Streaming them page by page instead makes zstd copy each into
  // its window and costs ~8 % more CPU on the benchmark image (measured, zstd 1.5.4, level 1).
  size_t bound = ZSTD_compressBound(raw_bytes);
  if (scratch.size() < runs_end + bound) scratch.resize(runs_end + bound);
  const std::byte* src = in.data.empty() ? nullptr : in.data.front().data();
  for (size_t i = 1; i < in.data.size() && src != nullptr; ++i) {
    if (in.data[i].data() != in.data[i - 1].data() + in.data[i - 1].size()) src = nullptr;
  }
  if (src == nullptr) {
    if (gather_.size() < raw_bytes) gather_.resize(raw_bytes);
    std::byte* out = gather_.data();
    for (ByteSpan page : in.data) {
      std::memcpy(out, page.data(), page.size());
      out += page.size();
    }
    src = gather_.data();
  }
  ZSTD_CCtx_reset(cctx_.get(), ZSTD_reset_session_only);
  size_t rc = ZSTD_compress2(cctx_.get(), scratch.data() + runs_end, bound, src, raw_bytes);
  if (ZSTD_isError(rc)) return Status(Code::kIo, std::string("zstd: ") + ZSTD_getErrorName(rc));
  return rc < raw_bytes ? rc : 0;
}

namespace {

void PutRuns(const std::vector<PageRun>& runs, std::byte* out) {
  for (const PageRun& run : runs) {
    StoreLe<uint64_t>(out, run.first_page);
    StoreLe<uint32_t>(out + 8, run.npages);
    out[12] = static_cast<std::byte>(run.kind);
    out[13] = out[14] = out[15] = std::byte{0};
    out += kPageRunSize;
  }
}

// Whether the DATA pages lie back to back right after `in.headroom`, with room for `runs_bytes`.
bool FitsInPlace(const PageBatchInput& in, size_t runs_bytes) {
  if (in.data.empty() || in.headroom.size() < runs_bytes) return false;
  const std::byte* next = in.headroom.data() + in.headroom.size();
  for (ByteSpan page : in.data) {
    if (page.data() != next) return false;
    next += page.size();
  }
  return true;
}

}  // namespace

Status PageBatchEncoder::EncodeInto(const PageBatchInput& in, const Region& region, Bytes& public_part,
                                    Bytes& scratch, MutableByteSpan& sealed, bool try_compress,
                                    bool* defer_copy) {
  if (defer_copy != nullptr) *defer_copy = false;
  if (in.region_id != region.id) return InvalidArgument("PAGES region id does not match region");
  uint32_t data_pages = 0;
  uint32_t zero_pages = 0;
  GMEM_RETURN_IF_ERROR(ValidatePageRuns(in.runs, region, Code::kInvalidArgument, data_pages, zero_pages));
  if (in.data.size() != data_pages) {
    return InvalidArgument("PAGES has " + Num(in.data.size()) + " data spans for " + Num(data_pages) + " data pages");
  }
  for (ByteSpan page : in.data) {
    if (page.size() != region.page_size) return InvalidArgument("PAGES data span is not one page");
  }
  uint64_t raw_bytes = uint64_t{data_pages} * region.page_size;
  size_t runs_bytes = in.runs.size() * kPageRunSize;

  size_t frame = 0;
  if (compression_ == Compression::kZstd && raw_bytes != 0 && try_compress) {
    GMEM_ASSIGN_OR_RETURN(frame, CompressInto(in, raw_bytes, scratch, runs_bytes));
  }
  if (frame != 0) {
    PutRuns(in.runs, scratch.data());
    sealed = MutableByteSpan(scratch.data(), runs_bytes + frame);
  } else if (FitsInPlace(in, runs_bytes)) {
    // SAFETY: the caller owns headroom and the pages after it as one buffer (PageBatchInput).
    std::byte* start = in.headroom.data() + in.headroom.size() - runs_bytes;
    PutRuns(in.runs, start);
    sealed = MutableByteSpan(start, runs_bytes + raw_bytes);
  } else {
    if (scratch.size() < runs_bytes + raw_bytes) scratch.resize(runs_bytes + raw_bytes);
    PutRuns(in.runs, scratch.data());
    if (defer_copy != nullptr) {
      *defer_copy = true;
    } else {
      // SAFETY: each span is exactly page_size bytes (checked above); scratch holds them all.
      std::byte* dst = scratch.data() + runs_bytes;
      for (ByteSpan page : in.data) {
        std::memcpy(dst, page.data(), page.size());
        dst += page.size();
      }
    }
    sealed = MutableByteSpan(scratch.data(), runs_bytes + raw_bytes);
  }

  last_was_zstd_ = frame != 0;
  public_part.clear();
  ByteWriter p(public_part);
  p.U32(in.region_id);
  p.U32(region.page_size);
  p.U64(in.generation);
  p.U8(static_cast<uint8_t>(frame != 0 ? PageEncoding::kZstd : PageEncoding::kRaw));
  p.Zeros(3);
  p.U32(static_cast<uint32_t>(in.runs.size()));
  p.U32(data_pages);
  p.U32(zero_pages);
  return Status::Ok();
}

Status PageBatchEncoder::Encode(const PageBatchInput& in, const Region& region, Bytes& public_part,
                                Bytes& sealed_part) {
  Bytes scratch;
  MutableByteSpan sealed;
  GMEM_RETURN_IF_ERROR(EncodeInto(in, region, public_part, scratch, sealed));
  sealed_part.assign(sealed.begin(), sealed.end());
  return Status::Ok();
}

// ---- Decoder ----

Expected<PagesSummary> DecodePagesSummary(ByteSpan public_part) {
  ByteReader p(public_part);
  PagesSummary s;
  s.region_id = p.U32("region_id");
  s.page_size = p.U32("page_size");
  s.generation = p.U64("generation");
  s.encoding = static_cast<PageEncoding>(p.U8("encoding"));
  p.ZerosOk(3, "PAGES reserved");
  s.run_count = p.U32("run_count");
  s.data_pages = p.U32("data_pages");
  s.zero_pages = p.U32("zero_pages");
  GMEM_RETURN_IF_ERROR(p.ExpectEnd("PAGES summary"));
  if (s.encoding != PageEncoding::kRaw && s.encoding != PageEncoding::kZstd) {
    return CorruptError("PAGES has unknown encoding " + Num(static_cast<uint8_t>(s.encoding)));
  }
  if (s.run_count == 0 || s.run_count > kMaxPageRuns) {
    return CorruptError("PAGES run_count " + Num(s.run_count) + " is outside 1.." + Num(kMaxPageRuns));
  }
  return s;
}

void PageBatchDecoder::DCtxDeleter::operator()(ZSTD_DCtx_s* ctx) const { ZSTD_freeDCtx(ctx); }

PageBatchDecoder::PageBatchDecoder(std::unique_ptr<ZSTD_DCtx_s, DCtxDeleter> dctx)
    : dctx_(std::move(dctx)) {}
PageBatchDecoder::PageBatchDecoder(PageBatchDecoder&&) noexcept = default;
PageBatchDecoder& PageBatchDecoder::operator=(PageBatchDecoder&&) noexcept = default;
PageBatchDecoder::~PageBatchDecoder() = default;

Expected<PageBatchDecoder> PageBatchDecoder::Create() {
  std::unique_ptr<ZSTD_DCtx_s, DCtxDeleter> dctx(ZSTD_createDCtx());
  if (!dctx) return Status(Code::kIo, "out of memory creating a zstd context");
  return PageBatchDecoder(std::move(dctx));
}

Status PageBatchDecoder::Decode(ByteSpan public_part, ByteSpan sealed_part,
                                const LayoutRecord& layout, Compression allowed, PagesRecord& out, bool defer_zstd) {
  out.zstd_frame = {};
  GMEM_ASSIGN_OR_RETURN(PagesSummary summary, DecodePagesSummary(public_part));
  out.region_id = summary.region_id;
  out.page_size = summary.page_size;
  out.generation = summary.generation;
  out.encoding = summary.encoding;
  out.data_pages = summary.data_pages;
  out.zero_pages = summary.zero_pages;
  uint32_t run_count = summary.run_count;

  const Region* region = layout.Find(out.region_id);
  if (region == nullptr) return CorruptError("region " + Num(out.region_id) + " is not in the layout");
  if (out.page_size != region->page_size) {
    return CorruptError("PAGES page size " + Num(out.page_size) + " differs from region's " + Num(region->page_size));
  }
  if (out.encoding == PageEncoding::kZstd && allowed != Compression::kZstd) {
    return CorruptError("PAGES is zstd-compressed but the header says no compression");
  }
  if (uint64_t{run_count} * kPageRunSize > sealed_part.size()) {
    return CorruptError("PAGES run_count " + Num(run_count) + " does not fit the record");
  }

  ByteReader s(sealed_part);
  out.runs.resize(run_count);
  for (PageRun& run : out.runs) {
    run.first_page = s.U64("first_page");
    run.npages = s.U32("npages");
    run.kind = static_cast<RunKind>(s.U8("kind"));
    s.ZerosOk(3, "page run reserved");
  }
  if (!s.ok()) return s.status();
  uint32_t data_pages = 0;
  uint32_t zero_pages = 0;
  GMEM_RETURN_IF_ERROR(ValidatePageRuns(out.runs, *region, Code::kCorrupt, data_pages, zero_pages));
  if (data_pages != out.data_pages || zero_pages != out.zero_pages) {
    return CorruptError("PAGES runs hold " + Num(data_pages) + " data and " + Num(zero_pages) +
                        " zero pages, summary says " + Num(out.data_pages) + " and " + Num(out.zero_pages));
  }

  uint64_t raw_bytes = uint64_t{data_pages} * region->page_size;
  ByteSpan payload = sealed_part.subspan(s.offset());
  out.data = {};
  if (out.encoding == PageEncoding::kRaw) {
    if (payload.size() != raw_bytes) {
      return CorruptError("PAGES raw data is " + Num(payload.size()) + " bytes, expected " + Num(raw_bytes));
    }
    out.data = payload;  // no copy: a view of the record
    return Status::Ok();
  }
  // zstd: the frame must declare exactly the expected size and fill the payload exactly.
  if (raw_bytes == 0) return CorruptError("PAGES is zstd-compressed but carries no data pages");
  unsigned long long declared = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN) {
    return CorruptError("PAGES zstd frame header is invalid");
  }
  if (declared != raw_bytes) {
    return CorruptError("PAGES zstd frame declares " + Num(declared) + " bytes, expected " + Num(raw_bytes));
  }
  size_t frame_size = ZSTD_findFrameCompressedSize(payload.data(), payload.size());
  if (ZSTD_isError(frame_size) || frame_size != payload.size()) {
    return CorruptError("PAGES zstd frame does not fill the record exactly");
  }
  if (defer_zstd) {
    out.zstd_frame = payload;
    return Status::Ok();
  }
  return Decompress(payload, out);
}

Status PageBatchDecoder::Decompress(ByteSpan frame, PagesRecord& out) {
  uint64_t raw_bytes = uint64_t{out.data_pages} * out.page_size;
  out.data = {};
  if (out.storage.size() < raw_bytes) out.storage.resize(raw_bytes);
  size_t got = ZSTD_decompressDCtx(dctx_.get(), out.storage.data(), raw_bytes, frame.data(), frame.size());
  if (ZSTD_isError(got)) return CorruptError(std::string("PAGES zstd frame: ") + ZSTD_getErrorName(got));
  if (got != raw_bytes) return CorruptError("PAGES zstd frame decoded to " + Num(got) + " bytes, expected " + Num(raw_bytes));
  out.data = ByteSpan(out.storage.data(), raw_bytes);
  return Status::Ok();
}

}  // namespace gmem::format
