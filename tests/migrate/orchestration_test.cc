// Orchestration of gmem-migrate with real VMMs: `status` (query-migration) during a throttled
// migration and after its outcome, and the stall policy (--stall-timeout, --on-stall) against a
// target that stopped (SIGSTOP): the stall event, and with abort exit 7 with the source running.

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
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

  std::string MigrationUri() const { return "unix:" + vms_->dir.File("mig.sock"); }

  // recv into the target VMM, listening on MigrationUri().
  std::unique_ptr<ToolProcess> StartRecv() {
    auto recv = std::make_unique<ToolProcess>(
        "gmem-migrate", std::vector<std::string>{"recv", "--vmm", vms_->target_socket, "--from", MigrationUri(),
                                                 "--key-file", vms_->dir.File("key"), "--timeout", "30"});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // listening
    return recv;
  }

  // send to MigrationUri() on one channel, plus `extra`.
  std::vector<std::string> SendArgs(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {"send", "--vmm", vms_->source_socket, "--to", MigrationUri(),
                                     "--key-file", vms_->dir.File("key"), "--channels", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::unique_ptr<VmPair> vms_;
};

TEST_F(OrchestrationTest, StatusShowsAThrottledMigrationAndThenItsCompletion) {
  auto none = RunTool("gmem-migrate", {"status", "--vmm", vms_->source_socket});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "migration: none\n");
  EXPECT_EQ(Status()["state"], "none");
  // A file stream at 4 MiB/s: seconds of precopy; then the source stays paused with the outcome.
  ToolProcess send("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to", "file:" + vms_->dir.File("img"),
                                    "--key-file", vms_->dir.File("key"), "--bandwidth", "4M", "--json"});
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
  // The rate reflects the limit (4 MiB/s) once a second of stream went by.
  nlohmann::json rated = StatusWhen([](const nlohmann::json& s) {
    return s["state"] != "active" || s.value("rate_bytes_per_second", 0u) > 0;
  });
  if (rated["state"] == "active") {
    EXPECT_LT(rated["rate_bytes_per_second"].get<uint64_t>(), 12u << 20) << rated.dump();
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
  std::unique_ptr<ToolProcess> recv = StartRecv();
  ToolProcess send("gmem-migrate",
                   SendArgs({"--bandwidth", "2M", "--json", "--stall-timeout", "2", "--on-stall", "abort"}));
  ASSERT_TRUE(WaitForOutput(send, "\"event\":\"start\"")) << send.err();
  recv->Signal(SIGSTOP);  // the target stops reading: the stream stops moving
  int code = send.Wait(30000);
  recv->Signal(SIGCONT);
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

// Waiting for a source to connect is not a stall: only --timeout ends it (exit 4, not 7).
TEST_F(OrchestrationTest, WaitingForTheSourceIsNotAStall) {
  ToolProcess recv("gmem-migrate", {"recv", "--vmm", vms_->target_socket, "--from", MigrationUri(), "--key-file",
                                    vms_->dir.File("key"), "--timeout", "3", "--stall-timeout", "1", "--on-stall",
                                    "abort", "--json"});
  EXPECT_EQ(recv.Wait(), 4) << recv.out() << recv.err();
  EXPECT_THAT(recv.err(), HasSubstr("timed out"));
  EXPECT_EQ(recv.out().find("\"stall\""), std::string::npos) << recv.out();
}

TEST_F(OrchestrationTest, AStallWarnsOnceAndTheMigrationCompletesWhenTheTargetContinues) {
  std::unique_ptr<ToolProcess> recv = StartRecv();
  ToolProcess send("gmem-migrate", SendArgs({"--bandwidth", "4M", "--max-passes", "2", "--stall-timeout", "2"}));
  // Text mode: no events on stdout; wait until the source reports progress to its VMM.
  ASSERT_EQ(StatusWhen([](const nlohmann::json& s) { return s["state"] == "active" && s["phase"] == "precopy"; })["state"],
            "active");
  recv->Signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));
  recv->Signal(SIGCONT);
  ASSERT_EQ(send.Wait(), 0) << send.err();
  EXPECT_THAT(send.err(), MatchesRegex("gmem-migrate: send: warning: no progress for [0-9.]+ s \\(phase [a-z-]+\\)\n"));
  EXPECT_EQ(recv->Wait(), 0) << recv->err();
  auto client = VmmClient::Connect(vms_->target_socket, 2000);
  ASSERT_OK(client);
  ASSERT_OK(client->Quit());
}

// A save whose VMM stops answering (SIGSTOP) stalls; with abort it is cancelled once the VMM
// answers again: exit 7, no image, the VM running, and the VMM shows the failed save.
TEST_F(OrchestrationTest, AStalledSaveIsAStallEventAndAbortLeavesNoImage) {
  ASSERT_EQ(SourceState(), "running");  // the control socket answers: stop the VMM behind it
  ToolProcess save("gmem-snapshot", {"save", "--vmm", vms_->source_socket, "--out", vms_->dir.File("vm.img"),
                                     "--key-file", vms_->dir.File("key"), "--json", "--stall-timeout", "1",
                                     "--on-stall", "abort"});
  vms_->source->Signal(SIGSTOP);
  bool stalled = WaitForOutput(save, "\"event\":\"stall\"");
  vms_->source->Signal(SIGCONT);
  ASSERT_TRUE(stalled) << save.out() << save.err();
  ASSERT_EQ(save.Wait(), 7) << save.out() << save.err();
  EXPECT_THAT(save.out(), HasSubstr("\"action\":\"abort\""));
  EXPECT_THAT(save.err(), MatchesRegex("gmem-snapshot: save '.*/vm.img': stalled: no progress for 1 s "
                                       "\\(--on-stall abort\\): .*cancelled\n"));
  EXPECT_FALSE(std::filesystem::exists(vms_->dir.File("vm.img")));
  EXPECT_EQ(SourceState(), "running");
  nlohmann::json status = Status();
  EXPECT_EQ(status["state"], "failed") << status.dump();
  EXPECT_EQ(status["role"], "save");
}

// A restore whose incoming VMM stops answering stalls (no record applied); with abort it ends
// cancelled once the VMM answers again: exit 7, and the VM never ran.
TEST_F(OrchestrationTest, AStalledRestoreIsAStallEventAndAbortCancels) {
  auto saved = RunTool("gmem-snapshot", {"-q", "save", "--vmm", vms_->source_socket, "--out", vms_->dir.File("vm.img"),
                                         "--key-file", vms_->dir.File("key")});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  ASSERT_OK(VmmClient::Connect(vms_->target_socket, 5000));  // the incoming VMM listens
  vms_->target->Signal(SIGSTOP);
  ToolProcess restore("gmem-snapshot", {"restore", "--vmm", vms_->target_socket, "--in", vms_->dir.File("vm.img"),
                                        "--key-file", vms_->dir.File("key"), "--json", "--stall-timeout", "1",
                                        "--on-stall", "abort"});
  bool stalled = WaitForOutput(restore, "\"event\":\"stall\"");
  vms_->target->Signal(SIGCONT);
  ASSERT_TRUE(stalled) << restore.out() << restore.err();
  ASSERT_EQ(restore.Wait(), 7) << restore.out() << restore.err();
  EXPECT_THAT(restore.err(), MatchesRegex("gmem-snapshot: restore '.*/vm.img': stalled: no progress for 1 s "
                                          "\\(--on-stall abort\\): .*cancelled\n"));
  // The cancel told the incoming VMM to quit: the half-built VM never ran (no checksum line).
  EXPECT_EQ(vms_->target->Wait(10000), 0) << vms_->target->err();
  EXPECT_EQ(vms_->target->out().find("checksum="), std::string::npos) << vms_->target->out();
}

// A listening Unix socket at `path` (what a systemd .socket unit with ListenStream=PATH makes).
UniqueFd ListenUnix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  EXPECT_EQ(::listen(fd.get(), 16), 0) << std::strerror(errno);
  return fd;
}

// Starts build/bin/gmem-migrate with `args` as systemd does a socket-activated service: `listen_fd`
// as fd 3, LISTEN_FDS=`listen_fds` and LISTEN_PID the child's pid; stdout/stderr to files in `dir`.
pid_t StartActivated(int listen_fd, const std::vector<std::string>& args, const std::string& dir,
                     const std::string& listen_fds = "1") {
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").parent_path().string() + "/gmem-migrate";
  std::vector<std::string> all = {exe};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is built before fork: between fork and exec only async-signal-safe calls.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "LISTEN_", 7) != 0) env.emplace_back(*e);
  }
  env.push_back("LISTEN_FDS=" + listen_fds);
  char pid_var[32] = "LISTEN_PID=";
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(pid_var);
  envp.push_back(nullptr);
  std::string out = dir + "/recv.out", err = dir + "/recv.err";
  int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  pid_t pid = ::fork();
  if (pid != 0) {
    ::close(o);
    ::close(e);
    return pid;
  }
  char digits[16];
  int n = 0;
  for (int v = static_cast<int>(::getpid()); v > 0; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
  char* at = pid_var + 11;
  while (n > 0) *at++ = digits[--n];
  *at = '\0';
  ::dup2(o, 1);
  ::dup2(e, 2);
  if (listen_fd != 3) ::dup2(listen_fd, 3);  // dup2 clears FD_CLOEXEC on the copy
  else ::fcntl(3, F_SETFD, 0);
  ::execve(exe.c_str(), argv.data(), envp.data());
  ::_exit(127);
}

int WaitExit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(OrchestrationTest, RecvStartedBySocketActivationCompletesAMigration) {
  std::string path = vms_->dir.File("activated.sock");
  UniqueFd listener = ListenUnix(path);
  // No --from: LISTEN_FDS makes it 'systemd'. Two channels: both accepted on the inherited socket.
  pid_t recv = StartActivated(listener.get(), {"recv", "--vmm", vms_->target_socket, "--key-file",
                                               vms_->dir.File("key"), "--json"}, vms_->dir.path());
  ASSERT_GT(recv, 0);
  listener.Reset();  // the child has it (as systemd keeps its own copy)
  auto send = RunTool("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to", "unix:" + path, "--key-file",
                                       vms_->dir.File("key"), "--channels", "2", "--max-passes", "2"});
  EXPECT_EQ(send.exit_code, 0) << send.err;
  EXPECT_EQ(WaitExit(recv), 0) << ReadFile(vms_->dir.File("recv.err"));
  EXPECT_THAT(ReadFile(vms_->dir.File("recv.out")), HasSubstr("\"event\":\"complete\""));
  EXPECT_THAT(ReadFile(vms_->dir.File("recv.out")), HasSubstr("\"resumed\":true"));
  auto client = VmmClient::Connect(vms_->target_socket, 2000);
  ASSERT_OK(client);
  auto state = client->State();
  ASSERT_OK(state);
  EXPECT_EQ(*state, "running");
  ASSERT_OK(client->Quit());
}

TEST(GmemMigrateSystemdTest, SocketActivationIsCheckedBeforeAnythingElse) {
  auto absent = RunTool("gmem-migrate", {"recv", "--vmm", "/nonexistent.sock", "--from", "systemd",
                                         "--insecure-no-encryption"});
  EXPECT_EQ(absent.exit_code, 1);
  EXPECT_EQ(absent.err, "gmem-migrate: recv: --from systemd: LISTEN_FDS is not set (start recv from a socket unit: "
                        "contrib/README.md)\n");
  auto no_from = RunTool("gmem-migrate", {"recv", "--vmm", "/nonexistent.sock", "--insecure-no-encryption"});
  EXPECT_EQ(no_from.exit_code, 1);
  EXPECT_EQ(no_from.err, "gmem-migrate: recv: give --from (or start recv by systemd socket activation)\n");
  // Variables meant for another process (LISTEN_PID is not ours) are refused, as sd_listen_fds does.
  ::setenv("LISTEN_FDS", "1", 1);
  ::setenv("LISTEN_PID", "1", 1);
  auto other = RunTool("gmem-migrate", {"recv", "--vmm", "/nonexistent.sock", "--insecure-no-encryption"});
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_EQ(other.err, "gmem-migrate: recv: --from systemd: LISTEN_PID (1) is not this process\n");
  // A unit with two sockets: which one is the stream? Refused.
  gmem::testing::TempDir dir;
  UniqueFd listener = ListenUnix(dir.File("s"));
  pid_t two = StartActivated(listener.get(), {"recv", "--vmm", "/nonexistent.sock", "--insecure-no-encryption"},
                             dir.path(), "2");
  EXPECT_EQ(WaitExit(two), 1);
  EXPECT_EQ(ReadFile(dir.File("recv.err")),
            "gmem-migrate: recv: --from systemd: expected one socket (LISTEN_FDS=1), got LISTEN_FDS=2\n");
}

}  // namespace
}  // namespace gmem::migrate
