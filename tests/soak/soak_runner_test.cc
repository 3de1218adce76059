// gmem-soak end to end: short soaks with faults, across network namespaces and on loopback, must
// end with zero anomalies and the uninterrupted run's checksum; a broken tool must be caught.

#include "soak/soak_runner.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/testutil/testutil.h"

namespace gmem::soak {
namespace {

using gmem::testing::RunTool;
using gmem::testing::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;

#define SKIP_WITHOUT_KVM()                                                        \
  do {                                                                            \
    if (::access("/dev/kvm", F_OK) != 0) GTEST_SKIP() << "needs /dev/kvm: runs real KVM guests"; \
  } while (0)

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return json::parse(s.str(), nullptr, false);
}

// Every round ended in a defined outcome, the guest finished with the reference checksum.
void ExpectClean(const gmem::testing::ToolResult& run, const json& report, size_t rounds) {
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_TRUE(report.is_object()) << run.out;
  EXPECT_EQ(report["rounds"], rounds);
  EXPECT_TRUE(report["anomalies"].empty()) << report["anomalies"].dump(2);
  EXPECT_EQ(report["final_checksum"], report["baseline_checksum"]);
  EXPECT_EQ(report["final_checksum"].get<std::string>().size(), 16u);
}

// Seed 40 schedules 11 kinds of fault in 14 rounds (gmem-soak --plan --rounds 14 --seed 40): a
// killed sender, receiver and save, SIGINT of a save, a stall, a target VMM killed during a restore
// (late: the kill of round 6 used to land after the restore finished and lose the guest) and
// during a migration, a bandwidth cap, a reset in the switchover, a full disk, a flipped byte and a
// connection reset.
TEST(SoakRunnerTest, AShortSoakWithEveryKindOfFaultAcrossNamespacesEndsClean) {
  SKIP_WITHOUT_KVM();
  TempDir dir;
  auto run = RunTool("gmem-soak", {"--rounds", "14", "--seed", "40", "--faults", "all", "--hosts", "netns", "--mem",
                                   "64M", "--report", dir.File("report.json"), "--work-dir", dir.File("work")});
  json report = ReadJson(dir.File("report.json"));
  ExpectClean(run, report, 14);
  if (geteuid() != 0) return;  // no namespaces and no tmpfs of our own: fewer faults
  EXPECT_EQ(report["settings"]["hosts"], "netns");
  EXPECT_GE(report["faults"].size(), 10u) << report["faults"].dump();
  EXPECT_GE(report["live_migrations"]["guest_moved"], 2);
  EXPECT_GE(report["snapshot_rounds"]["restored"], 1);
  EXPECT_THAT(run.out, HasSubstr("each in its own network namespace"));
  EXPECT_THAT(run.out, HasSubstr("anomalies                  0"));
}

TEST(SoakRunnerTest, OnLoopbackWithAllSharedMemoryAndNdjson) {
  SKIP_WITHOUT_KVM();
  TempDir dir;
  auto run = RunTool("gmem-soak", {"--rounds", "8", "--seed", "34", "--faults", "all", "--hosts", "loopback",
                                   "--workload", "dirty", "--slot", "hva", "--mem", "32M", "--json", "--work-dir",
                                   dir.File("work")});
  std::istringstream lines(run.out);
  json summary;
  int rounds = 0;
  for (std::string line; std::getline(lines, line);) {
    json e = json::parse(line, nullptr, false);
    ASSERT_TRUE(e.is_object()) << "not NDJSON: " << line;
    if (e["event"] == "round") ++rounds;
    if (e["event"] == "summary") summary = e;
  }
  EXPECT_EQ(rounds, 8);
  ExpectClean(run, summary, 8);
  EXPECT_EQ(summary["settings"]["hosts"], "loopback");
}

// A recv that ignores --paused lets the target run before the runner compares it: the soak must
// see the copy that ran on memory it could not check, say so, and exit 11.
TEST(SoakRunnerTest, ATargetThatResumesOnItsOwnIsAnAnomaly) {
  SKIP_WITHOUT_KVM();
  TempDir dir;
  std::string bin = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
  std::string tools = dir.File("tools");
  std::filesystem::create_directories(tools);
  for (const char* t : {"gmem-vmm", "gmem-snapshot"}) std::filesystem::create_symlink(bin + "/" + t, tools + "/" + t);
  {
    std::ofstream wrapper(tools + "/gmem-migrate");
    wrapper << "#!/bin/sh\n"
            << "# gmem-migrate without --paused, and slow to report: the target runs meanwhile\n"
            << "for a do shift; [ \"$a\" = --paused ] || set -- \"$@\" \"$a\"; done\n"
            << "\"" << bin << "/gmem-migrate\" \"$@\"; rc=$?\n"
            << "[ \"$1\" = recv ] && sleep 1\n"
            << "exit $rc\n";
  }
  chmod((tools + "/gmem-migrate").c_str(), 0755);
  auto run = RunTool("gmem-soak", {"--rounds", "1", "--seed", "3", "--faults", "none", "--hosts", "loopback",
                                   "--workload", "dirty", "--mem", "32M", "--rate", "400", "--tools", tools,
                                   "--report", dir.File("report.json"), "--work-dir", dir.File("work")});
  EXPECT_EQ(run.exit_code, 11) << run.out << run.err;
  json report = ReadJson(dir.File("report.json"));
  ASSERT_TRUE(report.is_object()) << run.out;
  ASSERT_FALSE(report["anomalies"].empty()) << run.out;
  EXPECT_EQ(report["anomalies"][0]["kind"], "digest-mismatch") << report["anomalies"].dump(2);
  EXPECT_EQ(report["anomalies"][0]["seed"], 3);
  EXPECT_THAT(report["anomalies"][0]["replay"].get<std::string>(), HasSubstr("gmem-soak --seed 3 --rounds 1"));
  EXPECT_THAT(run.out, HasSubstr("logs and snapshots kept in"));
}

TEST(SoakRunnerTest, BadFlagsAreOneLineUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const Case cases[] = {
      {{"--faults", "network"}, "gmem-soak: run: --faults must be none, net, proc or all, not 'network'\n"},
      {{"--hosts", "vm"}, "gmem-soak: run: --hosts must be netns or loopback\n"},
      {{"--duration", "soon"}, "gmem-soak: run: --duration: 'soon' is not a duration (e.g. 90s, 30m, 2h)\n"},
      {{"--rounds", "0"}, "gmem-soak: run: --rounds must be at least 1\n"},
      {{"--mem", "lots"}, "gmem-soak: run: "},
  };
  for (const Case& c : cases) {
    auto run = RunTool("gmem-soak", c.args);
    EXPECT_EQ(run.exit_code, 1) << run.err;
    EXPECT_THAT(run.err, ::testing::StartsWith(c.error));
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  }
  auto both = RunTool("gmem-soak", {"--rounds", "3", "--duration", "1m"});
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_THAT(both.err, HasSubstr("excludes"));
}

TEST(SoakRunnerTest, PlanPrintsTheSeedsScheduleWithoutRunningAnything) {
  auto a = RunTool("gmem-soak", {"--plan", "--rounds", "5", "--seed", "40"});
  auto b = RunTool("gmem-soak", {"--plan", "--rounds", "5", "--seed", "40"});
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_THAT(a.out, HasSubstr("round    1  live 2ch zstd:3 150ms -> hva, kill-sender at 0.89\n"));
  EXPECT_EQ(std::count(a.out.begin(), a.out.end(), '\n'), 5);
}

}  // namespace
}  // namespace gmem::soak
