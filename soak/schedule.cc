#include "soak/schedule.h"

#include <cstdio>
#include <vector>

namespace gmem::soak {
namespace {

// A small deterministic generator (splitmix64): the same numbers from every standard library,
// so a seed replays the same schedule wherever the runner was built.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Next() % (hi - lo + 1); }
  bool Chance(uint32_t percent) { return Next() % 100 < percent; }
  double Fraction(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(Next() >> 11) / 9007199254740992.0; }
  template <typename T>
  T Pick(const std::vector<T>& items) { return items[Next() % items.size()]; }

 private:
  uint64_t state_;
};

struct FaultNameEntry {
  Fault fault;
  const char* name;
};
constexpr FaultNameEntry kFaultNames[] = {
    {Fault::kNone, "none"},
    {Fault::kBandwidth, "bandwidth-cap"},
    {Fault::kLoss, "packet-loss"},
    {Fault::kLinkCut, "link-cut"},
    {Fault::kLatency, "latency-jitter"},
    {Fault::kStall, "stall"},
    {Fault::kReset, "connection-reset"},
    {Fault::kSwitchoverReset, "switchover-reset"},
    {Fault::kKillSender, "kill-sender"},
    {Fault::kKillReceiver, "kill-receiver"},
    {Fault::kKillTargetVmm, "kill-target-vmm"},
    {Fault::kCancelSender, "sigint-sender"},
    {Fault::kKillSaver, "kill-save"},
    {Fault::kCancelSaver, "sigint-save"},
    {Fault::kKillRestorer, "kill-restore"},
    {Fault::kDiskFull, "disk-full"},
    {Fault::kCorrupt, "corrupt-snapshot"},
};

std::vector<Fault> LiveFaults(const SoakPlanOptions& o) {
  std::vector<Fault> faults;
  if (o.faults == FaultSet::kNet || o.faults == FaultSet::kAll) {
    if (o.netns) faults.insert(faults.end(), {Fault::kBandwidth, Fault::kLoss, Fault::kLinkCut});
    faults.insert(faults.end(), {Fault::kLatency, Fault::kStall, Fault::kReset, Fault::kSwitchoverReset});
  }
  if (o.faults == FaultSet::kProc || o.faults == FaultSet::kAll) {
    faults.insert(faults.end(), {Fault::kKillSender, Fault::kKillReceiver, Fault::kKillTargetVmm, Fault::kCancelSender});
  }
  return faults;
}

std::vector<Fault> SnapshotFaults(const SoakPlanOptions& o) {
  std::vector<Fault> faults;
  if (o.faults == FaultSet::kProc || o.faults == FaultSet::kAll) {
    faults = {Fault::kKillSaver, Fault::kCancelSaver, Fault::kKillRestorer, Fault::kKillTargetVmm, Fault::kCorrupt};
    if (o.tmpfs) faults.push_back(Fault::kDiskFull);
  }
  return faults;
}

void PlanFaultParameters(Rng& rng, RoundPlan& plan) {
  plan.fault_at = rng.Fraction(0.05, 1.1);
  switch (plan.fault) {
    case Fault::kBandwidth: plan.bandwidth_bits = rng.Between(100, 400) * 1000000; break;
    case Fault::kLoss: plan.loss_percent = static_cast<uint32_t>(rng.Between(1, 5)); break;
    case Fault::kLinkCut: plan.duration_ms = static_cast<uint32_t>(rng.Between(300, 3000)); break;
    case Fault::kStall: plan.duration_ms = static_cast<uint32_t>(rng.Between(300, 3000)); break;
    case Fault::kLatency:
      plan.latency_ms = static_cast<uint32_t>(rng.Between(1, 20));
      plan.jitter_ms = static_cast<uint32_t>(rng.Between(0, 10));
      break;
    case Fault::kReset: plan.reset_fraction_ppm = rng.Between(20000, 950000); break;
    case Fault::kSwitchoverReset:
      plan.duration_ms = static_cast<uint32_t>(rng.Between(0, 300));
      plan.reply_reset = static_cast<uint32_t>(rng.Between(0, 3));
      break;
    case Fault::kDiskFull: plan.free_bytes = rng.Between(0, 2u << 20); break;
    case Fault::kCorrupt: plan.corrupt_ppm = rng.Between(0, 999999); break;
    default: break;
  }
}

}  // namespace

Expected<FaultSet> ParseFaultSet(std::string_view text) {
  if (text == "none") return FaultSet::kNone;
  if (text == "net") return FaultSet::kNet;
  if (text == "proc") return FaultSet::kProc;
  if (text == "all") return FaultSet::kAll;
  return InvalidArgument("--faults must be none, net, proc or all, not '" + std::string(text) + "'");
}

Expected<SlotChoice> ParseSlotChoice(std::string_view text) {
  if (text == "hva") return SlotChoice::kHva;
  if (text == "gmem") return SlotChoice::kGmem;
  if (text == "mixed") return SlotChoice::kMixed;
  return InvalidArgument("--slot must be hva, gmem or mixed, not '" + std::string(text) + "'");
}

Expected<WorkloadChoice> ParseWorkloadChoice(std::string_view text) {
  if (text == "dirty") return WorkloadChoice::kDirty;
  if (text == "convert") return WorkloadChoice::kConvert;
  if (text == "mixed") return WorkloadChoice::kMixed;
  return InvalidArgument("--workload must be dirty, convert or mixed, not '" + std::string(text) + "'");
}

std::string_view FaultName(Fault fault) {
  for (const auto& e : kFaultNames) {
    if (e.fault == fault) return e.name;
  }
  return "?";
}

bool IsNetFault(Fault fault) {
  return fault == Fault::kBandwidth || fault == Fault::kLoss || fault == Fault::kLinkCut || fault == Fault::kLatency ||
         fault == Fault::kStall || fault == Fault::kReset || fault == Fault::kSwitchoverReset;
}

std::string RoundPlan::Describe() const {
  char text[160];
  if (kind == RoundKind::kLive) {
    std::snprintf(text, sizeof(text), "live %uch %s %ums -> %s", channels, compress.c_str(), downtime_ms,
                  target_slot.c_str());
  } else {
    std::snprintf(text, sizeof(text), "snapshot %s %s -> %s", full_image ? "full" : "increment", compress.c_str(),
                  target_slot.c_str());
  }
  std::string out = text;
  if (fault != Fault::kNone) {
    std::snprintf(text, sizeof(text), ", %s at %.2f", std::string(FaultName(fault)).c_str(), fault_at);
    out += text;
  }
  return out;
}

RoundPlan PlanRound(const SoakPlanOptions& options, uint32_t round) {
  Rng rng(options.seed * 0x100000001b3ULL ^ (uint64_t{round} << 32 | round));
  RoundPlan plan;
  plan.round = round;
  plan.kind = rng.Chance(35) ? RoundKind::kSnapshot : RoundKind::kLive;
  plan.channels = static_cast<uint32_t>(rng.Pick<uint64_t>({1, 2, 2, 3, 4}));
  plan.compress = rng.Pick<std::string>({"none", "zstd:1", "zstd:1", "zstd:3"});
  plan.downtime_ms = static_cast<uint32_t>(rng.Pick<uint64_t>({50, 150, 300, 600}));
  plan.full_image = rng.Chance(20);
  switch (options.slot) {
    case SlotChoice::kHva: plan.target_slot = "hva"; break;
    case SlotChoice::kGmem: plan.target_slot = "gmem"; break;
    case SlotChoice::kMixed: plan.target_slot = rng.Chance(50) ? "hva" : "gmem"; break;
  }
  std::vector<Fault> faults = plan.kind == RoundKind::kLive ? LiveFaults(options) : SnapshotFaults(options);
  if (!faults.empty() && rng.Chance(65)) {
    plan.fault = rng.Pick(faults);
    PlanFaultParameters(rng, plan);
  }
  return plan;
}

}  // namespace gmem::soak
