#pragma once
// Shared pieces of the migration tests: a source and an incoming target gmem-vmm with their
// control sockets, a key, and the uninterrupted run to compare with.

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "migrate/migration_types.h"
#include "tests/testutil/testutil.h"
#include "tests/vmm/vmm_process.h"

namespace gmem::migrate::testing {

struct VmSpec {
  std::string mem = "32M";
  std::string regions = "1";
  std::string slot = "gmem";
  std::string workload = "dirty";
  std::string rate = "1000";
  std::string steps = "3000";
  std::string seed = "13";
};

// gmem-vmm arguments for `spec`; `with_rate` adds the rate limit (the baseline runs without).
std::vector<std::string> VmArgs(const VmSpec& spec, bool with_rate);

// A running source VM (with --control) and an incoming target VM, in a fresh directory.
struct VmPair {
  explicit VmPair(const VmSpec& spec);
  gmem::testing::TempDir dir;
  std::string source_socket;
  std::string target_socket;
  std::unique_ptr<vmm::testing::VmmProcess> source;
  std::unique_ptr<vmm::testing::VmmProcess> target;
};

// Waits (up to `timeout_ms`) until the VM behind `socket` has made at least `count` conversions
// (`query` → conversions): the `convert` workload is under way, however slowly the guest runs
// (sanitizer builds). False at the timeout.
bool WaitForConversions(const std::string& socket, uint64_t count, int timeout_ms = 60000);

// Runs a MigrationTarget with `options` and its own copy of `key` on another thread.
std::future<Expected<TargetResult>> StartTarget(TargetOptions options, const MigrationKey& key);

// A fresh random key, and a second owner of the same bytes.
MigrationKey NewKey();
MigrationKey CopyKey(const MigrationKey& key);
// Writes `key` as a key file (mode 0600) at `path`.
void WriteKeyFile(const MigrationKey& key, const std::string& path);

}  // namespace gmem::migrate::testing
