// gmem-snapshot save / restore / verify / inspect / diff end to end, with real gmem-vmm guests:
// a restored guest finishes with the checksum of an uninterrupted run; a damaged image or a wrong
// key fails verify and restore with the documented exit code, and the target VM never runs.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "migrate/vmm_client.h"
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
using migrate::testing::VmPair;
using testing::Baseline;
using testing::LastJsonLine;
using testing::ReadFileBytes;
using testing::RecordSpans;
using testing::RestoreIntoFreshVmm;
using testing::SmallVm;
using testing::VmCommand;
using testing::VmState;
using testing::WriteFileBytes;
using testing::WriteNewKeyFile;
using vmm::testing::ChecksumIn;
using vmm::testing::VmmProcess;

constexpr char kTool[] = "gmem-snapshot";

void LetTheGuestRun() { std::this_thread::sleep_for(std::chrono::milliseconds(300)); }

// ---- save -> restore -------------------------------------------------------------------------

struct RoundTripCase {
  const char* slot;
  const char* regions;
  bool stop;
};

void PrintTo(const RoundTripCase& c, std::ostream* os) {
  *os << c.slot << " slots, " << c.regions << " region(s)" << (c.stop ? ", --stop" : "");
}

class SnapshotRoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(SnapshotRoundTripTest, RestoredGuestFinishesWithTheUninterruptedChecksum) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  const RoundTripCase& c = GetParam();
  migrate::testing::VmSpec spec = SmallVm(c.slot, c.regions);
  std::string baseline = Baseline(spec);
  ASSERT_FALSE(baseline.empty());
  VmPair vms(spec);
  std::string key = vms.dir.File("k.key");
  WriteNewKeyFile(key);
  std::string image = vms.dir.File("vm.img");
  LetTheGuestRun();
  // A source that resumes after the save must still be there for the checks below: on a slow
  // build (TSan) its last steps could otherwise end before them, and a finished VMM exits. The
  // checksum does not depend on the rate; it goes back up on both copies once the checks are done.
  auto set_rate = [&](const std::string& socket, uint64_t rate) {
    auto client = migrate::VmmClient::Connect(socket);
    return client.ok() && client->Ok({{"cmd", "set-rate"}, {"rate", rate}}).ok();
  };
  if (!c.stop) {
    ASSERT_TRUE(set_rate(vms.source_socket, 20));
  }

  std::vector<std::string> args = {"save", "--vmm", vms.source_socket, "--out", image, "--key-file", key, "--json"};
  if (c.stop) args.push_back("--stop");
  auto save = RunTool(kTool, args);
  ASSERT_EQ(save.exit_code, 0) << save.err;
  EXPECT_EQ(save.err, "");
  nlohmann::json done = LastJsonLine(save.out);
  EXPECT_EQ(done.value("event", ""), "complete") << save.out;
  EXPECT_EQ(done.value("vm", ""), c.stop ? "paused" : "running");
  EXPECT_EQ(done.value("file_bytes", uint64_t{0}), static_cast<uint64_t>(ReadFileBytes(image).size()));
  EXPECT_EQ(done.value("guest_bytes", uint64_t{0}), uint64_t{64} << 20);
  std::string state = VmState(vms.source_socket);
  if (c.stop) {
    EXPECT_EQ(state, "paused");
  } else {
    EXPECT_THAT(state, ::testing::AnyOf("running", "finished"));
    // Restoring into a VMM that is not incoming (here: the running source) is refused, and that
    // VM is left alone (it still finishes below).
    auto wrong = RunTool(kTool, {"restore", "--vmm", vms.source_socket, "--in", image, "--key-file", key});
    EXPECT_EQ(wrong.exit_code, 1) << wrong.err;
    EXPECT_THAT(wrong.err, MatchesRegex("gmem-snapshot: restore '.*': the target VMM at '.*' is (running|finished), "
                                        "not incoming \\(start one with gmem-vmm run --incoming\\)\n"));
    EXPECT_TRUE(set_rate(vms.source_socket, std::stoull(spec.rate)));
  }
  EXPECT_THAT(testing::ListDir(vms.dir.path()), ::testing::Not(::testing::Contains(HasSubstr(".tmp-"))));

  // With --stop the target is restored --paused too (an orchestrator's switchover): it waits,
  // verified, and its own VMM's digest is the one at save.
  std::vector<std::string> restore_args = {"restore", "--vmm", vms.target_socket, "--in", image, "--key-file", key};
  if (c.stop) restore_args.push_back("--paused");
  auto restore = RunTool(kTool, restore_args);
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  // The rate travels with the VM: the restored copy got the slow one the source had at save.
  if (!c.stop) {
    EXPECT_TRUE(set_rate(vms.target_socket, std::stoull(spec.rate)));
  }
  // The VM that resumed is the one that was saved: same VMM digest and checksum at both ends.
  EXPECT_THAT(restore.out, HasSubstr("restored '" + image + "'"));
  EXPECT_THAT(restore.out, HasSubstr("digest " + done.value("digest", std::string("?")) + ", checksum " +
                                     done.value("checksum", std::string("?"))));
  if (c.stop) {
    EXPECT_THAT(restore.out, HasSubstr("the VM is paused (--paused)"));
    EXPECT_EQ(VmState(vms.target_socket), "paused");
    auto client = migrate::VmmClient::Connect(vms.target_socket);
    ASSERT_OK(client);
    auto digest = client->Digest();
    ASSERT_OK(digest);
    EXPECT_EQ(digest->digest, done.value("digest", std::string("?")));
    EXPECT_EQ(digest->checksum, done.value("checksum", std::string("?")));
    EXPECT_TRUE(VmCommand(vms.target_socket, "resume"));
  }
  ASSERT_EQ(vms.target->Wait(), 0) << vms.target->err();
  EXPECT_EQ(ChecksumIn(vms.target->out()), baseline);

  // The source was left as promised, and pausing it for the save changed nothing for the guest.
  if (c.stop) {
    EXPECT_TRUE(VmCommand(vms.source_socket, "resume"));
  }
  ASSERT_EQ(vms.source->Wait(), 0) << vms.source->err();
  EXPECT_EQ(ChecksumIn(vms.source->out()), baseline);
}

INSTANTIATE_TEST_SUITE_P(Modes, SnapshotRoundTripTest,
                         ::testing::Values(RoundTripCase{"gmem", "1", false}, RoundTripCase{"hva", "1", true},
                                           RoundTripCase{"gmem", "3", true}, RoundTripCase{"hva", "3", false}),
                         [](const auto& info) {
                           return std::string(info.param.slot) + "_" + info.param.regions + "regions" +
                                  (info.param.stop ? "_stop" : "");
                         });

// ---- damaged images, wrong keys ---------------------------------------------------------------

// One real image, saved once for the suite, damaged in each test.
class SnapshotDamageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access("/dev/kvm", F_OK) != 0) return;
    dir_ = new TempDir;
    key_hex_ = WriteNewKeyFile(dir_->File("k.key"));
    WriteNewKeyFile(dir_->File("other.key"));
    std::string socket = dir_->File("src.sock");
    // A finite workload: a target that wrongly resumed would finish and print its checksum.
    auto args = VmArgs(SmallVm("gmem", "1"), true);
    args.insert(args.end(), {"--control", socket});
    VmmProcess vm(args);
    LetTheGuestRun();
    save_ = new ::gmem::testing::ToolResult(
        RunTool(kTool, {"save", "--vmm", socket, "--out", dir_->File("vm.img"), "--key-file", dir_->File("k.key")}));
    VmCommand(socket, "quit");
    vm.Wait(10000);
    image_ = new Bytes(ReadFileBytes(dir_->File("vm.img")));
  }
  static void TearDownTestSuite() {
    delete image_;
    delete save_;
    delete dir_;
    image_ = nullptr;
    save_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    GMEM_VMM_SKIP_WITHOUT_KVM();
    ASSERT_EQ(save_->exit_code, 0) << save_->err;
    ASSERT_GT(image_->size(), 1u << 20);
  }

  std::string Key() const { return dir_->File("k.key"); }
  std::string Write(const std::string& name, const Bytes& bytes) const {
    return WriteFileBytes(dir_->File(name), bytes);
  }
  // The index of a PAGES record well inside the image.
  static size_t SomePagesRecord() {
    auto spans = RecordSpans(*image_);
    for (size_t i = spans.size() / 2; i < spans.size(); ++i) {
      if (spans[i].type == format::RecordType::kPages) return i;
    }
    ADD_FAILURE() << "no PAGES record";
    return 0;
  }

  // verify exits `code` with one stderr line matching `error`; restore exits `code` too, saying
  // `restore_error`, and the target VM never runs (it quits, or is left untouched).
  void ExpectRejected(const std::string& path, std::vector<std::string> key_args, int code,
                      const std::string& error, const std::string& restore_error, bool vmm_untouched) {
    std::vector<std::string> verify = {"verify", path};
    verify.insert(verify.end(), key_args.begin(), key_args.end());
    auto v = RunTool(kTool, verify);
    EXPECT_EQ(v.exit_code, code) << v.err;
    EXPECT_THAT(v.err, MatchesRegex("gmem-snapshot: verify '" + path + "': " + error + "\n"));
    auto r = RestoreIntoFreshVmm(path, key_args);
    EXPECT_EQ(r.tool.exit_code, code) << r.tool.err;
    EXPECT_THAT(r.tool.err, MatchesRegex("gmem-snapshot: restore '" + path + "': .*" + restore_error + ".*\n"));
    EXPECT_EQ(r.untouched, vmm_untouched);
    EXPECT_EQ(r.vmm_exit, 0) << "the incoming VMM did not quit cleanly";
    EXPECT_THAT(r.vmm_out, Not(HasSubstr("checksum=")));  // the guest never ran
  }

  static TempDir* dir_;
  static std::string key_hex_;
  static ::gmem::testing::ToolResult* save_;
  static Bytes* image_;
};

TempDir* SnapshotDamageTest::dir_ = nullptr;
std::string SnapshotDamageTest::key_hex_;
::gmem::testing::ToolResult* SnapshotDamageTest::save_ = nullptr;
Bytes* SnapshotDamageTest::image_ = nullptr;

TEST_F(SnapshotDamageTest, TheIntactImageVerifiesAndRestores) {
  auto v = RunTool(kTool, {"verify", dir_->File("vm.img"), "--key-file", Key()});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  auto r = RestoreIntoFreshVmm(dir_->File("vm.img"), {"--key-file", Key()});
  EXPECT_EQ(r.tool.exit_code, 0) << r.tool.err;
  EXPECT_EQ(r.state_after, "running");  // then told to quit
  EXPECT_EQ(r.vmm_exit, 0);
}

TEST_F(SnapshotDamageTest, AFlippedByteFailsAuthentication) {
  auto spans = RecordSpans(*image_);
  size_t i = SomePagesRecord();
  Bytes bad = ::gmem::testing::FlipByte(*image_, spans[i].offset + spans[i].size / 2);
  ExpectRejected(Write("flipped.img", bad), {"--key-file", Key()}, 3,
                 "record " + std::to_string(i) + " \\(PAGES\\) at 0x[0-9a-f]+: authentication failed",
                 "authentication failed", false);
}

TEST_F(SnapshotDamageTest, ATruncatedImageIsBadInput) {
  Bytes cut = ::gmem::testing::Truncate(*image_, image_->size() / 2);
  ExpectRejected(Write("cut.img", cut), {"--key-file", Key()}, 2, "record [0-9]+ .*truncated: .*", "truncated",
                 false);
  // Cut exactly before END: every record authenticates, the stream just stops.
  auto spans = RecordSpans(*image_);
  Bytes no_end = ::gmem::testing::Truncate(*image_, spans.back().offset);
  ExpectRejected(Write("no_end.img", no_end), {"--key-file", Key()}, 2, ".*truncated: stream ends before END",
                 "truncated", false);
}

TEST_F(SnapshotDamageTest, SwappedRecordsAreBadInput) {
  size_t i = SomePagesRecord();
  Bytes swapped = testing::SwapRecords(*image_, i, i + 1);
  ExpectRejected(Write("swapped.img", swapped), {"--key-file", Key()}, 2,
                 "record " + std::to_string(i) + " .*out of sequence: expected record " + std::to_string(i) +
                     ", got " + std::to_string(i + 1) + " .*",
                 "out of sequence", false);
}

TEST_F(SnapshotDamageTest, BytesAfterEndAreBadInput) {
  Bytes longer = *image_;
  longer.push_back(std::byte{0});
  ExpectRejected(Write("longer.img", longer), {"--key-file", Key()}, 2, ".*unexpected bytes after END",
                 "unexpected bytes after END", false);
}

TEST_F(SnapshotDamageTest, AWrongKeyFailsBeforeTheVmmIsTouched) {
  ExpectRejected(dir_->File("vm.img"), {"--key-file", dir_->File("other.key")}, 3, "wrong key: .*", "wrong key",
                 true);
  // An encrypted image read without a key.
  ExpectRejected(dir_->File("vm.img"), {"--insecure-no-encryption"}, 3,
                 "image is encrypted: a key file or passphrase is needed", "image is encrypted", true);
}

TEST_F(SnapshotDamageTest, InspectNeedsNoKeyAndNoCommandPrintsKeyMaterial) {
  auto text = RunTool(kTool, {"inspect", dir_->File("vm.img")});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("encryption   aes-256-gcm, key file (key id "));
  EXPECT_THAT(text.out, HasSubstr("parent       none"));
  EXPECT_THAT(text.out, HasSubstr("region 0: gpa 0x0, 16384 pages of 4096 bytes"));
  auto json = RunTool(kTool, {"inspect", dir_->File("vm.img"), "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  auto verify = RunTool(kTool, {"verify", dir_->File("vm.img"), "--key-file", Key(), "--json"});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  auto diff = RunTool(kTool, {"diff", dir_->File("vm.img"), dir_->File("vm.img"), "--key-file", Key(), "--json"});
  EXPECT_EQ(diff.exit_code, 0) << diff.err;
  ASSERT_EQ(key_hex_.size(), 64u);
  for (const auto* r : {&text, &json, &verify, &diff, save_}) {
    // Neither the key nor any 8-byte piece of it, in any case.
    for (size_t at = 0; at + 16 <= key_hex_.size(); at += 8) {
      std::string piece = key_hex_.substr(at, 16);
      std::string upper = piece;
      for (char& ch : upper) ch = static_cast<char>(toupper(ch));
      EXPECT_THAT(r->out + r->err, Not(HasSubstr(piece)));
      EXPECT_THAT(r->out + r->err, Not(HasSubstr(upper)));
    }
  }
}

// ---- diff of real saves -----------------------------------------------------------------------

TEST(SnapshotDiffEndToEndTest, SavesOfAPausedVmAreIdenticalAndDifferAfterItRuns) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  TempDir dir;
  std::string key = dir.File("k.key");
  WriteNewKeyFile(key);
  std::string socket = dir.File("src.sock");
  auto args = VmArgs(SmallVm("hva", "3", "0"), true);
  args.insert(args.end(), {"--control", socket});
  VmmProcess vm(args);
  LetTheGuestRun();
  auto a = RunTool(kTool, {"save", "--vmm", socket, "--out", dir.File("a.img"), "--key-file", key, "--stop"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  int64_t steps_a = testing::VcpuSteps(socket);
  // Paused by the user (here: by --stop): a second save leaves it paused.
  auto b = RunTool(kTool, {"save", "--vmm", socket, "--out", dir.File("b.img"), "--key-file", key, "--json",
                           "--compress", "none"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(LastJsonLine(b.out).value("vm", ""), "paused");
  EXPECT_EQ(VmState(socket), "paused");
  auto same = RunTool(kTool, {"diff", dir.File("a.img"), dir.File("b.img"), "--key-file", key});
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
  EXPECT_THAT(same.out, HasSubstr("result       identical"));

  ASSERT_TRUE(VmCommand(socket, "resume"));
  LetTheGuestRun();
  auto c = RunTool(kTool, {"save", "--vmm", socket, "--out", dir.File("c.img"), "--key-file", key, "--stop"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  int64_t steps_c = testing::VcpuSteps(socket);
  ASSERT_GT(steps_a, 0);
  ASSERT_GT(steps_c, steps_a);

  auto differ = RunTool(kTool, {"diff", dir.File("a.img"), dir.File("c.img"), "--key-file", key, "--json"});
  EXPECT_EQ(differ.exit_code, 10) << differ.err;
  nlohmann::json d = LastJsonLine(differ.out);
  ASSERT_TRUE(d.is_object()) << differ.out;
  EXPECT_FALSE(d["identical"].get<bool>());
  EXPECT_TRUE(d["state_differs"].get<bool>());
  EXPECT_TRUE(d["layout_changes"].empty());
  EXPECT_EQ(d["attr_changes"].get<uint64_t>(), 0u);
  uint64_t total = d["differ"].get<uint64_t>();
  // Each step of the dirty workload rewrites words of one page; the VMM itself writes only
  // the boot area's control pages (at most 512 pages).
  EXPECT_GT(total, 0u);
  EXPECT_LE(total, static_cast<uint64_t>(steps_c - steps_a) + 512);
  EXPECT_EQ(d["differ_shared"].get<uint64_t>(), total);
  ASSERT_EQ(d["regions"].size(), 3u);
  uint64_t sum = 0;
  for (const auto& r : d["regions"]) {
    EXPECT_LE(r["differ"].get<uint64_t>(), r["compared_pages"].get<uint64_t>());
    sum += r["differ"].get<uint64_t>();
  }
  EXPECT_EQ(sum, total);
  auto quiet = RunTool(kTool, {"-q", "diff", dir.File("c.img"), dir.File("a.img"), "--key-file", key});
  EXPECT_EQ(quiet.exit_code, 10);
  EXPECT_EQ(quiet.out, "");
  WriteNewKeyFile(dir.File("other.key"));
  auto wrong_key = RunTool(kTool, {"diff", dir.File("a.img"), dir.File("c.img"), "--key-file",
                                   dir.File("other.key")});
  EXPECT_EQ(wrong_key.exit_code, 3) << wrong_key.err;
  EXPECT_THAT(wrong_key.err, MatchesRegex("gmem-snapshot: diff: '.*a.img': wrong key: .*\n"));
  EXPECT_TRUE(VmCommand(socket, "quit"));
  EXPECT_EQ(vm.Wait(10000), 0);
}

// ---- passphrases -------------------------------------------------------------------------------

TEST(SnapshotPassphraseTest, APassphraseChainRestoresWithItAndNotWithAnother) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  migrate::testing::VmSpec spec = SmallVm("gmem", "1", "3000", "32M");
  std::string baseline = Baseline(spec);
  ASSERT_FALSE(baseline.empty());
  VmPair vms(spec);
  const std::string pass = "correct horse battery staple\n";
  std::string full = vms.dir.File("full.img");
  std::string inc = vms.dir.File("inc.img");
  LetTheGuestRun();
  auto s0 = RunTool(kTool, {"save", "--vmm", vms.source_socket, "--out", full, "--passphrase-fd", "0"}, pass);
  ASSERT_EQ(s0.exit_code, 0) << s0.err;
  LetTheGuestRun();
  // The parent is read with the same passphrase.
  auto s1 = RunTool(kTool, {"save", "--vmm", vms.source_socket, "--out", inc, "--parent", full, "--passphrase-fd",
                            "0", "--stop"},
                    pass);
  ASSERT_EQ(s1.exit_code, 0) << s1.err;
  EXPECT_TRUE(VmCommand(vms.source_socket, "quit"));
  auto inspect = RunTool(kTool, {"inspect", inc, "--json"});
  EXPECT_EQ(LastJsonLine(inspect.out).value("key_wrap", ""), "passphrase") << inspect.out;

  auto wrong_verify = RunTool(kTool, {"verify", inc, "--passphrase-fd", "0"}, "battery horse\n");
  EXPECT_EQ(wrong_verify.exit_code, 3) << wrong_verify.err;
  EXPECT_THAT(wrong_verify.err, MatchesRegex("gmem-snapshot: verify '" + inc + "': .*wrong passphrase.*\n"));
  auto wrong = RestoreIntoFreshVmm(inc, {"--passphrase-fd", "0"}, "battery horse\n");
  EXPECT_EQ(wrong.tool.exit_code, 3) << wrong.tool.err;
  EXPECT_THAT(wrong.tool.err, MatchesRegex("gmem-snapshot: restore '" + inc + "': .*wrong passphrase.*\n"));
  EXPECT_TRUE(wrong.untouched);
  EXPECT_THAT(wrong.vmm_out, Not(HasSubstr("checksum=")));
  auto keyfile = RestoreIntoFreshVmm(inc, {"--key-file", vms.dir.File("none.key")});
  EXPECT_EQ(keyfile.tool.exit_code, 4) << keyfile.tool.err;  // no such key file

  auto restore = RunTool(kTool, {"restore", "--vmm", vms.target_socket, "--in", inc, "--passphrase-fd", "0"}, pass);
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  ASSERT_EQ(vms.target->Wait(), 0) << vms.target->err();
  EXPECT_EQ(ChecksumIn(vms.target->out()), baseline);
  EXPECT_EQ(vms.source->Wait(), 0);
}

// ---- cancel -----------------------------------------------------------------------------------

class RestoreSignalTest : public ::testing::TestWithParam<int> {};

TEST_P(RestoreSignalTest, ASignalCancelsTheRestoreAndTheVmNeverRuns) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  TempDir dir;
  std::string key = dir.File("k.key");
  WriteNewKeyFile(key);
  std::string image = dir.File("vm.img");
  {
    std::string socket = dir.File("src.sock");
    auto args = VmArgs(SmallVm("gmem", "1", "3000", "32M"), true);  // finite: a resumed copy would finish
    args.insert(args.end(), {"--control", socket});
    VmmProcess vm(args);
    LetTheGuestRun();
    auto save = RunTool(kTool, {"save", "--vmm", socket, "--out", image, "--key-file", key});
    ASSERT_EQ(save.exit_code, 0) << save.err;
    VmCommand(socket, "quit");
    vm.Wait(10000);
  }
  std::string socket = dir.File("dst.sock");
  VmmProcess target({"run", "--incoming", "--control", socket});
  ASSERT_EQ(VmState(socket), "incoming");
  // Hold the VMM still, so that the restore waits for its first answer with the signal on its
  // way: once it answers, the engine has the VMM and the signal is seen at the first record.
  target.Signal(SIGSTOP);
  ::gmem::testing::ToolProcess restore(kTool, {"restore", "--vmm", socket, "--in", image, "--key-file", key});
  bool connected = testing::WaitForConnectedProcess(image, 20000);
  restore.Signal(GetParam());
  target.Signal(SIGCONT);
  ASSERT_TRUE(connected) << "the restore never connected to the VMM";
  EXPECT_EQ(restore.Wait(30000), 7) << restore.err();
  EXPECT_THAT(restore.err(), MatchesRegex("gmem-snapshot: restore '" + image + "': .*cancelled\n"));
  EXPECT_EQ(target.Wait(20000), 0) << "the incoming VMM was not told to quit: " << target.err();
  EXPECT_THAT(target.out(), Not(HasSubstr("checksum=")));  // the guest never ran
}

INSTANTIATE_TEST_SUITE_P(Signals, RestoreSignalTest, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& info) { return info.param == SIGINT ? "SIGINT" : "SIGTERM"; });

}  // namespace
}  // namespace gmem::snapshot
