// Faults during a live migration: whatever breaks, the source VM keeps running (and finishes with
// the uninterrupted checksum) and the target VM never resumes.

#include <signal.h>

#include <chrono>
#include <future>
#include <thread>

#include "migrate/source.h"
#include "migrate/target.h"
#include "migrate/vmm_client.h"
#include "tests/migrate/migrate_testing.h"
#include "tests/migrate/relay.h"

namespace gmem::migrate {
namespace {

using ::gmem::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::NewKey;
using ::gmem::testing::ToolProcess;
using testing::VmPair;
using testing::VmSpec;
using vmm::testing::ChecksumIn;
using vmm::testing::RunForChecksum;

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/kvm", F_OK) != 0) GTEST_SKIP() << "needs /dev/kvm: runs a real KVM guest";
    baseline_ = RunForChecksum(testing::VmArgs(spec_, false));
    ASSERT_FALSE(baseline_.empty());
    vms_ = std::make_unique<VmPair>(spec_);
  }

  SourceOptions SlowSource(const std::string& uri) {
    SourceOptions options;
    options.vmm_socket = vms_->source_socket;
    options.to_uri = uri;
    options.bandwidth_bytes_per_second = 2 << 20;  // the stream takes seconds: time to break it
    options.channels = 1;                          // the relay forwards one connection
    return options;
  }

  std::future<Expected<TargetResult>> StartTarget(const std::string& uri, MigrationKey key,
                                                  bool require_memory_check = false) {
    TargetOptions options;
    options.vmm_socket = vms_->target_socket;
    options.from_uri = uri;
    options.accept_timeout_ms = 30000;
    options.require_memory_check = require_memory_check;
    return testing::StartTarget(std::move(options), key);
  }

  // The source VM ran on and finished as if nothing had happened.
  void ExpectSourceFinishes() {
    ASSERT_EQ(vms_->source->Wait(), 0) << vms_->source->err();
    EXPECT_EQ(ChecksumIn(vms_->source->out()), baseline_);
  }

  // The target VM was discarded without ever running.
  void ExpectTargetDiscarded() {
    EXPECT_EQ(vms_->target->Wait(), 0) << vms_->target->err();
    EXPECT_EQ(vms_->target->out(), "");
  }

  VmSpec spec_;
  std::string baseline_;
  std::unique_ptr<VmPair> vms_;
};

TEST_F(FaultTest, WrongKeyFailsOnBothSidesAndTheSourceRunsOn) {
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  auto target = StartTarget(uri, NewKey());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto source = MigrationSource(SlowSource(uri), NewKey()).Run();
  EXPECT_THAT(source, StatusIs(Code::kAuth, "key"));
  EXPECT_THAT(target.get(), StatusIs(Code::kAuth, "key"));
  ExpectSourceFinishes();
  ExpectTargetDiscarded();
}

TEST_F(FaultTest, FlippedByteInFlightIsRejectedAndTheTargetNeverRuns) {
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  MigrationKey key = NewKey();
  auto target = StartTarget(uri, testing::CopyKey(key));
  testing::Relay relay(vms_->dir.File("relay.sock"), vms_->dir.File("mig.sock"), {.flip_offset = 300000});
  auto source = MigrationSource(SlowSource("unix:" + vms_->dir.File("relay.sock")), std::move(key)).Run();
  EXPECT_FALSE(source.ok());
  EXPECT_THAT(target.get(), StatusIs(Code::kAuth, "authentication failed"));
  ExpectSourceFinishes();
  ExpectTargetDiscarded();
}

TEST_F(FaultTest, ConnectionCutMidStreamLeavesTheSourceRunning) {
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  MigrationKey key = NewKey();
  auto target = StartTarget(uri, testing::CopyKey(key));
  testing::Relay relay(vms_->dir.File("relay.sock"), vms_->dir.File("mig.sock"), {.cut_after = 1 << 20});
  auto source = MigrationSource(SlowSource("unix:" + vms_->dir.File("relay.sock")), std::move(key)).Run();
  EXPECT_FALSE(source.ok());
  auto result = target.get();
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kCorrupt) << result.status().ToString();  // truncated stream
  ExpectSourceFinishes();
  ExpectTargetDiscarded();
}

// No target: the error names the endpoint once (it once said "connect to X: connect to X: ...").
TEST_F(FaultTest, NoTargetListeningIsOneClearErrorAndTheSourceRunsOn) {
  std::string uri = "unix:" + vms_->dir.File("nobody.sock");
  SourceOptions options;
  options.vmm_socket = vms_->source_socket;
  options.to_uri = uri;
  auto source = MigrationSource(std::move(options), NewKey()).Run();
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), Code::kIo);
  EXPECT_EQ(source.status().message(), "connect to the target: connect to " + uri);
  ExpectSourceFinishes();
}

// A failure after the engine's own pause resumes only a VM that was running when it came: a VM
// its user had paused stays paused.
TEST_F(FaultTest, AFailedMigrationLeavesAVmItsUserPausedPaused) {
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  MigrationKey key = NewKey();
  auto client = VmmClient::Connect(vms_->source_socket);
  ASSERT_OK(client);
  ASSERT_OK(client->Pause());
  // The target requires the memory check and so refuses this source after END: past the pause.
  auto target = StartTarget(uri, testing::CopyKey(key), /*require_memory_check=*/true);
  SourceOptions options;
  options.vmm_socket = vms_->source_socket;
  options.to_uri = uri;
  auto source = MigrationSource(std::move(options), std::move(key)).Run();
  EXPECT_THAT(source, StatusIs(Code::kPeerAborted, "--verify-memory"));
  EXPECT_THAT(target.get(), StatusIs(Code::kIncompatible, "--verify-memory"));
  auto state = client->State();
  ASSERT_OK(state);
  EXPECT_EQ(*state, "paused");
  ASSERT_OK(client->Resume());
  ExpectSourceFinishes();
  ExpectTargetDiscarded();
}

// A target engine pointed at a VMM that is not incoming (here: the running source) refuses, and
// never tells that VMM to quit.
TEST_F(FaultTest, ATargetPointedAtARunningVmLeavesItRunning) {
  TargetOptions options;
  options.vmm_socket = vms_->source_socket;
  options.from_uri = "unix:" + vms_->dir.File("mig.sock");
  EXPECT_THAT(MigrationTarget(options, NewKey()).Run(), StatusIs(Code::kInvalidArgument, "not incoming"));
  ExpectSourceFinishes();
  auto client = VmmClient::Connect(vms_->target_socket);
  ASSERT_OK(client);
  ASSERT_OK(client->Quit());
  ExpectTargetDiscarded();
}

TEST_F(FaultTest, TargetKilledMidStreamLeavesTheSourceRunning) {
  MigrationKey key = NewKey();
  testing::WriteKeyFile(key, vms_->dir.File("key"));
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  ToolProcess recv("gmem-migrate", {"recv", "--vmm", vms_->target_socket, "--from", uri, "--key-file",
                                    vms_->dir.File("key")});
  auto source = std::async(std::launch::async, [&] { return MigrationSource(SlowSource(uri), std::move(key)).Run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  recv.Signal(SIGKILL);
  EXPECT_EQ(recv.Wait(), -1);
  EXPECT_FALSE(source.get().ok());
  ExpectSourceFinishes();
  // The incoming VM never got its state, so it cannot have run.
  auto client = VmmClient::Connect(vms_->target_socket);
  ASSERT_OK(client);
  auto state = client->State();
  ASSERT_OK(state);
  EXPECT_EQ(*state, "incoming");
  ASSERT_OK(client->Quit());
  ExpectTargetDiscarded();
}

TEST_F(FaultTest, SigintOnTheSourceCancelsAndTheSourceRunsOn) {
  MigrationKey key = NewKey();
  testing::WriteKeyFile(key, vms_->dir.File("key"));
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  auto target = StartTarget(uri, testing::CopyKey(key));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ToolProcess send("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to", uri, "--key-file",
                                    vms_->dir.File("key"), "--bandwidth", "2M"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  send.Signal(SIGINT);
  EXPECT_EQ(send.Wait(), 7) << send.err();
  EXPECT_THAT(send.err(), MatchesRegex("gmem-migrate: send to 'unix:.*': .*cancelled\n"));
  EXPECT_FALSE(target.get().ok());
  ExpectSourceFinishes();
  ExpectTargetDiscarded();
}

// SIGINT while the source waits for READY (the target's reply is held back by the relay): the
// source sends ABORT, resumes and exits 7; the target discards its copy.
TEST_F(FaultTest, SigintWhileWaitingForReadyAbortsAndTheSourceRunsOn) {
  MigrationKey key = NewKey();
  testing::WriteKeyFile(key, vms_->dir.File("key"));
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  auto target = StartTarget(uri, testing::CopyKey(key));
  testing::Relay relay(vms_->dir.File("relay.sock"), vms_->dir.File("mig.sock"), {.hold_reply_after = 96});
  ToolProcess send("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to",
                                    "unix:" + vms_->dir.File("relay.sock"), "--key-file", vms_->dir.File("key"),
                                    "--channels", "1", "--json"});
  // Wait until the stream is complete (the source's switchover event), then a little longer.
  for (int i = 0; i < 300 && send.out().find("\"switchover\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  send.Signal(SIGINT);
  EXPECT_EQ(send.Wait(), 7) << send.err();
  EXPECT_THAT(send.err(), HasSubstr("waiting for the target's READY: cancelled"));
  EXPECT_THAT(target.get(), StatusIs(Code::kPeerAborted, "the source was cancelled"));
  ExpectSourceFinishes();
  ExpectTargetDiscarded();
}

TEST_F(FaultTest, CliWrongKeyIsExitThreeOnBothSides) {
  testing::WriteKeyFile(NewKey(), vms_->dir.File("a"));
  testing::WriteKeyFile(NewKey(), vms_->dir.File("b"));
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  ToolProcess recv("gmem-migrate", {"recv", "--vmm", vms_->target_socket, "--from", uri, "--key-file",
                                    vms_->dir.File("a")});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto send = gmem::testing::RunTool("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to", uri,
                                                      "--key-file", vms_->dir.File("b")});
  EXPECT_EQ(send.exit_code, 3);
  EXPECT_THAT(send.err, MatchesRegex("gmem-migrate: send to 'unix:.*': [^\n]*key[^\n]*\n"));
  EXPECT_EQ(recv.Wait(), 3);
  EXPECT_THAT(recv.err(), MatchesRegex("gmem-migrate: recv from 'unix:.*': [^\n]*key[^\n]*\n"));
  ExpectSourceFinishes();
  ExpectTargetDiscarded();
}

// --passphrase-fd seals a file stream (send --to file:, recv --from file:); a wrong passphrase is
// a key error before anything reaches a VMM, and a live endpoint refuses a passphrase at once.
TEST_F(FaultTest, CliAPassphraseSealsAFileStreamAndIsRefusedForALiveOne) {
  const std::string pass = "correct horse battery staple\n";
  auto live = gmem::testing::RunTool("gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to",
                                                      "tcp:127.0.0.1:1", "--passphrase-fd", "0"}, pass);
  EXPECT_EQ(live.exit_code, 1);
  EXPECT_THAT(live.err, HasSubstr("--passphrase-fd protects file streams only"));
  std::string stream = vms_->dir.File("stream.gmem");
  auto send = gmem::testing::RunTool(
      "gmem-migrate", {"send", "--vmm", vms_->source_socket, "--to", "file:" + stream, "--passphrase-fd", "0"}, pass);
  ASSERT_EQ(send.exit_code, 0) << send.err;
  auto wrong = gmem::testing::RunTool("gmem-snapshot", {"verify", stream, "--passphrase-fd", "0"}, "battery horse\n");
  EXPECT_EQ(wrong.exit_code, 3);
  EXPECT_THAT(wrong.err, HasSubstr("wrong passphrase"));
  auto recv = gmem::testing::RunTool(
      "gmem-migrate", {"recv", "--vmm", vms_->target_socket, "--from", "file:" + stream, "--passphrase-fd", "0"}, pass);
  ASSERT_EQ(recv.exit_code, 0) << recv.err;
  auto source = VmmClient::Connect(vms_->source_socket);
  ASSERT_OK(source);
  ASSERT_OK(source->Quit());  // a file stream left it paused; the target runs the guest now
  EXPECT_EQ(vms_->source->Wait(), 0);
  ASSERT_EQ(vms_->target->Wait(), 0) << vms_->target->err();
  EXPECT_EQ(ChecksumIn(vms_->target->out()), baseline_);
}

// The source never hears READY: it resumes; the target said READY but never gets COMMIT, so it
// stays paused and reports the outcome in doubt. Only one copy ever runs.
TEST_F(FaultTest, LostReadyLeavesTheTargetPausedInDoubt) {
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  MigrationKey key = NewKey();
  auto target = StartTarget(uri, testing::CopyKey(key));
  testing::Relay relay(vms_->dir.File("relay.sock"), vms_->dir.File("mig.sock"), {.cut_reply_after = 96});
  SourceOptions options = SlowSource("unix:" + vms_->dir.File("relay.sock"));
  options.bandwidth_bytes_per_second = 0;
  auto source = MigrationSource(std::move(options), std::move(key)).Run();
  EXPECT_THAT(source, StatusIs(Code::kPeerAborted, "READY"));
  EXPECT_THAT(target.get(), StatusIs(Code::kPeerAborted, "in doubt"));
  ExpectSourceFinishes();
  auto client = VmmClient::Connect(vms_->target_socket);
  ASSERT_OK(client);
  auto state = client->State();
  ASSERT_OK(state);
  EXPECT_EQ(*state, "paused");
  // The documented resolution: the source ran on, so discard the target.
  auto resolved = gmem::testing::RunTool("gmem-migrate", {"resolve", "--vmm", vms_->target_socket, "--discard"});
  EXPECT_EQ(resolved.exit_code, 0) << resolved.err;
  EXPECT_EQ(resolved.out, "discarded the VM (it was paused)\n");
  ExpectTargetDiscarded();
}

// COMMIT reached the target but its confirmation was lost: the target runs, the source stays
// paused and reports the outcome in doubt.
TEST_F(FaultTest, LostConfirmationLeavesTheSourcePausedInDoubt) {
  std::string uri = "unix:" + vms_->dir.File("mig.sock");
  MigrationKey key = NewKey();
  auto target = StartTarget(uri, testing::CopyKey(key));
  testing::Relay relay(vms_->dir.File("relay.sock"), vms_->dir.File("mig.sock"), {.cut_reply_after = 96 + 48});
  SourceOptions options = SlowSource("unix:" + vms_->dir.File("relay.sock"));
  options.bandwidth_bytes_per_second = 0;
  auto source = MigrationSource(std::move(options), std::move(key)).Run();
  EXPECT_THAT(source, StatusIs(Code::kPeerAborted, "in doubt"));
  auto result = target.get();
  ASSERT_OK(result);
  EXPECT_TRUE(result->resumed);
  auto client = VmmClient::Connect(vms_->source_socket);
  ASSERT_OK(client);
  auto state = client->State();
  ASSERT_OK(state);
  EXPECT_EQ(*state, "paused");
  // The resolution: the target runs, so the source must not resume; discard it.
  auto refused = gmem::testing::RunTool("gmem-migrate", {"resolve", "--vmm", vms_->source_socket});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err, "gmem-migrate: resolve: give exactly one of --resume and --discard\n");
  auto resolved = gmem::testing::RunTool("gmem-migrate", {"resolve", "--vmm", vms_->source_socket, "--discard"});
  EXPECT_EQ(resolved.exit_code, 0) << resolved.err;
  EXPECT_EQ(vms_->source->Wait(), 0);
  EXPECT_EQ(vms_->source->out(), "");
  ASSERT_EQ(vms_->target->Wait(), 0) << vms_->target->err();
  EXPECT_EQ(ChecksumIn(vms_->target->out()), baseline_);
}

// Until the private-page issue lands, a VM with private pages is refused, never half-copied; the
// source keeps running and the target is discarded.
TEST(PrivatePagesTest, AVmWithPrivatePagesIsRefusedAndKeepsRunning) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  VmSpec spec;
  spec.workload = "convert";
  std::vector<std::string> coco = {"--coco", "emulated"};
  auto base_args = testing::VmArgs(spec, false);
  base_args.insert(base_args.end(), coco.begin(), coco.end());
  std::string baseline = RunForChecksum(base_args);
  ASSERT_FALSE(baseline.empty());
  gmem::testing::TempDir dir;
  auto args = testing::VmArgs(spec, true);
  args.insert(args.end(), coco.begin(), coco.end());
  args.insert(args.end(), {"--control", dir.File("src.sock")});
  vmm::testing::VmmProcess source(args);
  vmm::testing::VmmProcess target({"run", "--incoming", "--control", dir.File("dst.sock")});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the guest converts pages
  MigrationKey key = NewKey();
  TargetOptions target_options;
  target_options.vmm_socket = dir.File("dst.sock");
  target_options.from_uri = "unix:" + dir.File("mig.sock");
  target_options.accept_timeout_ms = 5000;
  auto target_run = testing::StartTarget(target_options, key);
  SourceOptions options;
  options.vmm_socket = dir.File("src.sock");
  options.to_uri = target_options.from_uri;
  auto result = MigrationSource(std::move(options), std::move(key)).Run();
  EXPECT_THAT(result, StatusIs(Code::kUnsupported, "private pages"));
  EXPECT_FALSE(target_run.get().ok());
  ASSERT_EQ(source.Wait(), 0) << source.err();
  EXPECT_EQ(ChecksumIn(source.out()), baseline);
  EXPECT_EQ(target.Wait(), 0);
  EXPECT_EQ(target.out(), "");
}

TEST(GmemMigrateSendRecvCliTest, AKeyIsRequiredUnlessInsecure) {
  auto send = gmem::testing::RunTool("gmem-migrate", {"send", "--vmm", "/nonexistent", "--to", "tcp:127.0.0.1:1"});
  EXPECT_EQ(send.exit_code, 1);
  EXPECT_EQ(send.err, "gmem-migrate: send: no key: give --key-file (see 'keygen') or --insecure-no-encryption\n");
  auto recv = gmem::testing::RunTool("gmem-migrate", {"recv", "--vmm", "/nonexistent", "--from", "tcp:127.0.0.1:1"});
  EXPECT_EQ(recv.exit_code, 1);
  EXPECT_EQ(recv.err, "gmem-migrate: recv: no key: give --key-file (see 'keygen') or --insecure-no-encryption\n");
  auto bad = gmem::testing::RunTool("gmem-migrate", {"send", "--vmm", "x", "--to", "y", "--insecure-no-encryption",
                                                     "--compress", "lz4"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("--compress: expected auto, zstd"));
  auto no_vmm = gmem::testing::RunTool("gmem-migrate", {"send", "--vmm", "/nonexistent.sock", "--to",
                                                        "tcp:127.0.0.1:1", "--insecure-no-encryption"});
  EXPECT_EQ(no_vmm.exit_code, 4);
  EXPECT_EQ(no_vmm.err,
            "gmem-migrate: send to 'tcp:127.0.0.1:1': attach to the source VMM: VMM control socket: connect to "
            "unix:/nonexistent.sock: No such file or directory\n");
}

}  // namespace
}  // namespace gmem::migrate
