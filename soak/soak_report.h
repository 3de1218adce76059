#pragma once
// SoakReport: what a soak run did and saw — one record per round, every anomaly — and the summary
// that gmem-soak prints (a table) and writes (--report FILE.json).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "soak/schedule.h"

namespace gmem::soak {

// How one round ended. Every value but the anomalies is a defined outcome (docs/soak.md).
struct RoundRecord {
  RoundPlan plan;
  std::string from, to;  // host names ("a", "b")
  std::string outcome;   // "migrated", "restored", "failed, source kept", ...
  std::string detail;    // the error line of the tool that failed, or what the runner did
  double seconds = 0;    // the whole round, VMM start to resume
  uint64_t bytes = 0;    // wire bytes (live) or image bytes (snapshot) that reached the target
  std::optional<uint64_t> migration_ms;  // a completed live migration (send's total_ms)
  std::optional<uint64_t> downtime_ms;   // a completed live migration
  std::optional<uint64_t> save_ms, restore_ms;
  bool guest_moved = false;  // the guest runs on `to` now
};

struct Anomaly {
  uint32_t round = 0;  // 0: the run itself (set-up, final checksum)
  std::string kind;    // "digest-mismatch", "lost-guest", "unclear-error", ...
  std::string detail;
};

struct Distribution {
  uint64_t count = 0, min = 0, median = 0, max = 0;
};
Distribution Summarize(std::vector<uint64_t> values);

class SoakReport {
 public:
  // `command`: the command line that replays the run's schedule (printed with every anomaly).
  SoakReport(uint64_t seed, std::string command) : seed_(seed), command_(std::move(command)) {}

  void AddRound(RoundRecord record);
  void AddAnomaly(Anomaly anomaly);
  void SetSetting(const std::string& key, nlohmann::json value) { settings_[key] = std::move(value); }
  void SetFinal(const std::string& checksum, const std::string& baseline, double seconds);

  const std::vector<RoundRecord>& rounds() const { return rounds_; }
  const std::vector<Anomaly>& anomalies() const { return anomalies_; }

  nlohmann::json ToJson() const;
  // The summary table, several lines, each ending in '\n'.
  std::string SummaryText() const;

 private:
  std::map<std::string, uint64_t> Count(bool faults) const;

  uint64_t seed_;
  std::string command_;
  nlohmann::json settings_ = nlohmann::json::object();
  std::vector<RoundRecord> rounds_;
  std::vector<Anomaly> anomalies_;
  std::string final_checksum_, baseline_;
  double seconds_ = 0;
};

// One round as an NDJSON event ({"event":"round", ...}).
nlohmann::json RoundToJson(const RoundRecord& record);

}  // namespace gmem::soak
