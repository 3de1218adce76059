#include "snapshot/image_contents.h"

#include <array>
#include <map>
#include <memory>

#include "base/xxh3.h"
#include "format/image_reader.h"
#include "migrate/incremental.h"
#include "snapshot/image_errors.h"
#include "transport/direct_file.h"

namespace gmem::snapshot {
namespace {

struct StateDeleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};
using HashState = std::unique_ptr<XXH3_state_t, StateDeleter>;

// Seeds keep the kinds of hashed things apart: a private blob never equals a shared page.
constexpr XXH64_hash_t kPrivateBlobSeed = 0x70726976;  // "priv"

constexpr uint64_t kTableBytesPerPage = sizeof(uint64_t) + sizeof(uint32_t) + sizeof(format::PageAttr);

uint32_t Generation32(uint64_t generation) { return static_cast<uint32_t>(std::min<uint64_t>(generation, UINT32_MAX)); }

// Applies decoded records to the tables, as a restore would apply them to memory: the images of
// a chain one after the other, oldest first.
class ContentsBuilder {
 public:
  explicit ContentsBuilder(ImageContents& out) : out_(out), state_(XXH3_createState()) {}

  // Before each image of a chain. Each image orders its own passes from 1, so the newest image
  // wins as a whole (as on restore); its STATE replaces the previous image's.
  void BeginImage() {
    for (RegionContents& rc : out_.regions) {
      std::fill(rc.generations.begin(), rc.generations.end(), 0);
      rc.attrs_generation = 0;
    }
    XXH3_64bits_reset(state_.get());
    have_state_ = false;
    out_.vmm_digest.reset();
  }
  // After each image.
  void EndImage() { out_.state_hash = have_state_ ? std::optional(XXH3_64bits_digest(state_.get())) : std::nullopt; }

  Status OnLayout(const format::LayoutRecord& layout, uint64_t max_table_bytes) {
    if (layout_.has_value()) {
      if (!(layout == *layout_)) return CorruptError("the increment's memory layout differs from its parent's");
      return Status::Ok();
    }
    layout_ = layout;
    uint64_t pages = 0;
    for (const format::Region& r : layout.regions) pages += r.npages();
    if (pages > max_table_bytes / kTableBytesPerPage) {
      return Unsupported("the image describes " + std::to_string(pages) + " pages: comparing them needs more than " +
                         std::to_string(max_table_bytes >> 20) + " MiB of tables");
    }
    for (const format::Region& r : layout.regions) {
      RegionContents rc;
      rc.region = r;
      rc.hashes.assign(r.npages(), ZeroPageHash(r.page_size));
      rc.generations.assign(r.npages(), 0);
      rc.attrs.assign(r.npages(), format::PageAttr::kShared);
      out_.regions.push_back(std::move(rc));
    }
    return Status::Ok();
  }

  // The reader checked runs and region ids against the layout (FORMAT.md §9), so the indexing
  // below stays inside the tables.
  void OnAttrs(const format::AttrsRecord& record) {
    RegionContents& rc = Find(record.region_id);
    if (record.generation < rc.attrs_generation) return;
    rc.attrs_generation = record.generation;
    for (const format::AttrRun& run : record.runs) {
      std::fill_n(rc.attrs.begin() + static_cast<ptrdiff_t>(run.first_page), run.npages, run.attr);
    }
  }

  void OnPages(const format::PagesRecord& record) {
    RegionContents& rc = Find(record.region_id);
    uint32_t generation = Generation32(record.generation);
    uint64_t zero = ZeroPageHash(rc.region.page_size);
    const std::byte* data = record.data.data();
    for (const format::PageRun& run : record.runs) {
      for (uint64_t p = run.first_page; p < run.first_page + run.npages; ++p) {
        bool is_data = run.kind == format::RunKind::kData;
        if (generation >= rc.generations[p]) {
          rc.generations[p] = generation;
          rc.hashes[p] = is_data ? XXH3_64bits(data, rc.region.page_size) : zero;
        }
        if (is_data) data += rc.region.page_size;
      }
    }
  }

  void OnPrivate(const format::PrivateRecord& record) {
    RegionContents& rc = Find(record.region_id);
    uint32_t generation = Generation32(record.generation);
    for (const format::PrivateBlob& blob : record.blobs) {
      if (generation < rc.generations[blob.page]) continue;
      rc.generations[blob.page] = generation;
      rc.hashes[blob.page] = XXH3_64bits_withSeed(blob.blob.data(), blob.blob.size(), kPrivateBlobSeed);
    }
  }

  void OnState(const format::StateRecord& record) {
    XXH3_state_t* state = state_.get();
    for (const format::StateEntry& entry : record.entries) {
      if (entry.name == "vmm-digest") {
        out_.vmm_digest = std::string(reinterpret_cast<const char*>(entry.blob.data()), entry.blob.size());
        continue;
      }
      // Like the digest, the page-hash table follows from memory (and only some images have it).
      if (entry.name.starts_with(migrate::kPageHashesPrefix)) continue;
      std::array<std::byte, 16> lengths{};
      StoreLe<uint64_t>(lengths.data(), entry.name.size());
      StoreLe<uint64_t>(lengths.data() + 8, entry.blob.size());
      XXH3_64bits_update(state, lengths.data(), lengths.size());
      XXH3_64bits_update(state, entry.name.data(), entry.name.size());
      XXH3_64bits_update(state, entry.blob.data(), entry.blob.size());
      have_state_ = true;
    }
  }

 private:
  RegionContents& Find(uint32_t region_id) {
    for (RegionContents& rc : out_.regions) {
      if (rc.region.id == region_id) return rc;
    }
    return out_.regions.front();  // unreachable: the reader rejects unknown region ids
  }

  ImageContents& out_;
  std::optional<format::LayoutRecord> layout_;
  HashState state_;
  bool have_state_ = false;
};

}  // namespace

uint64_t ZeroPageHash(uint32_t page_size) {
  static constexpr std::array<std::byte, 4096> kZeros{};
  if (page_size == kZeros.size()) return XXH3_64bits(kZeros.data(), kZeros.size());
  HashState state(XXH3_createState());
  XXH3_64bits_reset(state.get());
  for (uint64_t done = 0; done < page_size; done += kZeros.size()) {
    XXH3_64bits_update(state.get(), kZeros.data(), std::min<uint64_t>(kZeros.size(), page_size - done));
  }
  return XXH3_64bits_digest(state.get());
}

namespace {

// Reads one whole image into `builder`; returns its END. `chained`: the image may have a parent
// (the caller checks the link).
Expected<format::EndRecord> ApplyImage(ByteSource& source, const format::KeySource& key,
                                       const ContentsOptions& options, bool chained, ImageContents& out,
                                       ContentsBuilder& builder) {
  format::ReaderOptions reader_options;
  reader_options.allow_insecure = options.allow_insecure;
  auto opened = format::ImageReader::Open(source, key, reader_options);
  if (!opened.ok()) return AsFileError(opened.status());
  format::ImageReader reader = std::move(opened).value();
  out.header = reader.header();
  if (out.header.has_parent() && !chained) {
    return Unsupported("an incremental image (parent " + ToHex(out.header.parent_stream_id) +
                       ") does not describe all of memory by itself: read it with its parent chain");
  }
  if (out.header.channel_count != 1) {
    return Unsupported("the image has " + std::to_string(out.header.channel_count) + " channels: a snapshot file has one");
  }
  builder.BeginImage();
  format::EndRecord end;
  while (!reader.finished()) {
    auto next = reader.Next();
    if (!next.ok()) return AsFileError(next.status());
    const format::Record& record = **next;
    ++out.records;
    if (const auto* layout = std::get_if<format::LayoutRecord>(&record.body)) {
      GMEM_RETURN_IF_ERROR(builder.OnLayout(*layout, options.max_table_bytes));
    } else if (const auto* attrs = std::get_if<format::AttrsRecord>(&record.body)) {
      builder.OnAttrs(*attrs);
    } else if (const auto* pages = std::get_if<format::PagesRecord>(&record.body)) {
      builder.OnPages(*pages);
    } else if (const auto* priv = std::get_if<format::PrivateRecord>(&record.body)) {
      builder.OnPrivate(*priv);
    } else if (const auto* st = std::get_if<format::StateRecord>(&record.body)) {
      builder.OnState(*st);
    } else if (const auto* e = std::get_if<format::EndRecord>(&record.body)) {
      end = *e;
    }
  }
  builder.EndImage();
  return end;
}

}  // namespace

Expected<ImageContents> ReadImageContents(ByteSource& source, const format::KeySource& key,
                                          const ContentsOptions& options) {
  ImageContents out;
  ContentsBuilder builder(out);
  GMEM_RETURN_IF_ERROR(ApplyImage(source, key, options, /*chained=*/false, out, builder).status());
  return out;
}

Expected<ImageContents> ReadChainContents(const std::vector<ChainImage>& chain, const format::KeySource& key,
                                          const ContentsOptions& options) {
  if (chain.empty()) return InvalidArgument("an empty chain");
  ImageContents out;
  ContentsBuilder builder(out);
  format::StreamId previous_id{};
  format::Digest previous_end{};
  for (size_t i = 0; i < chain.size(); ++i) {
    const std::string& file = chain[i].path;
    // "'c.img': ..." or "'c.img': parent 'a.img': ...": the image asked for comes first.
    auto context = [&](const Status& st) {
      std::string last = "'" + chain.back().path + "'";
      return st.WithContext(i + 1 == chain.size() ? last : last + ": parent '" + file + "'");
    };
    auto input = transport::SequentialFile::Open(file);
    if (!input.ok()) return input.status();
    auto end = ApplyImage(**input, key, options, /*chained=*/i > 0, out, builder);
    if (!end.ok()) return context(end.status());
    if (i > 0) {
      GMEM_RETURN_IF_ERROR(CheckLink(out.header, file, chain[i - 1].path, previous_id, previous_end));
    }
    previous_id = out.header.stream_id;
    previous_end = end->digest;
  }
  return out;
}

}  // namespace gmem::snapshot
