#pragma once
// RunSoak: the soak runner behind gmem-soak (docs/soak.md). It starts a running, converting
// guest in a gmem-vmm on one host, then, round after round, moves it to another host by live
// migration or by an incremental snapshot and its restore, injecting the round's fault
// (soak/schedule.h). After every round it checks that exactly one copy of the guest runs, that a
// copy that took over has the digest the source had at switchover, that no older snapshot changed
// and that every failure was one clear line; then it lets the guest finish and compares its
// checksum with an uninterrupted run's. Everything else it sees is an anomaly, with the seed that
// replays the schedule.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "base/expected.h"
#include "soak/schedule.h"
#include "soak/soak_report.h"

namespace gmem::soak {

struct SoakConfig {
  uint32_t rounds = 20;       // used when duration_s is 0
  uint64_t duration_s = 0;    // run rounds until this much time passed (then finish the guest)
  uint64_t mem_bytes = 128ull << 20;
  uint32_t regions = 2;
  uint32_t vcpus = 2;
  SlotChoice slot = SlotChoice::kMixed;
  WorkloadChoice workload = WorkloadChoice::kMixed;
  FaultSet faults = FaultSet::kAll;
  uint64_t seed = 1;
  bool netns = true;          // --hosts netns (else loopback)
  uint64_t guest_rate = 200;  // steps per second per vCPU while the rounds run
  std::string bin_dir;        // where gmem-vmm, gmem-migrate, gmem-snapshot are
  std::string work_dir;       // keys, logs, snapshots (created if missing)
  // The snapshot directory is a tmpfs of this size that RunSoak mounted (disk-full faults), or 0:
  // a plain directory (no disk-full faults).
  uint64_t snapshot_fs_bytes = 0;
  std::string replay_command;  // printed with anomalies
  // Set (e.g. on SIGINT) to stop after the current round; the guest still finishes. May be null.
  const std::atomic<bool>* stop = nullptr;
};

// Progress: one call per line of text for a person (`text`) or one NDJSON event (`event`).
struct SoakEvents {
  std::function<void(const std::string& line)> text;
  std::function<void(const nlohmann::json& event)> event;
};

// Runs the soak. An error only when it could not start (tools missing, no KVM, bad config); what
// went wrong during the rounds is in the report's anomalies.
Expected<SoakReport> RunSoak(const SoakConfig& config, const SoakEvents& events);

// Gives the calling process a private mount namespace (nothing it mounts is seen outside, and
// everything it mounted goes when it exits) and mounts a tmpfs of `size_bytes` at `dir`.
// REQUIRES: single-threaded caller (unshare(CLONE_NEWNS)); root.
Status MountPrivateTmpfs(const std::string& dir, uint64_t size_bytes);

}  // namespace gmem::soak
