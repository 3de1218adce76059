#pragma once
// Save(): `gmem-snapshot save` (docs/snapshots.md). Pauses the VM behind a VMM control socket,
// writes its image — layout, attributes, every non-zero page, the vCPU/device state, the VMM's
// digest and the page-hash table that lets the image be a parent — with the live-migration engine
// (migrate::MigrationSource over a non-socket fd, which writes the whole stream and leaves the
// source paused), into an AtomicFile that appears at the output path only when complete and
// fsynced. Then it leaves the VM as it found it (running or paused), or paused with `stop`.
// With a parent image, the image is an increment: it stores only the pages whose contents differ
// from the parent's (by the parent's page-hash table) and names the parent in its header.
//
// On any failure or cancel: the temporary is removed, an existing file at the path is left
// byte for byte as it was, and a VM this call paused is resumed.

#include <atomic>
#include <string>

#include "base/expected.h"
#include "format/image_header.h"
#include "format/wire.h"
#include "migrate/migration_types.h"

namespace gmem::snapshot {

struct SaveOptions {
  std::string vmm_socket;
  int vmm_connect_timeout_ms = 2000;
  // The VMM to save instead of the one at vmm_socket (not owned; migrate::SourceOptions::vmm).
  migrate::VmmControl* vmm = nullptr;
  std::string out_path;
  // An incremental save: the parent image (read and verified in full with the same key before
  // the VM is paused; it must carry page hashes and the VM's layout). Empty: a full image.
  std::string parent_path;
  format::Compression compression = format::Compression::kZstd;
  int zstd_level = 1;
  bool adaptive_compression = false;  // migrate::SourceOptions::adaptive_compression
  // Leave the VM paused after a successful save (a failed save still resumes a VM it paused).
  bool stop = false;
  // O_TMPFILE where the filesystem supports it (false: always a named temporary; tests).
  bool allow_unnamed_temp = true;
  // Set (e.g. from a signal handler) to cancel; checked between batches. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Progress of the write (passes, batches). May be null.
  migrate::MigrationEvents* events = nullptr;
};

struct SaveResult {
  migrate::MigrationStats stats;  // what the engine wrote; source_digest is the VM at pause
  format::ImageHeader header;     // of the written image (stream id, cipher, parent, ...)
  uint64_t file_bytes = 0;
  uint64_t guest_pages = 0;  // pages of guest memory the image describes
  std::string state_before;  // "running" or "paused"
  bool left_paused = false;  // the VM is paused now
  // How long this call kept a running VM paused (0 if it was paused already, or with `stop`).
  uint64_t paused_ms = 0;
};

// REQUIRES: `key` is a key file's key, a passphrase, or insecure.
Expected<SaveResult> Save(const SaveOptions& options, migrate::MigrationKey key);

}  // namespace gmem::snapshot
