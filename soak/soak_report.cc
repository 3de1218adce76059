#include "soak/soak_report.h"

#include <algorithm>
#include <cstdio>

namespace gmem::soak {
namespace {

using nlohmann::json;

json DistributionJson(const Distribution& d) {
  return {{"count", d.count}, {"min", d.min}, {"median", d.median}, {"max", d.max}};
}

std::string Line(const char* format, auto... args) {
  char text[256];
  std::snprintf(text, sizeof(text), format, args...);
  return text;
}

// A DistributionJson object as "min / median / max ms", or "-" when empty.
std::string DistributionText(const json& d) {
  if (d["count"].get<uint64_t>() == 0) return "-";
  return Line("%llu / %llu / %llu ms", static_cast<unsigned long long>(d["min"].get<uint64_t>()),
              static_cast<unsigned long long>(d["median"].get<uint64_t>()),
              static_cast<unsigned long long>(d["max"].get<uint64_t>()));
}

}  // namespace

Distribution Summarize(std::vector<uint64_t> values) {
  Distribution d;
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  d.count = values.size();
  d.min = values.front();
  d.max = values.back();
  d.median = values[values.size() / 2];
  return d;
}

void SoakReport::AddRound(RoundRecord record) { rounds_.push_back(std::move(record)); }

void SoakReport::AddAnomaly(Anomaly anomaly) { anomalies_.push_back(std::move(anomaly)); }

void SoakReport::SetFinal(const std::string& checksum, const std::string& baseline, double seconds) {
  final_checksum_ = checksum;
  baseline_ = baseline;
  seconds_ = seconds;
}

std::map<std::string, uint64_t> SoakReport::Count(bool faults) const {
  std::map<std::string, uint64_t> counts;
  for (const RoundRecord& r : rounds_) {
    if (faults && r.plan.fault == Fault::kNone) continue;
    ++counts[faults ? std::string(FaultName(r.plan.fault)) : r.outcome];
  }
  return counts;
}

json RoundToJson(const RoundRecord& r) {
  json j = {{"event", "round"},
            {"round", r.plan.round},
            {"kind", r.plan.kind == RoundKind::kLive ? "live" : "snapshot"},
            {"plan", r.plan.Describe()},
            {"from", r.from},
            {"to", r.to},
            {"fault", std::string(FaultName(r.plan.fault))},
            {"outcome", r.outcome},
            {"detail", r.detail},
            {"guest_on", r.guest_moved ? r.to : r.from},
            {"seconds", r.seconds},
            {"bytes", r.bytes}};
  if (r.migration_ms) j["migration_ms"] = *r.migration_ms;
  if (r.downtime_ms) j["downtime_ms"] = *r.downtime_ms;
  if (r.save_ms) j["save_ms"] = *r.save_ms;
  if (r.restore_ms) j["restore_ms"] = *r.restore_ms;
  return j;
}

json SoakReport::ToJson() const {
  std::vector<uint64_t> total, downtime, save, restore;
  uint64_t bytes = 0, live = 0, live_done = 0, snapshots = 0, restored = 0;
  for (const RoundRecord& r : rounds_) {
    bytes += r.bytes;
    if (r.plan.kind == RoundKind::kLive) {
      ++live;
      live_done += r.guest_moved ? 1 : 0;
    } else {
      ++snapshots;
      restored += r.guest_moved ? 1 : 0;
    }
    if (r.migration_ms) total.push_back(*r.migration_ms);
    if (r.downtime_ms) downtime.push_back(*r.downtime_ms);
    if (r.save_ms) save.push_back(*r.save_ms);
    if (r.restore_ms) restore.push_back(*r.restore_ms);
  }
  json anomalies = json::array();
  for (const Anomaly& a : anomalies_) {
    anomalies.push_back({{"round", a.round}, {"kind", a.kind}, {"detail", a.detail}, {"seed", seed_},
                         {"replay", command_}});
  }
  return {{"event", "summary"},
          {"seed", seed_},
          {"replay", command_},
          {"settings", settings_},
          {"rounds", rounds_.size()},
          {"seconds", seconds_},
          {"live_migrations", {{"attempted", live}, {"guest_moved", live_done}}},
          {"snapshot_rounds", {{"attempted", snapshots}, {"restored", restored}}},
          {"faults", Count(true)},
          {"outcomes", Count(false)},
          {"bytes_moved", bytes},
          {"migration_ms", DistributionJson(Summarize(total))},
          {"downtime_ms", DistributionJson(Summarize(downtime))},
          {"save_ms", DistributionJson(Summarize(save))},
          {"restore_ms", DistributionJson(Summarize(restore))},
          {"final_checksum", final_checksum_},
          {"baseline_checksum", baseline_},
          {"anomalies", anomalies}};
}

std::string SoakReport::SummaryText() const {
  json j = ToJson();
  std::string out;
  out += Line("%-26s %llu in %.0f s (seed %llu)\n", "rounds", static_cast<unsigned long long>(rounds_.size()), seconds_,
              static_cast<unsigned long long>(seed_));
  out += Line("%-26s %llu attempted, %llu moved the guest\n", "live migrations",
              static_cast<unsigned long long>(j["live_migrations"]["attempted"]),
              static_cast<unsigned long long>(j["live_migrations"]["guest_moved"]));
  out += Line("%-26s %llu attempted, %llu restored\n", "snapshot save + restore",
              static_cast<unsigned long long>(j["snapshot_rounds"]["attempted"]),
              static_cast<unsigned long long>(j["snapshot_rounds"]["restored"]));
  out += Line("%-26s %.1f MiB\n", "bytes moved", static_cast<double>(j["bytes_moved"].get<uint64_t>()) / 1048576.0);
  out += Line("%-26s %s\n", "migration min/median/max", DistributionText(j["migration_ms"]).c_str());
  out += Line("%-26s %s\n", "downtime min/median/max", DistributionText(j["downtime_ms"]).c_str());
  out += Line("%-26s %s\n", "save min/median/max", DistributionText(j["save_ms"]).c_str());
  out += Line("%-26s %s\n", "restore min/median/max", DistributionText(j["restore_ms"]).c_str());
  out += "faults injected:\n";
  for (const auto& [name, n] : j["faults"].items()) {
    out += Line("  %-24s %llu\n", name.c_str(), static_cast<unsigned long long>(n.get<uint64_t>()));
  }
  out += "outcomes:\n";
  for (const auto& [name, n] : j["outcomes"].items()) {
    out += Line("  %-40s %llu\n", name.c_str(), static_cast<unsigned long long>(n.get<uint64_t>()));
  }
  out += Line("%-26s %s (uninterrupted run: %s)\n", "final checksum", final_checksum_.empty() ? "-" : final_checksum_.c_str(),
              baseline_.empty() ? "-" : baseline_.c_str());
  out += Line("%-26s %llu\n", "anomalies", static_cast<unsigned long long>(anomalies_.size()));
  for (const Anomaly& a : anomalies_) {
    out += "  round " + std::to_string(a.round) + ": " + a.kind + ": " + a.detail + "\n";
  }
  if (!anomalies_.empty()) out += "  replay: " + command_ + "\n";
  return out;
}

}  // namespace gmem::soak
