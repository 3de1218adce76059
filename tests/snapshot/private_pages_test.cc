// Snapshots of a confidential guest (emulated CoCo, `convert` workload converting pages while it
// runs): private pages are stored only as blobs the guest's agent sealed under a key derived from
// the platform secret and the guest's identity; a restore on the same platform with the same
// guest identity finishes with the uninterrupted checksum and the saved attributes, anything else
// is refused before the guest runs; no byte of the image holds private plaintext.

#include <chrono>
#include <thread>

#include "base/io.h"
#include "format/image_reader.h"
#include "format/image_writer.h"
#include "tests/snapshot/snapshot_testing.h"
#include "tests/vmm/vmm_process.h"

namespace gmem::snapshot {
namespace {

using ::gmem::testing::RunTool;
using ::gmem::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using migrate::testing::VmArgs;
using testing::LastJsonLine;
using testing::ReadFileBytes;
using testing::RestoreIntoFreshVmm;
using testing::SmallVm;
using testing::VmCommand;
using testing::WriteFileBytes;
using testing::WriteNewKeyFile;
using vmm::testing::ChecksumIn;
using vmm::testing::VmmProcess;

constexpr char kTool[] = "gmem-snapshot";

size_t Count(ByteSpan haystack, std::string_view needle) {
  std::string_view text(reinterpret_cast<const char*>(haystack.data()), haystack.size());
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// A running `convert` guest with a provisioned agent, its uninterrupted checksum (not for a
// guest that runs until told to quit: steps "0"), and the platform key file every VMM of "the
// platform" gets.
class PrivateSnapshotFixture {
 public:
  explicit PrivateSnapshotFixture(const std::string& slot, const std::string& steps = "4000") {
    platform_key = dir.File("platform.key");
    auto keygen = RunTool("gmem-vmm", {"platform-keygen", "--out", platform_key});
    EXPECT_EQ(keygen.exit_code, 0) << keygen.err;
    key = dir.File("k.key");
    WriteNewKeyFile(key);
    spec = SmallVm(slot, "1", steps);
    spec.workload = "convert";
    // scramble: as on SNP, a page converted to shared does not show its private contents.
    coco = {"--coco", "emulated", "--convert-contents", "scramble", "--platform-key", platform_key};
    auto baseline_args = VmArgs(spec, false);
    baseline_args.insert(baseline_args.end(), coco.begin(), coco.end());
    if (steps != "0") baseline = vmm::testing::RunForChecksum(baseline_args);
    source_socket = dir.File("src.sock");
    auto args = VmArgs(spec, true);
    args.insert(args.end(), coco.begin(), coco.end());
    args.insert(args.end(), {"--control", source_socket});
    source = std::make_unique<VmmProcess>(args);
  }

  TempDir dir;
  std::string platform_key, key, baseline, source_socket;
  migrate::testing::VmSpec spec;
  std::vector<std::string> coco;
  std::unique_ptr<VmmProcess> source;
};

// The guest behind `socket` has made `count` conversions (and written private and shared pages).
void LetTheGuestConvert(const std::string& socket, uint64_t count = 20) {
  ASSERT_TRUE(migrate::testing::WaitForConversions(socket, count)) << "the guest made no conversions";
}

struct PrivateSnapshotCase {
  const char* slot;
  bool encrypted;
};

class PrivateSnapshotTest : public ::testing::TestWithParam<PrivateSnapshotCase> {};

TEST_P(PrivateSnapshotTest, RestoredGuestFinishesExactlyAndTheImageHoldsNoPrivatePlaintext) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  PrivateSnapshotFixture vm(GetParam().slot);
  ASSERT_FALSE(vm.baseline.empty());
  LetTheGuestConvert(vm.source_socket);
  std::vector<std::string> key_args = {"--key-file", vm.key};
  if (!GetParam().encrypted) key_args = {"--insecure-no-encryption"};
  std::string image = vm.dir.File("vm.img");
  std::vector<std::string> save_args = {"save", "--vmm", vm.source_socket, "--out", image, "--compress", "none", "--json"};
  save_args.insert(save_args.end(), key_args.begin(), key_args.end());
  auto save = RunTool(kTool, save_args);
  ASSERT_EQ(save.exit_code, 0) << save.err;
  nlohmann::json saved = LastJsonLine(save.out);
  EXPECT_GT(saved.value("private_pages", uint64_t{0}), 0u) << save.out;
  EXPECT_GT(saved.value("agent_round_trips", uint64_t{0}), 0u) << save.out;

  // No byte of the image is private plaintext; unencrypted and uncompressed, the shared pages'
  // canary is there in the clear (so this check can fail).
  Bytes bytes = ReadFileBytes(image);
  ASSERT_GT(bytes.size(), size_t{1} << 20);
  EXPECT_EQ(Count(bytes, "GMEMKIT-PRIVATE!"), 0u) << "private plaintext in the image";
  if (!GetParam().encrypted) {
    EXPECT_GT(Count(bytes, "GMEMKIT-SHARED!!"), 0u);
  }

  // The same platform and guest identity: the target's agent derives the sealing key again.
  TempDir target_dir;
  std::string target_socket = target_dir.File("dst.sock");
  VmmProcess target({"run", "--incoming", "--platform-key", vm.platform_key, "--control", target_socket});
  std::vector<std::string> restore_args = {"restore", "--vmm", target_socket, "--in", image, "--json"};
  restore_args.insert(restore_args.end(), key_args.begin(), key_args.end());
  auto restore = RunTool(kTool, restore_args);
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  nlohmann::json restored = LastJsonLine(restore.out);
  EXPECT_EQ(restored.value("private_pages", uint64_t{0}), saved.value("private_pages", uint64_t{1}));
  EXPECT_GT(restored.value("agent_round_trips", uint64_t{0}), 0u);
  // The restore compared the rebuilt VM's digest (memory and attribute map, page for page) with
  // the one the save took at pause.
  EXPECT_EQ(restored.value("digest", ""), saved.value("digest", "?"));
  ASSERT_EQ(target.Wait(), 0) << target.err();
  EXPECT_EQ(ChecksumIn(target.out()), vm.baseline);
  ASSERT_EQ(vm.source->Wait(), 0) << vm.source->err();
  EXPECT_EQ(ChecksumIn(vm.source->out()), vm.baseline);
}

INSTANTIATE_TEST_SUITE_P(Modes, PrivateSnapshotTest,
                         ::testing::Values(PrivateSnapshotCase{"gmem", true}, PrivateSnapshotCase{"hva", true},
                                           PrivateSnapshotCase{"gmem", false}),
                         [](const auto& info) {
                           return std::string(info.param.slot) + (info.param.encrypted ? "_encrypted" : "_insecure");
                         });

// One image with private pages, restored where its agent cannot derive the sealing key: another
// guest identity, another platform, no provisioned agent. Each fails with one line before the
// guest runs.
TEST(PrivateSnapshotRefusalTest, OnlyTheSameGuestOnTheSamePlatformOpensThePrivatePages) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  PrivateSnapshotFixture vm("gmem", "0");
  LetTheGuestConvert(vm.source_socket);
  std::string image = vm.dir.File("vm.img");
  auto save = RunTool(kTool, {"save", "--vmm", vm.source_socket, "--out", image, "--key-file", vm.key, "--stop"});
  ASSERT_EQ(save.exit_code, 0) << save.err;
  EXPECT_TRUE(VmCommand(vm.source_socket, "quit"));
  EXPECT_EQ(vm.source->Wait(), 0);
  std::string other_key = vm.dir.File("other-platform.key");
  ASSERT_EQ(RunTool("gmem-vmm", {"platform-keygen", "--out", other_key}).exit_code, 0);

  auto other_guest = RestoreIntoFreshVmm(image, {"--key-file", vm.key}, "",
                                         {"--platform-key", vm.platform_key, "--guest-id", "another-guest"});
  EXPECT_EQ(other_guest.tool.exit_code, 3) << other_guest.tool.err;
  EXPECT_THAT(other_guest.tool.err,
              MatchesRegex("gmem-snapshot: restore '.*': .*this VM's agent cannot open the image's private pages: "
                           ".*guest identity.*\n"));
  EXPECT_THAT(other_guest.vmm_out, Not(HasSubstr("checksum=")));

  auto other_platform = RestoreIntoFreshVmm(image, {"--key-file", vm.key}, "", {"--platform-key", other_key});
  EXPECT_EQ(other_platform.tool.exit_code, 3) << other_platform.tool.err;
  EXPECT_THAT(other_platform.tool.err, MatchesRegex("gmem-snapshot: restore '.*': .*another platform.*\n"));
  EXPECT_THAT(other_platform.vmm_out, Not(HasSubstr("checksum=")));

  auto no_agent = RestoreIntoFreshVmm(image, {"--key-file", vm.key});
  EXPECT_EQ(no_agent.tool.exit_code, 6) << no_agent.tool.err;
  EXPECT_THAT(no_agent.tool.err, MatchesRegex("gmem-snapshot: restore '.*': .*private pages.*\n"));
  EXPECT_THAT(no_agent.vmm_out, Not(HasSubstr("checksum=")));

  // The image itself is sound: verify needs no agent, and the right VM restores it.
  auto verify = RunTool(kTool, {"verify", image, "--key-file", vm.key});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  auto right = RestoreIntoFreshVmm(image, {"--key-file", vm.key}, "", {"--platform-key", vm.platform_key});
  EXPECT_EQ(right.tool.exit_code, 0) << right.tool.err;
  EXPECT_EQ(right.state_after, "running");
}

// The image as a host that holds its key could rewrite it: every record re-sealed under the same
// stream id, but the PRIVATE blob of `drop_page` left out. The stream itself is then valid.
Bytes RewriteWithoutBlob(ByteSpan image, const migrate::MigrationKey& key, uint64_t& dropped_page) {
  MemorySource source(image);
  format::ReaderOptions options;
  options.allow_insecure = key.insecure;
  auto reader = format::ImageReader::Open(source, migrate::StreamKeySource(key), options);
  EXPECT_OK(reader);
  if (!reader.ok()) return {};
  format::StreamParams params;
  params.compression = reader->header().compression;
  params.stream_id = reader->header().stream_id;  // the agents' session id derives from it
  auto keys = format::CreateStream(params, migrate::StreamKeySource(key));
  EXPECT_OK(keys);
  MemorySink sink;
  auto writer = format::ImageWriter::Create(sink, std::make_shared<const format::StreamKeys>(std::move(keys).value()), {});
  EXPECT_OK(writer);
  EXPECT_OK(writer->Begin());
  bool dropped = false;
  for (;;) {
    auto record = reader->Next();
    EXPECT_OK(record);
    if (!record.ok() || std::holds_alternative<format::EndRecord>((*record)->body)) break;
    const auto& body = (*record)->body;
    if (const auto* layout = std::get_if<format::LayoutRecord>(&body)) {
      EXPECT_OK(writer->WriteLayout(*layout));
    }
    if (const auto* attrs = std::get_if<format::AttrsRecord>(&body)) {
      EXPECT_OK(writer->WriteAttrs(*attrs));
    }
    if (const auto* pass = std::get_if<format::PassRecord>(&body)) {
      EXPECT_OK(writer->WritePass(*pass));
    }
    if (const auto* state = std::get_if<format::StateRecord>(&body)) {
      EXPECT_OK(writer->WriteState(*state));
    }
    if (const auto* pages = std::get_if<format::PagesRecord>(&body)) {
      format::PageBatchInput in{pages->region_id, pages->generation, pages->runs, {}};
      for (size_t off = 0; off < pages->data.size(); off += pages->page_size) {
        in.data.push_back(ByteSpan(pages->data).subspan(off, pages->page_size));
      }
      EXPECT_OK(writer->WritePages(in));
    }
    if (const auto* blobs = std::get_if<format::PrivateRecord>(&body)) {
      format::PrivateRecord copy = *blobs;
      if (!dropped && copy.blobs.size() > 1) {
        dropped_page = copy.blobs.back().page;
        copy.blobs.pop_back();
        dropped = true;
      }
      EXPECT_OK(writer->WritePrivate(copy));
    }
  }
  EXPECT_TRUE(dropped) << "no PRIVATE record with two blobs";
  EXPECT_OK(writer->Finish());
  return sink.bytes();
}

// A host that holds the image key leaves one private page out of an otherwise valid image: the
// image verifies, but the restoring agent finds the page missing against the saving agent's
// manifest, and the VM never runs.
TEST(PrivateSnapshotRefusalTest, AnImageMissingAPrivatePageIsRefusedByTheAgentsManifest) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  PrivateSnapshotFixture vm("gmem", "0");
  LetTheGuestConvert(vm.source_socket);
  std::string image = vm.dir.File("vm.img");
  auto save = RunTool(kTool, {"save", "--vmm", vm.source_socket, "--out", image, "--insecure-no-encryption", "--stop"});
  ASSERT_EQ(save.exit_code, 0) << save.err;
  EXPECT_TRUE(VmCommand(vm.source_socket, "quit"));
  EXPECT_EQ(vm.source->Wait(), 0);
  migrate::MigrationKey insecure;
  insecure.insecure = true;
  uint64_t page = 0;
  std::string forged = vm.dir.File("forged.img");
  WriteFileBytes(forged, RewriteWithoutBlob(ReadFileBytes(image), insecure, page));

  auto verify = RunTool(kTool, {"verify", forged, "--insecure-no-encryption"});
  EXPECT_EQ(verify.exit_code, 0) << "the rewritten stream itself is valid: " << verify.err;
  auto restore = RestoreIntoFreshVmm(forged, {"--insecure-no-encryption"}, "", {"--platform-key", vm.platform_key});
  EXPECT_EQ(restore.tool.exit_code, 3) << restore.tool.err;
  EXPECT_THAT(restore.tool.err,
              MatchesRegex("gmem-snapshot: restore '.*': rebuild: this VM's agent refused the source agent's "
                           "manifest: .*INCOMPLETE.*\n"));
  EXPECT_THAT(restore.vmm_out, Not(HasSubstr("checksum=")));
  // The untouched image restores.
  auto intact = RestoreIntoFreshVmm(image, {"--insecure-no-encryption"}, "", {"--platform-key", vm.platform_key});
  EXPECT_EQ(intact.tool.exit_code, 0) << intact.tool.err;
}

// An increment of a guest with private pages: each image is sealed in its own agent session, and
// the chain restores to the uninterrupted checksum.
TEST(PrivateSnapshotChainTest, AnIncrementChainRestoresExactly) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  PrivateSnapshotFixture vm("gmem");
  ASSERT_FALSE(vm.baseline.empty());
  LetTheGuestConvert(vm.source_socket);
  std::string full = vm.dir.File("full.img");
  std::string inc = vm.dir.File("inc.img");
  auto s0 = RunTool(kTool, {"save", "--vmm", vm.source_socket, "--out", full, "--key-file", vm.key, "--json"});
  ASSERT_EQ(s0.exit_code, 0) << s0.err;
  LetTheGuestConvert(vm.source_socket, 40);
  auto s1 = RunTool(kTool, {"save", "--vmm", vm.source_socket, "--out", inc, "--parent", full, "--key-file", vm.key,
                            "--stop", "--json"});
  ASSERT_EQ(s1.exit_code, 0) << s1.err;
  EXPECT_GT(LastJsonLine(s1.out).value("private_pages", uint64_t{0}), 0u) << s1.out;
  TempDir target_dir;
  std::string target_socket = target_dir.File("dst.sock");
  VmmProcess target({"run", "--incoming", "--platform-key", vm.platform_key, "--control", target_socket});
  auto restore = RunTool(kTool, {"restore", "--vmm", target_socket, "--in", inc, "--key-file", vm.key});
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  EXPECT_THAT(restore.out, HasSubstr("chain of 2 images"));
  ASSERT_EQ(target.Wait(), 0) << target.err();
  EXPECT_EQ(ChecksumIn(target.out()), vm.baseline);
  EXPECT_TRUE(VmCommand(vm.source_socket, "resume"));
  ASSERT_EQ(vm.source->Wait(), 0) << vm.source->err();
  EXPECT_EQ(ChecksumIn(vm.source->out()), vm.baseline);
}

// A VM with private pages and no provisioned agent cannot be saved: no image appears (an older
// one stays as it was), nothing is skipped silently, and the VM runs on.
TEST(PrivateSnapshotRefusalTest, WithoutAnAgentTheSaveIsRefusedAndTheOldImageStays) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  migrate::testing::VmSpec spec = SmallVm();
  spec.workload = "convert";
  auto baseline_args = VmArgs(spec, false);
  baseline_args.insert(baseline_args.end(), {"--coco", "emulated"});
  std::string baseline = vmm::testing::RunForChecksum(baseline_args);
  ASSERT_FALSE(baseline.empty());
  TempDir dir;
  std::string key = dir.File("key");
  WriteNewKeyFile(key);
  std::string image = dir.File("vm.img");
  const std::string text = "an older snapshot";
  const Bytes older(reinterpret_cast<const std::byte*>(text.data()),
                    reinterpret_cast<const std::byte*>(text.data()) + text.size());
  WriteFileBytes(image, older);
  std::string socket = dir.File("src.sock");
  auto args = VmArgs(spec, true);
  args.insert(args.end(), {"--coco", "emulated", "--control", socket});
  VmmProcess vm(args);
  LetTheGuestConvert(socket);
  auto save = RunTool(kTool, {"save", "--vmm", socket, "--out", image, "--key-file", key});
  EXPECT_EQ(save.exit_code, 6) << save.err;
  EXPECT_THAT(save.err, MatchesRegex("gmem-snapshot: save '.*': .*private pages.*no provisioned agent.*\n"));
  EXPECT_EQ(ReadFileBytes(image), older);
  EXPECT_THAT(testing::ListDir(dir.path()), Not(::testing::Contains(HasSubstr(".tmp-"))));
  ASSERT_EQ(vm.Wait(), 0) << vm.err();
  EXPECT_EQ(ChecksumIn(vm.out()), baseline);
}

}  // namespace
}  // namespace gmem::snapshot
