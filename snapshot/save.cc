#include "snapshot/save.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <memory>

#include "migrate/incremental.h"
#include "migrate/source.h"
#include "migrate/vmm_client.h"
#include "snapshot/atomic_file.h"
#include "snapshot/image_errors.h"

namespace gmem::snapshot {
namespace {

Status CheckCancel(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load()) return Status(Code::kCancelled, "cancelled");
  return Status::Ok();
}

// Forwards the engine's events and remembers the guest's size.
class CountingEvents final : public migrate::MigrationEvents {
 public:
  explicit CountingEvents(migrate::MigrationEvents* next) : next_(next) {}
  void OnStart(uint64_t total_pages) override {
    total_pages_ = total_pages;
    if (next_ != nullptr) next_->OnStart(total_pages);
  }
  void OnProgress(uint32_t pass, uint64_t done, uint64_t total, uint64_t wire_bytes) override {
    if (next_ != nullptr) next_->OnProgress(pass, done, total, wire_bytes);
  }
  void OnPass(const migrate::PassStats& pass) override {
    if (next_ != nullptr) next_->OnPass(pass);
  }
  uint64_t total_pages() const { return total_pages_; }

 private:
  migrate::MigrationEvents* next_;
  uint64_t total_pages_ = 0;
};

// The header of what the engine wrote (the stream id is drawn inside the engine).
Expected<format::ImageHeader> ReadHeader(int fd) {
  std::array<std::byte, format::kHeaderSize> bytes{};
  ssize_t n = ::pread(fd, bytes.data(), bytes.size(), 0);
  if (n < 0) return ErrnoStatus(Code::kIo, "cannot read back the image header");
  if (static_cast<size_t>(n) != bytes.size()) return CorruptError("the written image has no complete header");
  return format::DecodeHeader(bytes);
}

// The parent of an incremental save, read and verified in full. Refuses to replace the parent
// with its own child.
Expected<std::shared_ptr<const migrate::IncrementalBase>> LoadParent(const SaveOptions& options,
                                                                     const migrate::MigrationKey& key) {
  std::string what = "parent '" + options.parent_path + "'";
  struct stat parent {}, out {};
  if (::stat(options.parent_path.c_str(), &parent) != 0) return ErrnoStatus(Code::kIo, "cannot open " + what);
  if (::stat(options.out_path.c_str(), &out) == 0 && out.st_dev == parent.st_dev && out.st_ino == parent.st_ino) {
    return InvalidArgument("--parent and --out are the same file: the new image would replace its own parent");
  }
  auto base = migrate::LoadIncrementalBase(options.parent_path, key);
  if (!base.ok()) return AsFileError(base.status()).WithContext(what);
  return std::make_shared<const migrate::IncrementalBase>(std::move(base).value());
}

// Streams the whole image of the (paused) VM into `file`.
Status WriteImage(const SaveOptions& options, migrate::MigrationKey key,
                  std::shared_ptr<const migrate::IncrementalBase> base, const AtomicFile& file, SaveResult& result) {
  migrate::SourceOptions source;
  source.vmm_socket = options.vmm_socket;
  source.vmm_connect_timeout_ms = options.vmm_connect_timeout_ms;
  source.vmm = options.vmm;
  // A regular file is not interactive: the engine writes the complete stream with the VMM's
  // digest in STATE, skips the switchover and leaves the VM paused.
  source.to_uri = "fd:" + std::to_string(file.fd());
  source.stream_name = options.out_path;
  source.channels = 1;
  // Every image can be a parent: the engine hashes each page as it goes out.
  source.record_page_hashes = true;
  source.base = std::move(base);
  source.compression = options.compression;
  source.zstd_level = options.zstd_level;
  source.adaptive_compression = options.adaptive_compression;
  // The VM is already paused: pass 1 writes every non-zero page, then the final pass adds what
  // no dirty source can see (the boot area the VMM writes) and the state. No precopy rounds.
  source.convergence.max_passes = 1;
  source.cancel = options.cancel;
  CountingEvents events(options.events);
  source.events = &events;
  GMEM_ASSIGN_OR_RETURN(result.stats, migrate::MigrationSource(std::move(source), std::move(key)).Run());
  result.guest_pages = events.total_pages();
  GMEM_ASSIGN_OR_RETURN(result.header, ReadHeader(file.fd()));
  struct stat st {};
  if (::fstat(file.fd(), &st) != 0) return ErrnoStatus(Code::kIo, "cannot stat the written image");
  result.file_bytes = static_cast<uint64_t>(st.st_size);
  return Status::Ok();
}

// Resumes the VM this call paused, after a failure. (The engine found it paused, so it never
// resumes it itself; a VM the user had paused is not touched.)
void ResumeAfterFailure(migrate::VmmControl& vmm) {
  vmm.Resume().IgnoreError();  // best effort: the error that brought us here is the one to report
}

}  // namespace

Expected<SaveResult> Save(const SaveOptions& options, migrate::MigrationKey key) {
  GMEM_RETURN_IF_ERROR(CheckCancel(options.cancel));
  if (!key.insecure && key.passphrase.empty() && key.key.size() != format::kKeySize) {
    return InvalidArgument("save needs a key file's key or a passphrase");
  }
  AtomicFileOptions file_options;
  file_options.allow_unnamed = options.allow_unnamed_temp;
  // The output first: a missing directory fails before the VM is touched.
  GMEM_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(options.out_path, file_options));
  // The parent next (a whole read of it): outside the VM's pause, and before the VM is touched.
  std::shared_ptr<const migrate::IncrementalBase> base;
  if (!options.parent_path.empty()) {
    GMEM_ASSIGN_OR_RETURN(base, LoadParent(options, key));
    GMEM_RETURN_IF_ERROR(CheckCancel(options.cancel));
  }
  std::unique_ptr<migrate::VmmClient> own_vmm;
  GMEM_ASSIGN_OR_RETURN(migrate::VmmControl * control,
                        migrate::AttachVmmControl(options.vmm, options.vmm_socket, options.vmm_connect_timeout_ms,
                                                  own_vmm));
  migrate::VmmControl& vmm = *control;
  SaveResult result;
  GMEM_ASSIGN_OR_RETURN(result.state_before, vmm.State());
  if (result.state_before != "running" && result.state_before != "paused") {
    return InvalidArgument("the VM is " + result.state_before + ": only a running or paused VM can be saved");
  }
  bool we_paused = result.state_before == "running";
  if (we_paused) GMEM_RETURN_IF_ERROR(vmm.Pause().WithContext("pause the VM"));
  auto paused_at = std::chrono::steady_clock::now();

  Status st = WriteImage(options, std::move(key), std::move(base), file, result).WithContext("write the image");
  if (st.ok()) st = CheckCancel(options.cancel);
  if (!st.ok()) {
    file.Abandon();
    if (we_paused) ResumeAfterFailure(vmm);
    return st;
  }
  // The image is complete in the temporary: resume before the fsync and rename, so the guest's
  // pause does not include them. If they fail the VM runs on, as after any failed save.
  Status resumed = Status::Ok();
  if (we_paused && !options.stop) {
    resumed = vmm.Resume();
    result.paused_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - paused_at).count());
  }
  if (st = file.Commit(); !st.ok()) {
    if (we_paused && options.stop) ResumeAfterFailure(vmm);
    return st;
  }
  if (!resumed.ok()) return resumed.WithContext("the snapshot was saved, but resuming the VM failed");
  result.left_paused = !we_paused || options.stop;
  return result;
}

}  // namespace gmem::snapshot
