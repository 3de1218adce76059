#pragma once
// Restore(): `gmem-snapshot restore` (docs/snapshots.md). Rebuilds the VM an image describes in
// an incoming VMM (`gmem-vmm run --incoming`) through the live-migration engine
// (migrate::MigrationTarget over the file): same layout, every page, attributes and state; it
// checks every record, END, end of file after END and the VM digest stored in the image against
// the rebuilt VM's, and resumes the VM only then. An incremental image is restored with its
// parent chain (FindChain()), applied oldest first, every link checked; the VM resumes only after
// the whole chain verified.
//
// Before the VMM is contacted, the chain is found and the header of every image in it is
// authenticated with the key, so a missing parent, a wrong key, a damaged header or an image this
// build cannot restore fails with the VMM untouched (still incoming). Any later failure or cancel
// tells the incoming VMM to quit: the half-built VM never runs. A VMM that is not incoming is
// refused and left alone.

#include <atomic>
#include <string>
#include <vector>

#include "base/expected.h"
#include "format/image_header.h"
#include "migrate/migration_types.h"

namespace gmem::snapshot {

struct RestoreOptions {
  std::string vmm_socket;
  int vmm_connect_timeout_ms = 2000;
  // The VMM to restore into instead of the one at vmm_socket (not owned; migrate::TargetOptions::vmm).
  migrate::VmmControl* vmm = nullptr;
  std::string in_path;
  // Where the parents of an incremental image are looked up (empty: in_path's directory).
  std::string parent_dir;
  // Leave the restored VM paused (verified, ready to resume) instead of resuming it.
  bool resume = true;
  // Set (e.g. from a signal handler) to cancel; checked before the VMM is contacted and between
  // records. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Raised for every record applied (migrate::TargetOptions::records_seen). May be null.
  std::atomic<uint64_t>* records_seen = nullptr;
};

struct RestoreResult {
  migrate::TargetResult target;  // digest of the VM at resume (equals the one at save)
  format::ImageHeader header;    // of in_path
  std::vector<std::string> chain;  // the images applied, oldest first (in_path last)
  uint64_t file_bytes = 0;         // of the whole chain
};

// REQUIRES: `key` is a key file's key, a passphrase, or insecure.
Expected<RestoreResult> Restore(const RestoreOptions& options, migrate::MigrationKey key);

}  // namespace gmem::snapshot
