// Live migration of a guest with private pages (emulated CoCo, `convert` workload converting
// pages during precopy): private pages leave the source only as the agents' sealed blobs, the
// target finishes with the uninterrupted checksum and the same attributes, and no byte that left
// the source holds the private-page canary — with image encryption on or off.

#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include "migrate/source.h"
#include "migrate/target.h"
#include "tests/migrate/migrate_testing.h"
#include "tests/migrate/relay.h"

namespace gmem::migrate {
namespace {

using testing::NewKey;
using testing::VmSpec;
using vmm::testing::ChecksumIn;
using vmm::testing::RunForChecksum;
using vmm::testing::VmmProcess;

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

struct PrivateCase {
  const char* slot;
  bool encrypted;
};

class PrivatePageMigrationTest : public ::testing::TestWithParam<PrivateCase> {};

TEST_P(PrivatePageMigrationTest, PrivatePagesTravelSealedAndTheTargetFinishesExactly) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  gmem::testing::TempDir dir;
  const std::string platform_key = dir.File("platform.key");
  ASSERT_EQ(gmem::testing::RunTool("gmem-vmm", {"platform-keygen", "--out", platform_key}).exit_code, 0);
  VmSpec spec;
  spec.workload = "convert";
  spec.slot = GetParam().slot;
  spec.steps = "4000";
  // scramble: as on SNP, a page converted to shared does not show its private contents in the
  // clear (with `preserve` the emulation would hand the host a converted page's old plaintext).
  std::vector<std::string> coco = {"--coco", "emulated", "--convert-contents", "scramble", "--platform-key",
                                   platform_key};
  auto baseline_args = testing::VmArgs(spec, false);
  baseline_args.insert(baseline_args.end(), coco.begin(), coco.end());
  std::string baseline = RunForChecksum(baseline_args);
  ASSERT_FALSE(baseline.empty());

  auto args = testing::VmArgs(spec, true);
  args.insert(args.end(), coco.begin(), coco.end());
  args.insert(args.end(), {"--control", dir.File("src.sock")});
  VmmProcess source(args);
  VmmProcess target({"run", "--incoming", "--platform-key", platform_key, "--control", dir.File("dst.sock")});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the guest converts pages

  MigrationKey key;
  if (GetParam().encrypted) {
    key = NewKey();
  } else {
    key.insecure = true;
  }
  const std::string capture = dir.File("capture.bin");
  TargetOptions target_options;
  target_options.vmm_socket = dir.File("dst.sock");
  target_options.from_uri = "unix:" + dir.File("mig.sock");
  target_options.accept_timeout_ms = 30000;
  auto target_run = std::async(std::launch::async, [&, k = testing::CopyKey(key)]() mutable {
    return MigrationTarget(target_options, std::move(k)).Run();
  });
  testing::Relay relay(dir.File("relay.sock"), dir.File("mig.sock"), {.capture_path = capture});
  SourceOptions options;
  options.vmm_socket = dir.File("src.sock");
  options.to_uri = "unix:" + dir.File("relay.sock");
  options.channels = 1;  // the relay forwards one connection: it sees every byte
  options.compression = format::Compression::kNone;
  options.verify_memory = true;  // the rebuilt memory and attributes equal the source's at pause
  auto stats = MigrationSource(std::move(options), testing::CopyKey(key)).Run();
  auto result = target_run.get();
  ASSERT_OK(stats) << source.err();
  ASSERT_OK(result) << target.err();
  EXPECT_GT(stats->private_pages, 0u);
  EXPECT_GT(result->private_pages, 0u);
  EXPECT_GT(stats->agent_round_trips, 0u);
  EXPECT_EQ(result->digest, stats->source_digest);  // memory and attribute maps, page for page

  std::ifstream in(capture, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1u << 20);
  EXPECT_EQ(Count(bytes, "GMEMKIT-PRIVATE!"), 0u) << "private plaintext left the source";
  if (!GetParam().encrypted) {
    // The check can fail: unencrypted, uncompressed shared pages carry their canary in the clear.
    EXPECT_GT(Count(bytes, "GMEMKIT-SHARED!!"), 0u);
  }
  EXPECT_EQ(source.Wait(), 0);
  ASSERT_EQ(target.Wait(), 0) << target.err();
  EXPECT_EQ(ChecksumIn(target.out()), baseline);
}

INSTANTIATE_TEST_SUITE_P(Modes, PrivatePageMigrationTest,
                         ::testing::Values(PrivateCase{"gmem", true}, PrivateCase{"hva", true},
                                           PrivateCase{"gmem", false}),
                         [](const auto& info) {
                           return std::string(info.param.slot) + (info.param.encrypted ? "_encrypted" : "_insecure");
                         });

}  // namespace
}  // namespace gmem::migrate
