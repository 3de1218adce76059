// Orchestration of gmem-migrate with real VMMs: `status` (query-migration) during a throttled
// migration and after its outcome, and the stall policy (--stall-timeout, --on-stall) against a
// target that stopped (SIGSTOP): the stall event, and with abort exit 7 with the source running.

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "migrate/vmm_client.h"
#include "tests/migrate/migrate_testing.h"

namespace gmem::migrate {
namespace {

using ::gmem::testing::RunTool;
using ::gmem::testing::ToolProcess;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::VmPair;
using testing::VmSpec;

// docs/events.md: the fields each gmem-migrate send event always carries (besides event, schema).
const std::map<std::string, std::vector<std::string>>& SendEventFields() {
  static const auto* fields = new std::map<std::string, std::vector<std::string>>{
      {"start", {"pages"}},
      {"pass", {"pass", "final", "dirty_pages", "data_pages", "zero_pages", "raw_bytes", "wire_bytes", "elapsed_us"}},
      {"switchover", {"reason", "dirty_pages", "estimate_ms"}},
      {"stall", {"idle_ms", "timeout_s", "action", "phase", "pass", "bytes_sent"}},
      {"complete", {"passes", "channels", "wire_bytes", "raw_bytes", "data_pages", "zero_pages", "private_pages",
                    "agent_round_trips", "agent_ms", "compression_ratio", "pages_records", "zstd_records",
                    "downtime_ms", "total_ms", "pass_limit_hit", "stop_reason", "estimated_downtime_ms",
                    "acknowledged", "digest", "checksum"}},
      {"error", {"code", "message"}},
  };
  return *fields;
}

// Checks every line of `out` against SendEventFields; returns the event types in order.
std::vector<std::string> CheckSendEvents(const std::string& out) {
  std::vector<std::string> types;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    nlohmann::json event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(event.is_object()) << "not a JSON object: " << line;
    if (!event.is_object()) continue;
    EXPECT_EQ(event.value("schema", 0), 1) << line;
    std::string type = event.value("event", std::string());
    types.push_back(type);
    auto it = SendEventFields().find(type);
    EXPECT_NE(it, SendEventFields().end()) << "undocumented event: " << line;
    if (it == SendEventFields().end()) continue;
    for (const std::string& field : it->second) EXPECT_TRUE(event.contains(field)) << field << " missing: " << line;
  }
  return types;
}

class OrchestrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/kvm", F_OK) != 0) GTEST_SKIP() << "needs /dev/kvm: runs a real KVM guest";
    VmSpec spec;
    spec.steps = "100000000";  // runs for as long as the test needs; quit at the end
    vms_ = std::make_unique<VmPair>(spec);
    testing::WriteKeyFile(testing::NewKey(), vms_->dir.File("key"));
  }

  nlohmann::json Status() {
    auto r = RunTool("gmem-migrate", {"status", "--vmm", vms_->source_socket, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }

  // Polls `status --json` until `done` says yes (up to 30 s); the last answer.
  template <typename Pred>
  nlohmann::json StatusWhen(Pred done) {
    nlohmann::json s;
    for (int i = 0; i < 300; ++i) {
      s = Status();
      if (done(s)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return s;
  }

  std::string SourceState() {
    auto client = VmmClient::Connect(vms_->source_socket, 2000);
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return "";
    auto state = client->State();
    return state.ok() ? *state : state.status().ToString();
  }

  // Waits (up to 30 s) until `p`'s stdout holds `text`.
  static bool WaitForOutput(const ToolProcess& p, const std::string& text) {
    for (int i = 0; i < 300; ++i) {
      if (p.out().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::unique_ptr<VmPair> vms_;
};

TEST_F(OrchestrationTest, StatusShowsAThrottledMigrationAndThenItsCompletion) {
  auto none = RunTool("gmem-migrate", {"status", "--vmm", vms_->source_socket});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "migration: none\n");
  EXPECT_EQ(Status()["state"], "none");
  // A file stream at 1 MiB/s: seconds of precopy; then the source stays paused with the outcome.
  ToolProcess send("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to", "file:" + vms_->dir.File("img"),
                                    "--key-file", vms_->dir.File("key"), "--bandwidth", "1M", "--json"});
  nlohmann::json active = StatusWhen([](const nlohmann::json& s) {
    return s["state"] == "active" && s["phase"] == "precopy" && s.value("bytes_sent", 0u) > 0;
  });
  ASSERT_EQ(active["state"], "active") << active.dump();
  EXPECT_EQ(active["event"], "status");
  EXPECT_EQ(active["schema"], 1);
  EXPECT_EQ(active["role"], "send");
  EXPECT_GE(active["pass"].get<uint64_t>(), 1u);
  EXPECT_GT(active["dirty_pages"].get<uint64_t>(), 0u);
  EXPECT_LT(active["age_ms"].get<uint64_t>(), 3000u);  // published every 0.5 s
  for (const char* key : {"bytes_remaining", "rate_bytes_per_second", "expected_downtime_ms"}) {
    EXPECT_TRUE(active[key].is_number_unsigned()) << key << " in " << active.dump();
  }
  auto text = RunTool("gmem-migrate", {"status", "--vmm", vms_->source_socket});
  EXPECT_THAT(text.out, MatchesRegex("migration: active \\(send\\), phase [a-z-]+, pass [0-9]+: [0-9.]+ MiB sent, "
                                     "[0-9.]+ MiB remaining \\([0-9]+ dirty pages\\), [0-9.]+ MiB/s, expected "
                                     "downtime [^;]+; reported [0-9.]+ s ago\n"));
  // The rate reflects the limit (1 MiB/s) once a second of stream went by.
  nlohmann::json rated = StatusWhen([](const nlohmann::json& s) {
    return s["state"] != "active" || s.value("rate_bytes_per_second", 0u) > 0;
  });
  if (rated["state"] == "active") {
    EXPECT_LT(rated["rate_bytes_per_second"].get<uint64_t>(), 3u << 20) << rated.dump();
  }
  ASSERT_EQ(send.Wait(), 0) << send.err();
  std::vector<std::string> types = CheckSendEvents(send.out());
  ASSERT_GE(types.size(), 4u);
  EXPECT_EQ(types.front(), "start");
  EXPECT_EQ(types.back(), "complete");
  EXPECT_NE(std::find(types.begin(), types.end(), "switchover"), types.end());
  nlohmann::json completed = Status();
  EXPECT_EQ(completed["state"], "completed") << completed.dump();
  EXPECT_EQ(completed["phase"], "done");
  EXPECT_EQ(completed["bytes_remaining"], 0);
  EXPECT_GT(completed["bytes_sent"].get<uint64_t>(), 0u);
  EXPECT_FALSE(completed.contains("error"));
  EXPECT_EQ(SourceState(), "paused");  // a file stream leaves the source paused
}

TEST_F(OrchestrationTest, StatusShowsAFailedMigrationWithItsErrorAndTheSourceRuns) {
  ToolProcess send("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to", "file:" + vms_->dir.File("img"),
                                    "--key-file", vms_->dir.File("key"), "--bandwidth", "1M", "--json"});
  ASSERT_EQ(StatusWhen([](const nlohmann::json& s) { return s["state"] == "active"; })["state"], "active");
  send.Signal(SIGINT);
  ASSERT_EQ(send.Wait(), 7) << send.err();
  nlohmann::json failed = Status();
  EXPECT_EQ(failed["state"], "failed") << failed.dump();
  EXPECT_THAT(failed["error"].get<std::string>(), HasSubstr("cancelled"));
  auto text = RunTool("gmem-migrate", {"status", "--vmm", vms_->source_socket});
  EXPECT_THAT(text.out, MatchesRegex("migration: failed \\(send\\): .*cancelled; reported [0-9.]+ s ago\n"));
  EXPECT_EQ(SourceState(), "running");
}

TEST_F(OrchestrationTest, AStalledTargetIsAStallEventAndAbortCancelsWithTheSourceRunning) {
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  ToolProcess recv("gmem-migrate", {"recv", "--vmm", vms_->target_socket, "--from", uri, "--key-file",
                                    vms_->dir.File("key"), "--timeout", "30"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ToolProcess send("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to", uri, "--key-file",
                                    vms_->dir.File("key"), "--channels", "1", "--bandwidth", "2M", "--json",
                                    "--stall-timeout", "2", "--on-stall", "abort"});
  ASSERT_TRUE(WaitForOutput(send, "\"event\":\"start\"")) << send.err();
  recv.Signal(SIGSTOP);  // the target stops reading: the stream stops moving
  int code = send.Wait(30000);
  recv.Signal(SIGCONT);
  ASSERT_EQ(code, 7) << send.out() << send.err();
  std::vector<std::string> types = CheckSendEvents(send.out());
  EXPECT_NE(std::find(types.begin(), types.end(), "stall"), types.end());
  EXPECT_EQ(types.back(), "error");
  EXPECT_THAT(send.out(), HasSubstr("\"action\":\"abort\""));
  EXPECT_THAT(send.out(), HasSubstr("\"event\":\"stall\""));
  EXPECT_THAT(send.err(), MatchesRegex("gmem-migrate: send to 'unix:.*': stalled: no progress for 2 s "
                                       "\\(--on-stall abort\\): .*cancelled\n"));
  EXPECT_EQ(SourceState(), "running");
  EXPECT_EQ(Status()["state"], "failed");
}

TEST_F(OrchestrationTest, AStallWarnsOnceAndTheMigrationCompletesWhenTheTargetContinues) {
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  ToolProcess recv("gmem-migrate", {"recv", "--vmm", vms_->target_socket, "--from", uri, "--key-file",
                                    vms_->dir.File("key"), "--timeout", "30"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ToolProcess send("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to", uri, "--key-file",
                                    vms_->dir.File("key"), "--channels", "1", "--bandwidth", "4M",
                                    "--max-passes", "2", "--stall-timeout", "2"});
  // Text mode: no events on stdout; wait until the source reports progress to its VMM.
  ASSERT_EQ(StatusWhen([](const nlohmann::json& s) { return s["state"] == "active" && s["phase"] == "precopy"; })["state"],
            "active");
  recv.Signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));
  recv.Signal(SIGCONT);
  ASSERT_EQ(send.Wait(), 0) << send.err();
  EXPECT_THAT(send.err(), MatchesRegex("gmem-migrate: send: warning: no progress for [0-9.]+ s \\(phase [a-z-]+\\)\n"));
  EXPECT_EQ(recv.Wait(), 0) << recv.err();
  auto client = VmmClient::Connect(vms_->target_socket, 2000);
  ASSERT_OK(client);
  ASSERT_OK(client->Quit());
}

}  // namespace
}  // namespace gmem::migrate
