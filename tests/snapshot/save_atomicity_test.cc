// gmem-snapshot save never damages what is there (docs/snapshots.md, "Atomicity"): a full disk,
// kill -9, SIGINT/SIGTERM or a refused start leave an existing image byte for byte as it was and
// no temporary behind, and the VM runs again unless kill -9 made that impossible.

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <thread>

#include "tests/snapshot/snapshot_testing.h"
#include "tests/vmm/vmm_process.h"

namespace gmem::snapshot {
namespace {

using ::gmem::testing::RunTool;
using ::gmem::testing::TempDir;
using ::gmem::testing::ToolProcess;
using ::gmem::testing::ToolResult;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::ListDir;
using testing::ReadFileBytes;
using testing::VmCommand;
using testing::VmState;
using testing::WriteFileBytes;

constexpr char kTool[] = "gmem-snapshot";

class SaveAtomicityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GMEM_VMM_SKIP_WITHOUT_KVM();
    key_ = dir_.File("k.key");
    testing::WriteNewKeyFile(key_);
    images_ = dir_.File("images");
    ASSERT_EQ(mkdir(images_.c_str(), 0700), 0);
    socket_ = dir_.File("src.sock");
    auto args = migrate::testing::VmArgs(testing::SmallVm("gmem", "1", "0"), true);  // runs until quit
    args.insert(args.end(), {"--control", socket_});
    vm_ = std::make_unique<vmm::testing::VmmProcess>(args);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_EQ(VmState(socket_), "running");
  }
  void TearDown() override {
    if (vm_ == nullptr) return;
    EXPECT_TRUE(VmCommand(socket_, "quit"));
    EXPECT_EQ(vm_->Wait(10000), 0) << vm_->err();
  }

  std::vector<std::string> SaveArgs(const std::string& out, std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {"save", "--vmm", socket_, "--out", out, "--key-file", key_};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  ToolResult Save(const std::string& out, std::vector<std::string> extra = {}) const {
    return RunTool(kTool, SaveArgs(out, std::move(extra)));
  }
  // A first, good image at images/vm.img; returns its bytes.
  Bytes SaveFirst() {
    std::string out = images_ + "/vm.img";
    ToolResult first = Save(out);
    EXPECT_EQ(first.exit_code, 0) << first.err;
    Bytes bytes = ReadFileBytes(out);
    EXPECT_GT(bytes.size(), 1u << 20);
    return bytes;
  }
  // A save slow enough to be interrupted mid-write (zstd level 19), once it has written 1 MiB.
  std::unique_ptr<ToolProcess> StartSlowSave(const std::string& out) {
    auto p = std::make_unique<ToolProcess>(kTool, SaveArgs(out, {"--compress", "zstd:19"}));
    EXPECT_TRUE(testing::WaitForTempFile(images_, "vm.img", 1 << 20, 30000)) << "the save never got going";
    return p;
  }
  void ExpectUntouched(const std::string& dir, const std::string& file, const Bytes& previous) {
    EXPECT_THAT(ListDir(dir), ElementsAre("vm.img"));
    EXPECT_TRUE(ReadFileBytes(file) == previous) << "the previous image changed";
    auto verify = RunTool(kTool, {"-q", "verify", file, "--key-file", key_});
    EXPECT_EQ(verify.exit_code, 0) << verify.err;
  }

  TempDir dir_;
  std::string key_;
  std::string images_;
  std::string socket_;
  std::unique_ptr<vmm::testing::VmmProcess> vm_;
};

// How the disk fills up: a small tmpfs (needs root to mount), or a file-size limit that the save
// inherits (RLIMIT_FSIZE with SIGXFSZ ignored: write() fails with EFBIG), which works anywhere.
enum class FullDisk { kTmpfs, kFileSizeLimit };

class SaveDiskFullTest : public SaveAtomicityTest, public ::testing::WithParamInterface<FullDisk> {};

TEST_P(SaveDiskFullTest, AFailedWriteLeavesThePreviousImageAndNoTemporary) {
  Bytes previous = SaveFirst();
  std::string dir = images_;
  std::string expected_error;
  std::unique_ptr<testing::SmallTmpfs> fs;
  ToolResult r;
  if (GetParam() == FullDisk::kTmpfs) {
    // Room for the old image and a quarter of a new one.
    fs = std::make_unique<testing::SmallTmpfs>(previous.size() + previous.size() / 4);
    if (!fs->mounted()) GTEST_SKIP() << "cannot mount a tmpfs (not root?): the file-size limit case covers this";
    dir = fs->path();
    WriteFileBytes(fs->File("vm.img"), previous);
    r = Save(fs->File("vm.img"));
    expected_error = "No space left on device";
  } else {
    struct rlimit old {};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit limit = old;
    limit.rlim_cur = previous.size() / 2;
    auto old_handler = signal(SIGXFSZ, SIG_IGN);  // an ignored signal stays ignored across exec
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
    auto p = std::make_unique<ToolProcess>(kTool, SaveArgs(images_ + "/vm.img"));
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    r.exit_code = p->Wait();
    r.err = p->err();
    expected_error = "File too large";
  }
  std::string file = dir + "/vm.img";
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_THAT(r.err, MatchesRegex("gmem-snapshot: save '" + file + "': write the image: .*" + expected_error + "\n"));
  ExpectUntouched(dir, file, previous);
  EXPECT_EQ(VmState(socket_), "running");  // paused for the save, resumed after the failure
}

INSTANTIATE_TEST_SUITE_P(Ways, SaveDiskFullTest, ::testing::Values(FullDisk::kTmpfs, FullDisk::kFileSizeLimit),
                         [](const auto& info) { return info.param == FullDisk::kTmpfs ? "Tmpfs" : "FileSizeLimit"; });

TEST_F(SaveAtomicityTest, KillDashNineLeavesThePreviousImageAndNoTemporary) {
  Bytes previous = SaveFirst();
  auto p = StartSlowSave(images_ + "/vm.img");
  p->Signal(SIGKILL);
  EXPECT_EQ(p->Wait(), -1);
  // The temporary was unnamed (O_TMPFILE): it died with the process.
  ExpectUntouched(images_, images_ + "/vm.img", previous);
  // Nothing could resume the VM: it stays paused until someone does (docs/snapshots.md).
  EXPECT_EQ(VmState(socket_), "paused");
  EXPECT_TRUE(VmCommand(socket_, "resume"));
}

class SaveSignalTest : public SaveAtomicityTest, public ::testing::WithParamInterface<int> {};

TEST_P(SaveSignalTest, ASignalCancelsTheSaveAndResumesTheVm) {
  Bytes previous = SaveFirst();
  auto p = StartSlowSave(images_ + "/vm.img");
  auto start = std::chrono::steady_clock::now();
  p->Signal(GetParam());
  EXPECT_EQ(p->Wait(30000), 7) << p->err();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_THAT(p->err(), MatchesRegex("gmem-snapshot: save '" + images_ + "/vm.img': .*cancelled\n"));
  ExpectUntouched(images_, images_ + "/vm.img", previous);
  EXPECT_EQ(VmState(socket_), "running");
}

INSTANTIATE_TEST_SUITE_P(Signals, SaveSignalTest, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& info) { return info.param == SIGINT ? "SIGINT" : "SIGTERM"; });

TEST_F(SaveAtomicityTest, RefusedSavesChangeNothing) {
  Bytes previous = SaveFirst();
  std::string out = images_ + "/vm.img";
  std::string loose = dir_.File("loose.key");
  testing::WriteNewKeyFile(loose);
  ASSERT_EQ(chmod(loose.c_str(), 0644), 0);
  TempDir incoming_dir;
  std::string incoming = incoming_dir.File("in.sock");
  vmm::testing::VmmProcess incoming_vmm({"run", "--incoming", "--control", incoming});
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string error;
  };
  std::vector<Case> cases = {
      {{"save", "--vmm", socket_, "--out", out, "--key-file", loose}, 1, "has mode 0644: group or others may read it"},
      {SaveArgs(out, {"--passphrase-fd", "0"}), 1, "give only one of --key-file, --key-fd and --passphrase-fd"},
      {{"save", "--vmm", socket_, "--out", out, "--passphrase-fd", "0", "--insecure-no-encryption"}, 1,
       "cannot be combined with a key"},
      {SaveArgs(out, {"--parent", out}), 1, "--parent and --out are the same file"},
      {SaveArgs(out, {"--parent", images_ + "/none.img"}), 4, "parent '" + images_ + "/none.img'"},
      {SaveArgs(out, {"--insecure-no-encryption"}), 1, "cannot be combined with a key"},
      {SaveArgs(out, {"--compress", "zstd:99"}), 1, "--compress: expected auto, zstd, zstd:LEVEL"},
      {SaveArgs(images_ + "/missing/vm.img"), 4, "cannot open the directory '" + images_ + "/missing'"},
      {{"save", "--vmm", incoming, "--out", out, "--key-file", key_}, 1, "the VM is incoming"},
      {{"save", "--vmm", dir_.File("nothing.sock"), "--out", out, "--key-file", key_}, 4, "nothing.sock"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.error);
    auto r = RunTool(kTool, c.args, "a passphrase\n");
    EXPECT_EQ(r.exit_code, c.code) << r.err;
    EXPECT_THAT(r.err, MatchesRegex("gmem-snapshot: save '[^']*': [^\n]*\n"));
    EXPECT_THAT(r.err, HasSubstr(c.error));
    ExpectUntouched(images_, out, previous);
    EXPECT_EQ(VmState(socket_), "running");
  }
  EXPECT_EQ(VmState(incoming), "incoming");
  EXPECT_TRUE(VmCommand(incoming, "quit"));
}

}  // namespace
}  // namespace gmem::snapshot
