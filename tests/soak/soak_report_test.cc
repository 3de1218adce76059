#include "soak/soak_report.h"

#include <gtest/gtest.h>

namespace gmem::soak {
namespace {

RoundRecord Live(uint32_t round, Fault fault, const std::string& outcome, uint64_t total_ms, uint64_t downtime_ms) {
  RoundRecord r;
  r.plan.round = round;
  r.plan.fault = fault;
  r.from = "a";
  r.to = "b";
  r.outcome = outcome;
  r.bytes = 1 << 20;
  if (outcome == "migrated") {
    r.guest_moved = true;
    r.migration_ms = total_ms;
    r.downtime_ms = downtime_ms;
  }
  return r;
}

TEST(SoakReportTest, SummarizeGivesMinMedianMax) {
  Distribution d = Summarize({30, 10, 20, 50, 40});
  EXPECT_EQ(d.count, 5u);
  EXPECT_EQ(d.min, 10u);
  EXPECT_EQ(d.median, 30u);
  EXPECT_EQ(d.max, 50u);
  EXPECT_EQ(Summarize({}).count, 0u);
}

TEST(SoakReportTest, CountsFaultsOutcomesAndBytes) {
  SoakReport report(42, "gmem-soak --seed 42 --rounds 3");
  report.AddRound(Live(1, Fault::kNone, "migrated", 300, 40));
  report.AddRound(Live(2, Fault::kKillReceiver, "failed, source kept", 0, 0));
  report.AddRound(Live(3, Fault::kKillReceiver, "migrated", 500, 60));
  report.SetFinal("00ff", "00ff", 12.5);
  nlohmann::json j = report.ToJson();
  EXPECT_EQ(j["rounds"], 3);
  EXPECT_EQ(j["faults"]["kill-receiver"], 2);
  EXPECT_FALSE(j["faults"].contains("none"));
  EXPECT_EQ(j["outcomes"]["migrated"], 2);
  EXPECT_EQ(j["outcomes"]["failed, source kept"], 1);
  EXPECT_EQ(j["bytes_moved"], 3 << 20);
  EXPECT_EQ(j["live_migrations"]["attempted"], 3);
  EXPECT_EQ(j["live_migrations"]["guest_moved"], 2);
  EXPECT_EQ(j["migration_ms"]["min"], 300);
  EXPECT_EQ(j["migration_ms"]["max"], 500);
  EXPECT_EQ(j["downtime_ms"]["median"], 60);
  EXPECT_TRUE(j["anomalies"].empty());
  std::string text = report.SummaryText();
  EXPECT_NE(text.find("migration min/median/max   300 / 500 / 500 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("anomalies                  0"), std::string::npos) << text;
}

TEST(SoakReportTest, AnAnomalyCarriesTheSeedAndTheReplayCommand) {
  SoakReport report(9, "gmem-soak --seed 9 --rounds 40");
  report.AddAnomaly({17, "digest-mismatch", "target 1/2, source 3/4"});
  nlohmann::json j = report.ToJson();
  ASSERT_EQ(j["anomalies"].size(), 1u);
  EXPECT_EQ(j["anomalies"][0]["round"], 17);
  EXPECT_EQ(j["anomalies"][0]["seed"], 9);
  EXPECT_EQ(j["anomalies"][0]["replay"], "gmem-soak --seed 9 --rounds 40");
  std::string text = report.SummaryText();
  EXPECT_NE(text.find("round 17: digest-mismatch: target 1/2, source 3/4"), std::string::npos) << text;
  EXPECT_NE(text.find("replay: gmem-soak --seed 9 --rounds 40"), std::string::npos) << text;
}

}  // namespace
}  // namespace gmem::soak
