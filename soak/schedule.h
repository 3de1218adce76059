#pragma once
// The soak's plan: what each round does (a live migration or a snapshot save and restore, with
// which settings) and which fault it injects when. A round's plan depends only on the run's seed,
// the round number and the run's choices (SoakPlanOptions), never on timing: `--seed` replays a
// run's schedule. When a fault fires is a fraction of the round's expected length; the runner
// scales it by what it measured, so the moment (not the kind) depends on the machine.

#include <cstdint>
#include <string>
#include <string_view>

#include "base/expected.h"

namespace gmem::soak {

enum class FaultSet { kNone, kNet, kProc, kAll };
enum class SlotChoice { kHva, kGmem, kMixed };
enum class WorkloadChoice { kDirty, kConvert, kMixed };

Expected<FaultSet> ParseFaultSet(std::string_view text);
Expected<SlotChoice> ParseSlotChoice(std::string_view text);
Expected<WorkloadChoice> ParseWorkloadChoice(std::string_view text);

enum class RoundKind { kLive, kSnapshot };

enum class Fault {
  kNone,
  // --faults net (live rounds). Those from the network need --hosts netns; the relay's run anywhere.
  kBandwidth,  // tc tbf cap toward the target for the whole round
  kLoss,       // nftables: drop a percentage of the packets toward the target
  kLinkCut,    // the target's link down for a while, mid-migration
  kLatency,    // the relay delays every chunk (with jitter)
  kStall,      // the relay forwards nothing for a while, mid-migration
  kReset,      // the relay resets every connection after some bytes
  kSwitchoverReset,  // the relay resets every connection soon after the switchover began
  // --faults proc
  kKillSender,     // SIGKILL gmem-migrate send
  kKillReceiver,   // SIGKILL gmem-migrate recv
  kKillTargetVmm,  // SIGKILL the incoming gmem-vmm during the migration or restore
  kCancelSender,   // SIGINT gmem-migrate send
  kKillSaver,      // SIGKILL gmem-snapshot save
  kCancelSaver,    // SIGINT gmem-snapshot save
  kKillRestorer,   // SIGKILL gmem-snapshot restore
  kDiskFull,       // the snapshot filesystem has (almost) no room left for the save
  kCorrupt,        // one byte of the stored snapshot flipped before its restore
};
std::string_view FaultName(Fault fault);
bool IsNetFault(Fault fault);

struct RoundPlan {
  uint32_t round = 0;
  RoundKind kind = RoundKind::kLive;
  // Live: gmem-migrate send settings.
  uint32_t channels = 2;
  std::string compress = "zstd:1";
  uint32_t downtime_ms = 300;
  // Snapshot: a full image instead of an increment of the last one.
  bool full_image = false;
  std::string target_slot;  // "hva" or "gmem"
  Fault fault = Fault::kNone;
  // When the fault fires, as a fraction of the round's expected length (0..1.3).
  double fault_at = 0;
  // Fault parameters (those of `fault`).
  uint64_t bandwidth_bits = 0;  // kBandwidth
  uint32_t loss_percent = 0;    // kLoss
  uint32_t duration_ms = 0;     // kLinkCut, kStall; kSwitchoverReset: the delay after it began
  // kSwitchoverReset: 0 reset after the delay; 1 lose the target's next reply (READY); 2 lose what
  // follows it (COMMIT); 3 lose the target's answer to that (RESUMED).
  uint32_t reply_reset = 0;
  uint32_t latency_ms = 0;      // kLatency
  uint32_t jitter_ms = 0;       // kLatency
  uint64_t reset_fraction_ppm = 0;  // kReset: after this share (ppm) of the guest's bytes
  uint64_t free_bytes = 0;          // kDiskFull: room left on the snapshot filesystem
  uint64_t corrupt_ppm = 0;         // kCorrupt: where in the image (ppm of its size)

  // "live 2ch zstd:1 300ms -> gmem, fault kill-receiver at 0.42".
  std::string Describe() const;
};

struct SoakPlanOptions {
  uint64_t seed = 1;
  FaultSet faults = FaultSet::kAll;
  SlotChoice slot = SlotChoice::kMixed;
  bool netns = true;  // the network faults that need namespaces are possible
  bool tmpfs = true;  // the snapshot filesystem is a small tmpfs of our own (kDiskFull possible)
};

// The plan of round `round` (1-based).
RoundPlan PlanRound(const SoakPlanOptions& options, uint32_t round);

}  // namespace gmem::soak
