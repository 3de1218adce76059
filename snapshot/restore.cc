#include "snapshot/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>

#include "base/unique_fd.h"
#include "format/keys.h"
#include "format/stream_keys.h"
#include "migrate/target.h"
#include "snapshot/image_chain.h"
#include "snapshot/image_errors.h"

namespace gmem::snapshot {
namespace {

Status CheckCancel(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load()) return Status(Code::kCancelled, "cancelled");
  return Status::Ok();
}

// An image of the chain, open and checked.
struct OpenImage {
  UniqueFd fd;
  format::ImageHeader header;  // authenticated with the key
  uint64_t size_bytes = 0;
};

// What can be checked without the body and without a VMM: the file is a regular file, its header
// opens with the key (a wrong key is kAuth, an unencrypted image without --insecure-no-encryption
// kIncompatible), and the image is one this build restores.
Expected<OpenImage> OpenAndCheck(const std::string& path, const migrate::MigrationKey& key) {
  OpenImage image;
  image.fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!image.fd.valid()) return ErrnoStatus(Code::kIo, "cannot open '" + path + "'");
  struct stat st {};
  if (::fstat(image.fd.get(), &st) != 0) return ErrnoStatus(Code::kIo, "cannot stat '" + path + "'");
  if (!S_ISREG(st.st_mode)) return InvalidArgument("'" + path + "' is not a regular file");
  image.size_bytes = static_cast<uint64_t>(st.st_size);
  std::array<std::byte, format::kHeaderSize> bytes{};
  ssize_t n = ::pread(image.fd.get(), bytes.data(), bytes.size(), 0);
  if (n < 0) return ErrnoStatus(Code::kIo, "cannot read the header");
  if (n == 0) return CorruptError("empty input: not a gmemkit image");
  if (static_cast<size_t>(n) < bytes.size()) return CorruptError("truncated: the file ends inside the header");
  auto keys = format::OpenStream(bytes, migrate::StreamKeySource(key), key.insecure);
  if (!keys.ok()) return AsFileError(keys.status());
  image.header = keys->header();
  if (image.header.channel_count != 1) {
    return Unsupported("the image has " + std::to_string(image.header.channel_count) +
                       " channels: a snapshot file has one");
  }
  return image;
}

// The parents of `last` (oldest first), each checked with the key like the image itself.
// Parents are passed to the engine by name (file:PATH), so that its errors name them; it checks
// every link again with what it reads.
Status FindParents(const RestoreOptions& options, const OpenImage& last, const migrate::MigrationKey& key,
                   RestoreResult& result, std::vector<std::string>& parent_uris) {
  GMEM_ASSIGN_OR_RETURN(std::vector<ChainImage> chain,
                        FindChain(ChainImage{options.in_path, last.header}, options.parent_dir));
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    GMEM_RETURN_IF_ERROR(CheckCancel(options.cancel));
    const std::string& path = chain[i].path;
    auto parent = OpenAndCheck(path, key);
    if (!parent.ok()) return parent.status().WithContext("parent '" + path + "'");
    result.file_bytes += parent->size_bytes;
    result.chain.push_back(path);
    parent_uris.push_back("file:" + path);
  }
  return Status::Ok();
}

}  // namespace

Expected<RestoreResult> Restore(const RestoreOptions& options, migrate::MigrationKey key) {
  GMEM_RETURN_IF_ERROR(CheckCancel(options.cancel));
  GMEM_ASSIGN_OR_RETURN(OpenImage image, OpenAndCheck(options.in_path, key));
  RestoreResult result;
  result.header = image.header;
  std::vector<std::string> parents;
  if (image.header.has_parent()) GMEM_RETURN_IF_ERROR(FindParents(options, image, key, result, parents));
  result.chain.push_back(options.in_path);
  result.file_bytes += image.size_bytes;
  GMEM_RETURN_IF_ERROR(CheckCancel(options.cancel));

  migrate::TargetOptions target;
  target.vmm_socket = options.vmm_socket;
  target.vmm_connect_timeout_ms = options.vmm_connect_timeout_ms;
  target.vmm = options.vmm;
  target.parents = std::move(parents);
  // The engine takes a dup of this fd, which shares its offset (still 0: the check used pread),
  // so it reads the very file that was checked. Not a socket: the engine reads to END, requires
  // end of file after it, compares the VM digest in STATE and resumes without a switchover. It
  // refuses a VMM that is not incoming, and leaves that VMM alone.
  target.from_uri = "fd:" + std::to_string(image.fd.get());
  target.stream_name = options.in_path;
  target.cancel = options.cancel;
  target.records_seen = options.records_seen;
  target.resume = options.resume;
  auto run = migrate::MigrationTarget(std::move(target), std::move(key)).Run();
  if (!run.ok()) return AsFileError(run.status());
  result.target = std::move(run).value();
  return result;
}

}  // namespace gmem::snapshot
