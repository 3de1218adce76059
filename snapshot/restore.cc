#include "snapshot/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>

#include "base/unique_fd.h"
#include "format/keys.h"
#include "format/stream_keys.h"
#include "migrate/target.h"
#include "migrate/vmm_client.h"
#include "snapshot/image_errors.h"

namespace gmem::snapshot {
namespace {

format::KeySource KeySourceOf(const migrate::MigrationKey& key) {
  if (key.insecure) return format::KeySource::Insecure();
  return format::KeySource::FromKey(SecretBytes::CopyOf(key.key.span()));
}

// What can be checked without the body and without a VMM: the header opens with the key (a
// wrong key is kAuth, an unencrypted image without --insecure-no-encryption kIncompatible), and
// the image is one this build restores.
Expected<format::ImageHeader> CheckHeader(int fd, const migrate::MigrationKey& key) {
  std::array<std::byte, format::kHeaderSize> bytes{};
  ssize_t n = ::pread(fd, bytes.data(), bytes.size(), 0);
  if (n < 0) return ErrnoStatus(Code::kIo, "cannot read the header");
  if (n == 0) return CorruptError("empty input: not a gmemkit image");
  if (static_cast<size_t>(n) < bytes.size()) return CorruptError("truncated: the file ends inside the header");
  GMEM_ASSIGN_OR_RETURN(format::StreamKeys keys, format::OpenStream(bytes, KeySourceOf(key), key.insecure));
  const format::ImageHeader& header = keys.header();
  if (header.has_parent()) {
    return Unsupported("this is an incremental image (parent " + ToHex(header.parent_stream_id) +
                       "): restoring a chain is not supported yet");
  }
  if (header.channel_count != 1) {
    return Unsupported("the image has " + std::to_string(header.channel_count) +
                       " channels: a snapshot file has one");
  }
  return header;
}

// The engine tells its VMM to quit on any failure, a VMM in the wrong state included: ask first,
// so that pointing restore at a running VM's socket by mistake leaves that VM alone.
Status CheckIncoming(const RestoreOptions& options) {
  GMEM_ASSIGN_OR_RETURN(migrate::VmmClient vmm,
                        migrate::VmmClient::Connect(options.vmm_socket, options.vmm_connect_timeout_ms));
  GMEM_ASSIGN_OR_RETURN(std::string state, vmm.State());
  if (state != "incoming") {
    return InvalidArgument("the VMM at '" + options.vmm_socket + "' is " + state +
                           ", not incoming (start it with gmem-vmm run --incoming); it was left alone");
  }
  return Status::Ok();
}

}  // namespace

Expected<RestoreResult> Restore(const RestoreOptions& options, migrate::MigrationKey key) {
  UniqueFd fd(::open(options.in_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "cannot open '" + options.in_path + "'");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(Code::kIo, "cannot stat '" + options.in_path + "'");
  if (!S_ISREG(st.st_mode)) return InvalidArgument("'" + options.in_path + "' is not a regular file");
  RestoreResult result;
  result.file_bytes = static_cast<uint64_t>(st.st_size);
  auto header = CheckHeader(fd.get(), key);
  if (!header.ok()) return AsFileError(header.status());
  result.header = *header;
  GMEM_RETURN_IF_ERROR(CheckIncoming(options));

  migrate::TargetOptions target;
  target.vmm_socket = options.vmm_socket;
  target.vmm_connect_timeout_ms = options.vmm_connect_timeout_ms;
  // The engine takes a dup of this fd, which shares its offset (still 0: the check used pread),
  // so it reads the very file that was checked. Not a socket: the engine reads to END, requires
  // end of file after it, compares the VM digest in STATE and resumes without a switchover.
  target.from_uri = "fd:" + std::to_string(fd.get());
  auto run = migrate::MigrationTarget(std::move(target), std::move(key)).Run();
  if (!run.ok()) return AsFileError(run.status());
  result.target = std::move(run).value();
  return result;
}

}  // namespace gmem::snapshot
