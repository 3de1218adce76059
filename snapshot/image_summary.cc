#include "snapshot/image_summary.h"

#include "format/image_reader.h"
#include "format/image_scanner.h"
#include "format/page_batch.h"
#include "snapshot/image_errors.h"

namespace gmem::snapshot {
namespace {

void Count(ImageSummary& s, format::RecordType type) {
  ++s.records_by_type[static_cast<size_t>(type)];
  ++s.records;
}

Expected<ImageSummary> SummarizeImpl(ByteSource& source) {
  GMEM_ASSIGN_OR_RETURN(format::ImageScanner scanner, format::ImageScanner::Open(source));
  ImageSummary s;
  s.header = scanner.header();
  s.image_bytes = format::kHeaderSize;
  while (true) {
    GMEM_ASSIGN_OR_RETURN(std::optional<format::ScannedRecord> rec, scanner.Next());
    if (!rec) break;
    Count(s, rec->frame.type);
    s.image_bytes += format::kFrameSize + rec->frame.public_length + rec->frame.sealed_length + format::kTagSize;
    std::string where = "record " + std::to_string(rec->frame.sequence);
    switch (rec->frame.type) {
      case format::RecordType::kLayout: {
        auto layout = format::DecodeLayout(rec->public_part);
        if (!layout.ok()) return layout.status().WithContext(where + " (LAYOUT)");
        s.layout = std::move(layout).value();
        break;
      }
      case format::RecordType::kPages: {
        auto pages = format::DecodePagesSummary(rec->public_part);
        if (!pages.ok()) return pages.status().WithContext(where + " (PAGES)");
        s.data_pages += pages->data_pages;
        s.zero_pages += pages->zero_pages;
        s.raw_bytes += uint64_t{pages->data_pages} * pages->page_size;
        s.stored_bytes += rec->frame.sealed_length;
        break;
      }
      case format::RecordType::kPrivate: {
        if (rec->public_part.size() >= 8) s.private_pages += LoadLe<uint32_t>(rec->public_part.data() + 4);
        break;
      }
      case format::RecordType::kEnd: {
        auto end = format::DecodeEnd(rec->public_part);
        if (!end.ok()) return end.status().WithContext(where + " (END)");
        s.end = *end;
        break;
      }
      default:
        break;
    }
  }
  return s;
}

Expected<ImageSummary> VerifyImpl(ByteSource& source, const format::KeySource& key, bool allow_insecure) {
  format::ReaderOptions options;
  options.allow_insecure = allow_insecure;
  GMEM_ASSIGN_OR_RETURN(format::ImageReader reader, format::ImageReader::Open(source, key, options));
  ImageSummary s;
  s.header = reader.header();
  while (!reader.finished()) {
    GMEM_ASSIGN_OR_RETURN(const format::Record* rec, reader.Next());
    Count(s, rec->type);
    if (const auto* layout = std::get_if<format::LayoutRecord>(&rec->body)) s.layout = *layout;
    if (const auto* pages = std::get_if<format::PagesRecord>(&rec->body)) {
      s.data_pages += pages->data_pages;
      s.zero_pages += pages->zero_pages;
      s.raw_bytes += pages->data.size();
    }
    if (const auto* priv = std::get_if<format::PrivateRecord>(&rec->body)) s.private_pages += priv->blobs.size();
    if (const auto* end = std::get_if<format::EndRecord>(&rec->body)) s.end = *end;
  }
  s.image_bytes = reader.offset();
  return s;
}

}  // namespace

Expected<ImageSummary> Summarize(ByteSource& source) {
  auto s = SummarizeImpl(source);
  if (!s.ok()) return AsFileError(s.status());
  return s;
}

Expected<ImageSummary> Verify(ByteSource& source, const format::KeySource& key, bool allow_insecure) {
  auto s = VerifyImpl(source, key, allow_insecure);
  if (!s.ok()) return AsFileError(s.status());
  return s;
}

}  // namespace gmem::snapshot
