#include "migrate/incremental.h"

#include <optional>

#include "base/bytes.h"
#include "format/image_reader.h"
#include "transport/direct_file.h"

namespace gmem::migrate {

namespace {

constexpr size_t kHashBytes = 16;

// "page-hashes/<region>/<index>" → (region, index).
bool ParseName(const std::string& name, uint32_t& region, uint64_t& index) {
  if (!name.starts_with(kPageHashesPrefix)) return false;
  std::string rest = name.substr(sizeof(kPageHashesPrefix) - 1);
  size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size()) return false;
  try {
    size_t used = 0;
    unsigned long r = std::stoul(rest.substr(0, slash), &used);
    if (used != slash || r > UINT32_MAX) return false;
    unsigned long long i = std::stoull(rest.substr(slash + 1), &used);
    if (used != rest.size() - slash - 1) return false;
    region = static_cast<uint32_t>(r);
    index = i;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::vector<format::StateRecord> EncodePageHashes(uint32_t region_id, std::span<const memory::PageHash> hashes) {
  std::vector<format::StateRecord> out;
  for (uint64_t first = 0, index = 0; first < hashes.size(); first += kPageHashesPerEntry, ++index) {
    uint64_t count = std::min<uint64_t>(kPageHashesPerEntry, hashes.size() - first);
    Bytes blob;
    blob.reserve(count * kHashBytes);
    ByteWriter w(blob);
    for (uint64_t p = first; p < first + count; ++p) {
      w.U64(hashes[p].low);
      w.U64(hashes[p].high);
    }
    format::StateRecord record;
    record.entries.push_back(
        {kPageHashesPrefix + std::to_string(region_id) + "/" + std::to_string(index), std::move(blob)});
    out.push_back(std::move(record));
  }
  return out;
}

PageHashTable::PageHashTable(const format::LayoutRecord& layout) : layout_(layout) {
  for (const format::Region& r : layout_.regions) {
    hashes_.emplace_back(r.npages());
    have_.emplace_back((r.npages() + kPageHashesPerEntry - 1) / kPageHashesPerEntry, false);
  }
}

Status PageHashTable::Add(const format::StateEntry& entry, bool& taken) {
  taken = false;
  if (!entry.name.starts_with(kPageHashesPrefix)) return Status::Ok();
  taken = true;
  uint32_t region = 0;
  uint64_t index = 0;
  if (!ParseName(entry.name, region, index)) return CorruptError("malformed page-hash entry '" + entry.name + "'");
  size_t i = 0;
  while (i < layout_.regions.size() && layout_.regions[i].id != region) ++i;
  if (i == layout_.regions.size()) return CorruptError("page hashes for unknown region " + std::to_string(region));
  if (index >= have_[i].size() || have_[i][index]) {
    return CorruptError("page-hash entry '" + entry.name + "' out of range or repeated");
  }
  uint64_t first = index * kPageHashesPerEntry;
  uint64_t count = std::min<uint64_t>(kPageHashesPerEntry, hashes_[i].size() - first);
  if (entry.blob.size() != count * kHashBytes) {
    return CorruptError("page-hash entry '" + entry.name + "' has " + std::to_string(entry.blob.size()) +
                        " bytes, expected " + std::to_string(count * kHashBytes));
  }
  ByteReader r(entry.blob);
  for (uint64_t p = first; p < first + count; ++p) {
    hashes_[i][p].low = r.U64("page hash");
    hashes_[i][p].high = r.U64("page hash");
  }
  have_[i][index] = true;
  any_ = true;
  return Status::Ok();
}

Expected<std::vector<std::vector<memory::PageHash>>> PageHashTable::Finish() && {
  if (!any_) {
    return Status(Code::kIncompatible, "the image carries no page-hash table (it was not saved for increments)");
  }
  for (size_t i = 0; i < have_.size(); ++i) {
    for (size_t k = 0; k < have_[i].size(); ++k) {
      if (!have_[i][k]) {
        return CorruptError("page hashes of region " + std::to_string(layout_.regions[i].id) + " are incomplete");
      }
    }
  }
  return std::move(hashes_);
}

Expected<IncrementalBase> LoadIncrementalBase(const std::string& path, const MigrationKey& key) {
  GMEM_ASSIGN_OR_RETURN(std::unique_ptr<transport::SequentialFile> input, transport::SequentialFile::Open(path));
  transport::SequentialFile& file = *input;
  format::ReaderOptions options;
  options.allow_insecure = key.insecure;
  options.expect_eof_after_end = true;
  GMEM_ASSIGN_OR_RETURN(format::ImageReader reader, format::ImageReader::Open(file, StreamKeySource(key), options));
  if (reader.header().channel_count != 1) return InvalidArgument("a parent image has one channel");
  IncrementalBase base;
  base.parent_stream_id = reader.header().stream_id;
  std::optional<PageHashTable> table;
  for (;;) {
    GMEM_ASSIGN_OR_RETURN(const format::Record* record, reader.Next());
    if (const auto* layout = std::get_if<format::LayoutRecord>(&record->body)) {
      base.layout = *layout;
      table.emplace(base.layout);
    } else if (const auto* state = std::get_if<format::StateRecord>(&record->body)) {
      if (!table.has_value()) return CorruptError("STATE before LAYOUT");
      for (const format::StateEntry& entry : state->entries) {
        bool taken = false;
        GMEM_RETURN_IF_ERROR(table->Add(entry, taken));
      }
    } else if (const auto* end = std::get_if<format::EndRecord>(&record->body)) {
      base.parent_digest = end->digest;
      break;
    }
  }
  if (!table.has_value()) return CorruptError("the image has no LAYOUT");
  GMEM_ASSIGN_OR_RETURN(base.hashes, std::move(*table).Finish());
  return base;
}

}  // namespace gmem::migrate
