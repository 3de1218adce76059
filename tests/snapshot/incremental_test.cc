// Incremental snapshots end to end, with real gmem-vmm guests and the gmem-snapshot CLI
// (docs/snapshots.md, "Incremental snapshots"): a chain of a full image and two increments is far
// smaller than three full images and restores to the uninterrupted run's checksum in both slot
// modes; a child without its parent, a forged link and a damaged parent fail verify and restore
// with the documented exit code, and the target VM never runs.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "format/keys.h"
#include "snapshot/image_chain.h"
#include "tests/snapshot/snapshot_testing.h"
#include "tests/vmm/vmm_process.h"

namespace gmem::snapshot {
namespace {

using ::gmem::testing::RunTool;
using ::gmem::testing::TempDir;
using ::gmem::testing::ToolResult;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using migrate::testing::VmArgs;
using migrate::testing::VmPair;
using testing::Baseline;
using testing::LastJsonLine;
using testing::RestoreIntoFreshVmm;
using testing::SmallVm;
using vmm::testing::ChecksumIn;
using vmm::testing::VmmProcess;

constexpr char kTool[] = "gmem-snapshot";

// A guest whose working set is 96 pages of 32 MiB: increments stay small.
migrate::testing::VmSpec ChainVm(const std::string& slot, const std::string& steps) {
  migrate::testing::VmSpec spec = SmallVm(slot, "1", steps, "32M");
  spec.workload = "dirty:pages=96";
  return spec;
}

void LetTheGuestRun() { std::this_thread::sleep_for(std::chrono::milliseconds(300)); }

// full.img, inc1.img (parent full.img) and inc2.img (parent inc1.img) of the VM behind `socket`,
// with guest work in between; the VM is left paused after the last save.
struct Chain {
  std::string full, inc1, inc2;
  nlohmann::json saved[3];  // each save's "complete" event
};

Chain SaveChain(const std::string& socket, const std::string& dir, const std::string& key) {
  Chain c{dir + "/full.img", dir + "/inc1.img", dir + "/inc2.img", {}};
  const std::string* parents[3] = {nullptr, &c.full, &c.inc1};
  const std::string* outs[3] = {&c.full, &c.inc1, &c.inc2};
  for (int i = 0; i < 3; ++i) {
    LetTheGuestRun();
    std::vector<std::string> args = {"save", "--vmm", socket, "--out", *outs[i], "--key-file", key, "--json"};
    if (parents[i] != nullptr) args.insert(args.end(), {"--parent", *parents[i]});
    if (i == 2) args.push_back("--stop");
    ToolResult r = RunTool(kTool, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    c.saved[i] = LastJsonLine(r.out);
  }
  return c;
}

class IncrementalSnapshotTest : public ::testing::TestWithParam<const char*> {};

TEST_P(IncrementalSnapshotTest, AChainOfThreeIsSmallAndRestoresToTheUninterruptedChecksum) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  migrate::testing::VmSpec spec = ChainVm(GetParam(), "4000");
  std::string baseline = Baseline(spec);
  ASSERT_FALSE(baseline.empty());
  VmPair vms(spec);
  std::string key = vms.dir.File("k.key");
  testing::WriteNewKeyFile(key);
  Chain chain = SaveChain(vms.source_socket, vms.dir.path(), key);
  ASSERT_TRUE(testing::VmCommand(vms.source_socket, "quit"));  // the chain is the guest now
  EXPECT_EQ(vms.source->Wait(), 0);

  // Each save names its parent, and each increment stores what the guest changed, no more.
  EXPECT_TRUE(chain.saved[0]["parent"].is_null());
  EXPECT_EQ(chain.saved[1]["parent"], chain.saved[0]["stream_id"]);
  EXPECT_EQ(chain.saved[2]["parent"], chain.saved[1]["stream_id"]);
  uint64_t full_bytes = std::filesystem::file_size(chain.full);
  for (int i : {1, 2}) {
    SCOPED_TRACE(i);
    const nlohmann::json& s = chain.saved[i];
    EXPECT_GT(s.value("data_pages", uint64_t{0}), 0u);  // the guest did write in between
    EXPECT_GT(s.value("unchanged_pages", uint64_t{0}), 8192 - 1024u);
    EXPECT_LT(s.value("file_bytes", full_bytes) * 8, full_bytes) << "an increment is not 8x smaller than the full image";
  }
  auto inspect = RunTool(kTool, {"inspect", chain.inc2, "--json"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  nlohmann::json info = LastJsonLine(inspect.out);
  EXPECT_EQ(info["parent"], chain.saved[1]["stream_id"]);
  EXPECT_EQ(info["unchanged_pages"], chain.saved[2]["unchanged_pages"]);

  auto verify = RunTool(kTool, {"verify", chain.inc2, "--key-file", key, "--json"});
  ASSERT_EQ(verify.exit_code, 0) << verify.err;
  nlohmann::json verified = LastJsonLine(verify.out);
  ASSERT_EQ(verified["chain"].size(), 3u) << verify.out;
  EXPECT_EQ(verified["chain"][0]["file"], chain.full);
  EXPECT_EQ(verified["page_hashes"], true);

  // diff applies the chains: inc1 and inc2 differ by the guest's writes (and the boot area's
  // control pages the VMM writes), an image equals itself.
  auto diff = RunTool(kTool, {"diff", chain.inc1, chain.inc2, "--key-file", key, "--json"});
  EXPECT_EQ(diff.exit_code, 10) << diff.err;
  uint64_t differ = LastJsonLine(diff.out).value("differ", uint64_t{0});
  EXPECT_GT(differ, 0u);
  EXPECT_LE(differ, 96u + 512u);
  EXPECT_EQ(RunTool(kTool, {"-q", "diff", chain.inc2, chain.inc2, "--key-file", key}).exit_code, 0);

  auto restore = RunTool(kTool, {"restore", "--vmm", vms.target_socket, "--in", chain.inc2, "--key-file", key});
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  EXPECT_THAT(restore.out, HasSubstr("chain of 3 images: " + chain.full + " <- " + chain.inc1 + " <- " + chain.inc2));
  EXPECT_THAT(restore.out, HasSubstr("digest " + chain.saved[2].value("digest", std::string("?")) + ", checksum " +
                                     chain.saved[2].value("checksum", std::string("?"))));
  ASSERT_EQ(vms.target->Wait(), 0) << vms.target->err();
  EXPECT_EQ(ChecksumIn(vms.target->out()), baseline);
}

INSTANTIATE_TEST_SUITE_P(SlotModes, IncrementalSnapshotTest, ::testing::Values("gmem", "hva"));

// ---- broken chains ------------------------------------------------------------------------------

// A chain of a finite guest (a target that wrongly resumed would finish and print its checksum).
class BrokenChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GMEM_VMM_SKIP_WITHOUT_KVM();
    key_ = dir_.File("k.key");
    key_hex_ = testing::WriteNewKeyFile(key_);
    images_ = dir_.File("images");
    ASSERT_TRUE(std::filesystem::create_directory(images_));
    std::string socket = dir_.File("src.sock");
    auto args = VmArgs(ChainVm("gmem", "3000"), true);
    args.insert(args.end(), {"--control", socket});
    VmmProcess vm(args);
    chain_ = SaveChain(socket, images_, key_);
    testing::VmCommand(socket, "quit");
    vm.Wait(10000);
    ASSERT_TRUE(std::filesystem::exists(chain_.inc2));
  }

  // verify exits `code` with one line "verify 'IMAGE': <error>"; restore exits `code` saying
  // `restore_error`, and the target VM never runs: the VMM is left untouched (a failure before
  // it was contacted) or told to quit.
  void ExpectRejected(const std::string& image, std::vector<std::string> extra, int code, const std::string& error,
                      const std::string& restore_error, bool vmm_untouched) {
    std::vector<std::string> args = {"--key-file", key_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<std::string> verify = {"verify", image};
    verify.insert(verify.end(), args.begin(), args.end());
    auto v = RunTool(kTool, verify);
    EXPECT_EQ(v.exit_code, code) << v.err;
    EXPECT_THAT(v.err, MatchesRegex("gmem-snapshot: verify '" + image + "': " + error + "\n"));
    auto r = RestoreIntoFreshVmm(image, args);
    EXPECT_EQ(r.tool.exit_code, code) << r.tool.err;
    EXPECT_THAT(r.tool.err, MatchesRegex("gmem-snapshot: restore '" + image + "': .*" + restore_error + ".*\n"));
    EXPECT_EQ(r.untouched, vmm_untouched);
    EXPECT_EQ(r.vmm_exit, 0) << "the incoming VMM did not quit cleanly";
    EXPECT_THAT(r.vmm_out, Not(HasSubstr("checksum=")));  // the guest never ran
  }

  TempDir dir_;
  std::string key_, key_hex_, images_;
  Chain chain_;
};

TEST_F(BrokenChainTest, AChildWithoutItsParentFailsBeforeTheVmmIsTouched) {
  TempDir elsewhere;
  std::string orphan = elsewhere.File("inc2.img");
  std::filesystem::copy_file(chain_.inc2, orphan);
  std::string missing = "'" + orphan + "' is an increment of stream [0-9a-f]{32}, and no image in '" +
                        elsewhere.path() + "' has that stream id: .*";
  ExpectRejected(orphan, {}, 2, missing, "and no image in", true);
  // The wrong --parent-dir: the same.
  ExpectRejected(orphan, {"--parent-dir", dir_.path()}, 2, ".*and no image in '" + dir_.path() + "' has .*",
                 "and no image in", true);
  // A chain with a link missing in the middle: inc1 is gone.
  std::filesystem::copy_file(chain_.full, elsewhere.File("full.img"));
  ExpectRejected(orphan, {}, 2, missing, "and no image in", true);
  // The right --parent-dir: the whole chain verifies.
  auto verify = RunTool(kTool, {"-q", "verify", orphan, "--parent-dir", images_, "--key-file", key_});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
}

TEST_F(BrokenChainTest, AForgedLinkIsRefusedAndTheTargetNeverRuns) {
  // An image naming full.img's stream id as its parent, but not its END digest.
  testing::ImageSpec spec;
  spec.layout = testing::Layout({{0, 8192}});
  auto header = ReadImageHeader(chain_.full);
  ASSERT_OK(header);
  spec.params.parent = std::make_pair(header->stream_id, format::Digest{});
  SecretBytes key(format::kKeySize);
  ASSERT_TRUE(FromHex(key_hex_, key.span()));
  std::string forged = testing::WriteFileBytes(
      images_ + "/forged.img", testing::WriteImage(spec, format::KeySource::FromKey(std::move(key))));
  ExpectRejected(forged, {}, 2,
                 "'" + forged + "' is not the increment of '" + chain_.full +
                     "': that image has the parent's stream id but not its contents .*",
                 "not the increment of the one before it", false);
  // It has no page-hash table either (like an image of an older gmemkit): it cannot be a parent.
  // The parent is read before the VMM is contacted.
  auto save = RunTool(kTool, {"save", "--vmm", dir_.File("none.sock"), "--out", images_ + "/child.img", "--parent",
                              forged, "--key-file", key_});
  EXPECT_EQ(save.exit_code, 2) << save.err;
  EXPECT_THAT(save.err, MatchesRegex("gmem-snapshot: save '.*child.img': parent '" + forged +
                                     "': the image carries no page-hash table .*\n"));
  EXPECT_FALSE(std::filesystem::exists(images_ + "/child.img"));
}

TEST_F(BrokenChainTest, ADamagedParentFailsVerifyAndRestore) {
  Bytes full = testing::ReadFileBytes(chain_.full);
  auto spans = testing::RecordSpans(full);
  size_t i = spans.size() / 2;
  while (i < spans.size() && spans[i].type != format::RecordType::kPages) ++i;
  ASSERT_LT(i, spans.size());
  testing::WriteFileBytes(chain_.full, ::gmem::testing::FlipByte(full, spans[i].offset + spans[i].size / 2));
  ExpectRejected(chain_.inc2, {}, 3,
                 "parent '" + chain_.full + "': record " + std::to_string(i) +
                     " \\(PAGES\\) at 0x[0-9a-f]+: authentication failed",
                 chain_.full + ": receive: record " + std::to_string(i) + " \\(PAGES\\).*authentication failed",
                 false);
  // Cut short, it is truncated (2).
  testing::WriteFileBytes(chain_.full, ::gmem::testing::Truncate(full, full.size() - 10));
  ExpectRejected(chain_.inc2, {}, 2, "parent '" + chain_.full + "': .*truncated.*", "truncated", false);
}

}  // namespace
}  // namespace gmem::snapshot
