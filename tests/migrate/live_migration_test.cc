// Live migration of a running guest, in-process engines against real gmem-vmm processes: the
// target finishes with the checksum of an uninterrupted run, and its digest at resume equals
// the source's at pause.

#include <chrono>
#include <future>
#include <thread>

#include "migrate/source.h"
#include "migrate/target.h"
#include "migrate/vmm_client.h"
#include "tests/migrate/migrate_testing.h"
#include "transport/sockets.h"

namespace gmem::migrate {
namespace {

using testing::NewKey;
using testing::VmPair;
using testing::VmSpec;
using vmm::testing::ChecksumIn;
using vmm::testing::RunForChecksum;

struct Outcome {
  Expected<MigrationStats> source = Status(Code::kCancelled, "not run");
  Expected<TargetResult> target = Status(Code::kCancelled, "not run");
};

// Runs both engines over unix:<dir>/mig after the guest ran for a while.
Outcome Migrate(VmPair& vms, SourceOptions source_options, const MigrationKey& key, TargetOptions target_options = {}) {
  std::string uri = "unix:" + vms.dir.File("mig.sock");
  target_options.vmm_socket = vms.target_socket;
  target_options.from_uri = uri;
  target_options.accept_timeout_ms = 30000;
  auto target = testing::StartTarget(target_options, key);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  source_options.vmm_socket = vms.source_socket;
  source_options.to_uri = uri;
  Outcome out;
  out.source = MigrationSource(std::move(source_options), testing::CopyKey(key)).Run();
  out.target = target.get();
  return out;
}

// `compared`: the source ran with verify_memory, so both digests exist and are equal.
void ExpectMigrated(VmPair& vms, const Outcome& out, const std::string& baseline, bool compared = true) {
  ASSERT_OK(out.source) << vms.source->err();
  ASSERT_OK(out.target) << vms.target->err();
  EXPECT_TRUE(out.source->acknowledged);
  EXPECT_TRUE(out.target->resumed);
  EXPECT_EQ(out.source->source_digest.digest.empty(), !compared);
  EXPECT_EQ(out.source->source_digest, out.target->digest);
  EXPECT_EQ(vms.source->Wait(), 0) << vms.source->err();
  EXPECT_EQ(vms.source->out(), "");  // told to quit: it never finished here
  ASSERT_EQ(vms.target->Wait(), 0) << vms.target->err();
  EXPECT_EQ(ChecksumIn(vms.target->out()), baseline);
}

struct LiveCase {
  const char* slot;
  const char* regions;
  format::Compression compression;
  uint16_t channels;
};

void PrintTo(const LiveCase& c, std::ostream* os) {
  *os << c.slot << ", " << c.regions << " regions, "
      << (c.compression == format::Compression::kZstd ? "zstd" : "no compression") << ", " << c.channels
      << " channel(s)";
}

class LiveMigrationTest : public ::testing::TestWithParam<LiveCase> {};

TEST_P(LiveMigrationTest, TargetFinishesWithTheUninterruptedChecksum) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  VmSpec spec;
  spec.slot = GetParam().slot;
  spec.regions = GetParam().regions;
  std::string baseline = RunForChecksum(testing::VmArgs(spec, false));
  ASSERT_FALSE(baseline.empty());
  VmPair vms(spec);
  SourceOptions options;
  options.compression = GetParam().compression;
  options.channels = GetParam().channels;
  options.verify_memory = true;
  Outcome out = Migrate(vms, std::move(options), NewKey());
  ExpectMigrated(vms, out, baseline);
  if (HasFailure()) return;
  EXPECT_EQ(out.source->channels, GetParam().channels);
  EXPECT_EQ(out.target->channels, GetParam().channels);
  EXPECT_EQ(out.target->wire_bytes, out.source->wire_bytes);
  // Pass 1 skipped the zero pages; the final pass is marked.
  ASSERT_GE(out.source->passes.size(), 2u);
  EXPECT_GT(out.source->passes.front().zero_pages, 0u);
  EXPECT_GT(out.source->passes.front().windows, 0u);  // timed for the downtime estimate
  EXPECT_TRUE(out.source->passes.back().final);
  EXPECT_GT(out.source->wire_bytes, 0u);
  if (GetParam().compression == format::Compression::kZstd) {
    EXPECT_GT(out.source->compression_ratio(), 1.2);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Modes, LiveMigrationTest,
    ::testing::Values(LiveCase{"gmem", "1", format::Compression::kZstd, 1},
                      LiveCase{"hva", "1", format::Compression::kZstd, 1},
                      LiveCase{"gmem", "1", format::Compression::kZstd, 2},
                      LiveCase{"hva", "1", format::Compression::kZstd, 2},
                      LiveCase{"gmem", "1", format::Compression::kNone, 2},
                      LiveCase{"hva", "1", format::Compression::kNone, 1},
                      LiveCase{"gmem", "3", format::Compression::kZstd, 2},
                      LiveCase{"hva", "3", format::Compression::kZstd, 1}),
    [](const auto& info) {
      return std::string(info.param.slot) + "_" + info.param.regions + "regions_" +
             (info.param.compression == format::Compression::kZstd ? "zstd_" : "raw_") +
             std::to_string(info.param.channels) + "ch";
    });

// A guest that dirties memory faster than the (throttled) link carries it: precopy cannot
// converge, and something else must end it.
class LiveMigrationLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GMEM_VMM_SKIP_WITHOUT_KVM();
    spec_.mem = "16M";
    spec_.slot = "hva";
    spec_.rate = "4000";
    spec_.steps = "40000";
    baseline_ = RunForChecksum(testing::VmArgs(spec_, false));
    ASSERT_FALSE(baseline_.empty());
    vms_ = std::make_unique<VmPair>(spec_);
  }
  static SourceOptions ThrottledOptions() {
    SourceOptions options;
    options.bandwidth_bytes_per_second = 3 << 20;
    return options;
  }
  // The migrated guest has seconds of rate-limited steps left: let it finish at full speed
  // (set-rate does not change the checksum).
  void FinishFast() {
    auto target = VmmClient::Connect(vms_->target_socket);
    ASSERT_OK(target);
    ASSERT_OK(target->Ok({{"cmd", "set-rate"}, {"rate", 0}}));
  }
  VmSpec spec_;
  std::string baseline_;
  std::unique_ptr<VmPair> vms_;
};

// The pass limit ends precopy, and the result is still exact.
TEST_F(LiveMigrationLimitTest, PassLimitEndsPrecopyWhenTheLinkIsTooSlow) {
  SourceOptions options = ThrottledOptions();
  options.convergence.max_passes = 2;
  options.convergence.downtime_ms = 50;
  options.verify_memory = true;
  Outcome out = Migrate(*vms_, std::move(options), NewKey());
  if (out.target.ok()) FinishFast();
  ExpectMigrated(*vms_, out, baseline_);
  if (HasFailure()) return;
  EXPECT_TRUE(out.source->pass_limit_hit);
  EXPECT_EQ(out.source->stop_reason, "pass-limit");
  EXPECT_EQ(out.source->passes.size(), 3u);  // two precopy passes and the final one
}

// With no pass limit to speak of, the dirty set stops shrinking and the stall detection ends
// precopy after a few passes instead of thirty; the result is still exact.
TEST_F(LiveMigrationLimitTest, StallDetectionEndsPrecopyOfAGuestThatOutrunsTheLink) {
  SourceOptions options = ThrottledOptions();
  options.convergence.downtime_ms = 1;
  options.convergence.stall_passes = 2;
  Outcome out = Migrate(*vms_, std::move(options), NewKey());
  if (out.target.ok()) FinishFast();
  ExpectMigrated(*vms_, out, baseline_, /*compared=*/false);
  if (HasFailure()) return;
  EXPECT_EQ(out.source->stop_reason, "stalled");
  EXPECT_FALSE(out.source->pass_limit_hit);
  EXPECT_LT(out.source->passes.size(), 10u);
}

// By default no digest is compared (it would put a hash of all memory into the downtime): the
// authenticated stream and END's totals are the check, and the result is just as exact.
TEST(LiveMigrationMemoryCheckTest, WithoutTheMemoryCheckTheResultIsStillExact) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  VmSpec spec;
  spec.slot = "gmem";
  std::string baseline = RunForChecksum(testing::VmArgs(spec, false));
  ASSERT_FALSE(baseline.empty());
  VmPair vms(spec);
  Outcome out = Migrate(vms, SourceOptions{}, NewKey());
  ExpectMigrated(vms, out, baseline, /*compared=*/false);
  if (HasFailure()) return;
  EXPECT_TRUE(out.target->digest.digest.empty());
  EXPECT_LT(out.source->downtime_ms, 2000u);  // sanity only: tests check correctness, not time
}

// A target that requires the check refuses a source that does not offer it, before READY: the
// source resumes and finishes the workload itself; the target never runs.
TEST(LiveMigrationMemoryCheckTest, ATargetThatRequiresTheCheckRefusesASourceWithoutIt) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  VmSpec spec;
  std::string baseline = RunForChecksum(testing::VmArgs(spec, false));
  ASSERT_FALSE(baseline.empty());
  VmPair vms(spec);
  TargetOptions target_options;
  target_options.require_memory_check = true;
  Outcome out = Migrate(vms, SourceOptions{}, NewKey(), target_options);
  EXPECT_THAT(out.target.status(), ::gmem::testing::StatusIs(Code::kIncompatible, "--verify-memory"));
  EXPECT_THAT(out.source.status(), ::gmem::testing::StatusIs(Code::kPeerAborted, "--verify-memory"));
  ASSERT_EQ(vms.source->Wait(), 0) << vms.source->err();
  EXPECT_EQ(ChecksumIn(vms.source->out()), baseline);
  EXPECT_EQ(vms.target->Wait(), 0);
  EXPECT_EQ(vms.target->out(), "");  // discarded: never ran, never finished
}

// `gmem-migrate recv --paused`: the target commits and owns the guest but waits, paused, with the
// source's digest at pause (--verify-memory reports it), until its orchestrator resumes it (here:
// over TCP, both tools).
TEST(LiveMigrationCliTest, RecvPausedLeavesTheCommittedVmPausedWithTheSourcesDigest) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  VmSpec spec;
  std::string baseline = RunForChecksum(testing::VmArgs(spec, false));
  ASSERT_FALSE(baseline.empty());
  VmPair vms(spec);
  testing::WriteKeyFile(NewKey(), vms.dir.File("key"));
  uint16_t free_port = 0;
  {
    auto probe = transport::Listener::Tcp("127.0.0.1", 0);  // closed again: recv listens there
    ASSERT_OK(probe);
    free_port = probe->port();
  }
  std::string uri = "tcp:127.0.0.1:" + std::to_string(free_port);
  ::gmem::testing::ToolProcess recv("gmem-migrate", {"recv", "--vmm", vms.target_socket, "--from", uri, "--key-file",
                                                     vms.dir.File("key"), "--paused", "--json"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto send = ::gmem::testing::RunTool("gmem-migrate", {"send", "--vmm", vms.source_socket, "--to", uri, "--key-file",
                                                        vms.dir.File("key"), "--verify-memory", "--json"});
  ASSERT_EQ(send.exit_code, 0) << send.err;
  ASSERT_EQ(recv.Wait(), 0) << recv.err();
  auto sent = nlohmann::json::parse(send.out.substr(send.out.rfind('{')));
  auto received = nlohmann::json::parse(recv.out().substr(recv.out().rfind('{')));
  EXPECT_EQ(received["resumed"], false);
  EXPECT_EQ(vms.source->Wait(), 0) << vms.source->err();  // committed: the source quit
  auto target = VmmClient::Connect(vms.target_socket);
  ASSERT_OK(target);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto state = target->State();
  ASSERT_OK(state);
  EXPECT_EQ(*state, "paused");
  auto digest = target->Digest();
  ASSERT_OK(digest);
  EXPECT_EQ(digest->digest, sent["digest"]);
  EXPECT_EQ(digest->checksum, sent["checksum"]);
  ASSERT_OK(target->Resume());
  ASSERT_EQ(vms.target->Wait(), 0) << vms.target->err();
  EXPECT_EQ(ChecksumIn(vms.target->out()), baseline);
}

// file: streams have nobody to acknowledge: the source stays paused, and the stream read back
// later rebuilds the same VM.
TEST(LiveMigrationFileTest, AFileStreamRebuildsTheVmAndLeavesTheSourcePaused) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  VmSpec spec;
  spec.regions = "2";
  std::string baseline = RunForChecksum(testing::VmArgs(spec, false));
  ASSERT_FALSE(baseline.empty());
  VmPair vms(spec);
  MigrationKey key = NewKey();
  std::string uri = "file:" + vms.dir.File("stream.gmem");
  SourceOptions source_options;
  source_options.vmm_socket = vms.source_socket;
  source_options.to_uri = uri;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto stats = MigrationSource(std::move(source_options), testing::CopyKey(key)).Run();
  ASSERT_OK(stats);
  EXPECT_FALSE(stats->acknowledged);
  EXPECT_EQ(stats->channels, 1);
  auto source = VmmClient::Connect(vms.source_socket);
  ASSERT_OK(source);
  auto state = source->State();
  ASSERT_OK(state);
  EXPECT_EQ(*state, "paused");

  TargetOptions target_options;
  target_options.vmm_socket = vms.target_socket;
  target_options.from_uri = uri;
  auto result = MigrationTarget(target_options, testing::CopyKey(key)).Run();
  ASSERT_OK(result);
  EXPECT_EQ(result->digest, stats->source_digest);
  ASSERT_OK(source->Quit());
  EXPECT_EQ(vms.source->Wait(), 0);
  ASSERT_EQ(vms.target->Wait(), 0) << vms.target->err();
  EXPECT_EQ(ChecksumIn(vms.target->out()), baseline);
}

}  // namespace
}  // namespace gmem::migrate
