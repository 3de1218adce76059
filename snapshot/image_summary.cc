#include "snapshot/image_summary.h"

#include "format/image_reader.h"
#include "format/image_scanner.h"
#include "format/page_batch.h"
#include "migrate/incremental.h"
#include "snapshot/image_errors.h"
#include "transport/direct_file.h"

namespace gmem::snapshot {
namespace {

void Count(ImageSummary& s, format::RecordType type) {
  ++s.records_by_type[static_cast<size_t>(type)];
  ++s.records;
}

// Pass 1 of a file stream handles every page: what it neither stored nor counted as zero was
// equal to the parent's.
void NotePass(ImageSummary& s, const format::PassRecord& pass) {
  if (pass.pass != 1 || !s.header.has_parent() || s.unchanged_pages.has_value()) return;
  uint64_t handled = pass.data_pages + pass.zero_pages + pass.private_pages;
  s.unchanged_pages = pass.dirty_pages > handled ? pass.dirty_pages - handled : 0;
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
      case format::RecordType::kPass: {
        auto pass = format::DecodePass(rec->public_part);
        if (!pass.ok()) return pass.status().WithContext(where + " (PASS)");
        NotePass(s, *pass);
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
  s.page_hashes = false;
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
    if (const auto* pass = std::get_if<format::PassRecord>(&rec->body)) NotePass(s, *pass);
    if (const auto* state = std::get_if<format::StateRecord>(&rec->body)) {
      for (const format::StateEntry& entry : state->entries) {
        if (entry.name.starts_with(migrate::kPageHashesPrefix)) s.page_hashes = true;
      }
    }
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

Expected<std::vector<VerifiedImage>> VerifyChain(const std::string& path, const std::string& parent_dir,
                                                 const format::KeySource& key, bool allow_insecure) {
  GMEM_ASSIGN_OR_RETURN(std::vector<ChainImage> chain, FindChain(path, parent_dir));
  std::vector<VerifiedImage> out;
  for (size_t i = 0; i < chain.size(); ++i) {
    const std::string& file = chain[i].path;
    bool last = i + 1 == chain.size();
    // The last image is the one the user named: the tool's message names it already.
    auto context = [&](Status st) { return last ? st : st.WithContext("parent '" + file + "'"); };
    auto input = transport::SequentialFile::Open(file);
    if (!input.ok()) return context(input.status());
    auto summary = Verify(**input, key, allow_insecure);
    if (!summary.ok()) return context(summary.status());
    if (i > 0) {
      const VerifiedImage& parent = out.back();
      // A verified image has its END (the reader requires it) and its LAYOUT (the grammar does).
      GMEM_RETURN_IF_ERROR(CheckLink(summary->header, file, parent.path, parent.summary.header.stream_id,
                                     parent.summary.end->digest));
      if (!(summary->layout == parent.summary.layout)) {
        return CorruptError("'" + file + "' has another memory layout than its parent '" + parent.path + "'");
      }
    }
    out.push_back({file, std::move(summary).value()});
  }
  return out;
}

}  // namespace gmem::snapshot
