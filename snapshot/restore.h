#pragma once
// Restore(): `gmem-snapshot restore` (docs/snapshots.md). Rebuilds the VM an image describes in
// an incoming VMM (`gmem-vmm run --incoming`) through the live-migration engine
// (migrate::MigrationTarget over the file): same layout, every page, attributes and state; it
// checks every record, END, end of file after END and the VM digest stored in the image against
// the rebuilt VM's, and resumes the VM only then.
//
// Before the VMM is contacted, the header is authenticated with the key, so a wrong key, a
// damaged header or an image this build cannot restore fails with the VMM untouched. Any later
// failure tells the incoming VMM to quit: the half-built VM never runs.

#include <string>

#include "base/expected.h"
#include "format/image_header.h"
#include "migrate/migration_types.h"

namespace gmem::snapshot {

struct RestoreOptions {
  std::string vmm_socket;
  int vmm_connect_timeout_ms = 2000;
  std::string in_path;
};

struct RestoreResult {
  migrate::TargetResult target;  // digest of the VM at resume (equals the one at save)
  format::ImageHeader header;
  uint64_t file_bytes = 0;
};

Expected<RestoreResult> Restore(const RestoreOptions& options, migrate::MigrationKey key);

}  // namespace gmem::snapshot
