#include "snapshot/image_chain.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <optional>

#include "base/unique_fd.h"
#include "format/record_seal.h"
#include "format/records.h"
#include "snapshot/atomic_file.h"

namespace gmem::snapshot {
namespace {

std::string Quote(const std::string& path) { return "'" + path + "'"; }

std::string DirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// "dir/name", or "name" in the current directory (as the user most likely named the child).
std::string Join(const std::string& dir, const std::string& name) {
  return dir == "." ? name : (std::filesystem::path(dir) / name).string();
}

// The images of a directory, by stream id; each list sorted by name.
using ImagesById = std::map<format::StreamId, std::vector<ChainImage>>;

Expected<ImagesById> ScanDirectory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return Status(Code::kIo, "cannot read the directory " + Quote(dir) + ": " + ec.message());
  std::vector<std::string> names;
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    // A temporary of an atomic save is never an image to restore from, complete or not.
    if (IsTemporaryName(name)) continue;
    std::error_code type_ec;
    if (!entry.is_regular_file(type_ec)) continue;  // follows symlinks
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  ImagesById images;
  for (const std::string& name : names) {
    std::string path = Join(dir, name);
    auto header = ReadImageHeader(path);
    if (!header.ok()) continue;  // not an image (or unreadable): not a candidate
    images[header->stream_id].push_back({path, *header});
  }
  return images;
}

// The digest in the END record at the end of the file at `path`, read without a key; nullopt
// when the file does not end with a well-formed END (truncated, damaged, multi-channel ...).
std::optional<format::Digest> TailEndDigest(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) return std::nullopt;
  constexpr size_t kEndRecordBytes = format::kFrameSize + format::kEndSize + format::kTagSize;
  if (static_cast<uint64_t>(st.st_size) < format::kHeaderSize + kEndRecordBytes) return std::nullopt;
  std::array<std::byte, kEndRecordBytes> bytes{};
  if (::pread(fd.get(), bytes.data(), bytes.size(), st.st_size - static_cast<off_t>(bytes.size())) !=
      static_cast<ssize_t>(bytes.size())) {
    return std::nullopt;
  }
  auto frame = format::DecodeFrame(ByteSpan(bytes).first(format::kFrameSize));
  if (!frame.ok() || frame->type != format::RecordType::kEnd || frame->public_length != format::kEndSize ||
      frame->sealed_length != 0) {
    return std::nullopt;
  }
  auto end = format::DecodeEnd(ByteSpan(bytes).subspan(format::kFrameSize, format::kEndSize));
  if (!end.ok()) return std::nullopt;
  return end->digest;
}

// The parent of `child` among `images`, or nullopt.
std::optional<ChainImage> PickParent(const ImagesById& images, const format::ImageHeader& child) {
  auto it = images.find(child.parent_stream_id);
  if (it == images.end()) return std::nullopt;
  const std::vector<ChainImage>& candidates = it->second;
  if (candidates.size() > 1) {
    for (const ChainImage& c : candidates) {
      if (TailEndDigest(c.path) == child.parent_digest) return c;
    }
  }
  return candidates.front();
}

}  // namespace

Expected<format::ImageHeader> ReadImageHeader(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "cannot open " + Quote(path));
  std::array<std::byte, format::kHeaderSize> bytes{};
  ssize_t n = ::pread(fd.get(), bytes.data(), bytes.size(), 0);
  if (n < 0) return ErrnoStatus(Code::kIo, "cannot read " + Quote(path));
  if (n == 0) return CorruptError(Quote(path) + ": empty input: not a gmemkit image");
  if (static_cast<size_t>(n) < bytes.size()) return CorruptError(Quote(path) + ": truncated: the file ends inside the header");
  auto header = format::DecodeHeader(bytes);
  if (!header.ok()) return header.status().WithContext(Quote(path));
  return header;
}

Expected<std::vector<ChainImage>> FindChain(ChainImage last, const std::string& parent_dir) {
  std::vector<ChainImage> chain;
  chain.push_back(std::move(last));
  if (!chain.back().header.has_parent()) return chain;
  std::string dir = parent_dir.empty() ? DirectoryOf(chain.back().path) : parent_dir;
  GMEM_ASSIGN_OR_RETURN(ImagesById images, ScanDirectory(dir));
  while (chain.back().header.has_parent()) {
    const ChainImage& child = chain.back();
    std::string parent_id = ToHex(child.header.parent_stream_id);
    std::optional<ChainImage> parent = PickParent(images, child.header);
    if (!parent.has_value()) {
      return IncompatibleError(Quote(child.path) + " is an increment of stream " + parent_id + ", and no image in " +
                               Quote(dir) + " has that stream id: an increment is restored, verified and " +
                               "compared together with its parent chain (keep the chain in one directory, or name it " +
                               "with --parent-dir)");
    }
    for (const ChainImage& seen : chain) {
      if (seen.header.stream_id == parent->header.stream_id) {
        return CorruptError("the parent chain of " + Quote(chain.front().path) + " loops: " + Quote(parent->path) +
                            " (stream " + parent_id + ") is already in it");
      }
    }
    if (chain.size() == kMaxChainLength) {
      return CorruptError("the parent chain of " + Quote(chain.front().path) + " is longer than " +
                          std::to_string(kMaxChainLength) + " images");
    }
    chain.push_back(std::move(*parent));
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

Expected<std::vector<ChainImage>> FindChain(const std::string& path, const std::string& parent_dir) {
  GMEM_ASSIGN_OR_RETURN(format::ImageHeader header, ReadImageHeader(path));
  return FindChain(ChainImage{path, header}, parent_dir);
}

Status CheckLink(const format::ImageHeader& child, const std::string& child_path, const std::string& parent_path,
                 const format::StreamId& parent_stream_id, const format::Digest& parent_end_digest) {
  std::string what = Quote(child_path) + " is not the increment of " + Quote(parent_path) + ": ";
  if (!child.has_parent()) return CorruptError(what + "it has no parent");
  if (child.parent_stream_id != parent_stream_id) {
    return CorruptError(what + "it names parent stream " + ToHex(child.parent_stream_id) + ", that image is stream " +
                        ToHex(parent_stream_id));
  }
  if (child.parent_digest != parent_end_digest) {
    return CorruptError(what + "that image has the parent's stream id but not its contents (END digest " +
                        ToHex(parent_end_digest) + ", the child names " + ToHex(child.parent_digest) + ")");
  }
  return Status::Ok();
}

}  // namespace gmem::snapshot
