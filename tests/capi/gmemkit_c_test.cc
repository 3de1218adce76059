// Tests of the C API (capi/gmemkit.h): handles and keys, error codes and messages, and snapshot
// save/restore through callbacks, with a fake VMM whose memory is real guest_memfds (the tests
// that need them skip where /dev/kvm is absent) and whose callbacks can be told to fail.

#include "gmemkit.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <atomic>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "memory/guest_memfd.h"
#include "memory/kvm_system.h"
#include "memory/kvm_uapi.h"
#include "memory/vm.h"
#include "tests/capi/capi_testing.h"
#include "tests/testutil/testutil.h"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kRegionBytes[2] = {uint64_t{2} << 20, uint64_t{1} << 20};
constexpr uint64_t kRegionGpa[2] = {0, uint64_t{1} << 32};
constexpr uint64_t kGmemFlags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

// A VMM with a KVM VM, two guest_memfd regions, a state blob, a run state and counters; each
// callback can be made to fail with an errno (VmmBasics). REQUIRES: /dev/kvm.
struct FakeVm : gmem::capi_testing::VmmBasics {
  explicit FakeVm(int state) : VmmBasics(state, "vcpu0: rip=0x1000 rsp=0x8000"), vm(gmem::capi_testing::NewKvmVm()) {
    for (int r = 0; r < 2; ++r) {
      auto g = gmem::memory::GuestMemfd::Create(*vm, kRegionBytes[r], kGmemFlags);
      EXPECT_TRUE(g.ok()) << g.status().ToString();
      gmems.push_back(std::move(g).value());
      fds[r] = gmems.back().fd();
      mem[r] = static_cast<uint8_t*>(::mmap(nullptr, kRegionBytes[r], PROT_READ | PROT_WRITE, MAP_SHARED, fds[r], 0));
      EXPECT_NE(mem[r], MAP_FAILED);
    }
  }
  ~FakeVm() {
    for (int r = 0; r < 2; ++r) ::munmap(mem[r], kRegionBytes[r]);
  }
  // Every third page zero, the others a pattern of `seed`.
  void Fill(uint8_t seed) {
    for (int r = 0; r < 2; ++r) {
      for (uint64_t p = 0; p < kRegionBytes[r] / kPage; ++p) {
        std::memset(mem[r] + p * kPage, p % 3 == 2 ? 0 : static_cast<int>((p * 7 + seed + r) | 1), kPage);
      }
    }
  }
  std::vector<uint8_t> Memory(int r) const { return std::vector<uint8_t>(mem[r], mem[r] + kRegionBytes[r]); }

  std::vector<gmemkit_region> Regions() const {
    std::vector<gmemkit_region> out(2);
    for (int r = 0; r < 2; ++r) {
      out[r] = gmemkit_region{static_cast<uint32_t>(r), 4096, kRegionGpa[r], kRegionBytes[r], 0, kGmemFlags, fds[r]};
    }
    return out;
  }

  gmemkit_vmm_callbacks Callbacks() { return gmem::capi_testing::BasicCallbacks(*this); }

  std::optional<gmem::memory::Vm> vm;
  std::vector<gmem::memory::GuestMemfd> gmems;
  int fds[2];
  uint8_t* mem[2];
};

using Handle = gmem::capi_testing::VmHandle<FakeVm>;
using Key = gmem::capi_testing::TestKey;

using gmem::capi_testing::RestoreFrom;
using gmem::capi_testing::SaveTo;

class CapiSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override { SKIP_WITHOUT_KVM(); }
  // Saves `source_` (running, filled) to image_ with key_.
  void SaveImage() {
    source_.Fill(1);
    Handle h(source_);
    auto opts = SaveTo(image_);
    gmemkit_error err{};
    ASSERT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_OK) << err.message;
  }

  gmem::testing::TempDir dir_;
  std::string image_ = dir_.File("vm.img");
  Key key_;
  std::optional<FakeVm> source_storage_ = gmem::memory::KvmSystem::Available() ? std::optional<FakeVm>(std::in_place, GMEMKIT_RUN_RUNNING) : std::nullopt;
  FakeVm& source_ = *source_storage_;
};

TEST(CapiTest, VersionAndCodeNames) {
  EXPECT_EQ(gmemkit_api_version(), GMEMKIT_API_VERSION);
  EXPECT_STRNE(gmemkit_version(), "");
  EXPECT_STREQ(gmemkit_code_name(GMEMKIT_ERR_AUTH), "auth");
  EXPECT_STREQ(gmemkit_code_name(GMEMKIT_ERR_CALLBACK), "callback");
  EXPECT_STREQ(gmemkit_code_name(999), "unknown");
}

TEST(CapiTest, BadCallbacksAreRefusedWithAReason) {
  gmemkit_vm* vm = nullptr;
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_vm_new(nullptr, &vm, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "callbacks is NULL");
  gmemkit_vmm_callbacks cb{};
  EXPECT_EQ(gmemkit_vm_new(&cb, &vm, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "callbacks->struct_size is 0: set it to sizeof(gmemkit_vmm_callbacks)");
  cb.struct_size = sizeof(cb);
  EXPECT_EQ(gmemkit_vm_new(&cb, &vm, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "the run_state callback is required");
  EXPECT_EQ(vm, nullptr);
}

TEST(CapiTest, KeysComeFromBytesFdsAndFilesAndNeverShowInMessages) {
  gmemkit_key* key = nullptr;
  gmemkit_error err{};
  uint8_t short_key[16] = {};
  EXPECT_EQ(gmemkit_key_from_bytes(short_key, sizeof(short_key), &key, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "a key has 32 bytes, not 16");

  std::string text = "gmemkit-key-v1:" + std::string(64, 'a') + "\n";
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(p[1]);
  EXPECT_EQ(gmemkit_key_from_key_fd(p[0], &key, &err), GMEMKIT_OK) << err.message;
  ::close(p[0]);
  gmemkit_key_free(key);

  std::string bad = "gmemkit-key-v1:" + std::string(63, 'b') + "g\n";
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
  ::close(p[1]);
  EXPECT_EQ(gmemkit_key_from_key_fd(p[0], &key, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  ::close(p[0]);
  EXPECT_NE(std::string(err.message).find("key fd"), std::string::npos) << err.message;
  EXPECT_EQ(std::string(err.message).find("bbbbbbbb"), std::string::npos) << err.message;

  gmem::testing::TempDir dir;
  { std::ofstream(dir.File("key")) << text; }
  ASSERT_EQ(::chmod(dir.File("key").c_str(), 0644), 0);
  EXPECT_NE(gmemkit_key_from_key_file(dir.File("key").c_str(), &key, &err), GMEMKIT_OK);
  EXPECT_NE(std::string(err.message).find("key file"), std::string::npos) << err.message;
  ASSERT_EQ(::chmod(dir.File("key").c_str(), 0600), 0);
  EXPECT_EQ(gmemkit_key_from_key_file(dir.File("key").c_str(), &key, &err), GMEMKIT_OK) << err.message;
  gmemkit_key_free(key);

  EXPECT_EQ(gmemkit_key_from_passphrase("", 0, &key, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "a passphrase has 1..1024 bytes, not 0");
}

TEST(CapiTest, MemoryIsCheckedWhenRegistered) {
  SKIP_WITHOUT_KVM();
  FakeVm fake(GMEMKIT_RUN_RUNNING);
  Handle h(fake, /*register_memory=*/false);
  gmemkit_error err{};
  auto regions = fake.Regions();
  regions[1].gpa = kPage;  // overlaps region 0
  EXPECT_EQ(gmemkit_vm_set_memory(h.handle, regions.data(), regions.size(), &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("memory layout"), std::string::npos) << err.message;
  regions = fake.Regions();
  regions[0].size_bytes = kRegionBytes[0] * 2;  // past the memfd's end
  EXPECT_EQ(gmemkit_vm_set_memory(h.handle, regions.data(), regions.size(), &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("region 0: adopt guest_memfd"), std::string::npos) << err.message;
  EXPECT_NE(std::string(err.message).find("size is 2097152 bytes"), std::string::npos) << err.message;
  regions = fake.Regions();
  int memfd = ::memfd_create("not-gmem", MFD_CLOEXEC);
  ASSERT_EQ(::ftruncate(memfd, static_cast<off_t>(kRegionBytes[0])), 0);
  regions[0].fd = memfd;
  EXPECT_EQ(gmemkit_vm_set_memory(h.handle, regions.data(), regions.size(), &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  ::close(memfd);
  EXPECT_NE(std::string(err.message).find("not a guest_memfd"), std::string::npos) << err.message;
  regions = fake.Regions();
  regions[0].fd = 1000;
  EXPECT_EQ(gmemkit_vm_set_memory(h.handle, regions.data(), regions.size(), &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("region 0: fd 1000 is not open"), std::string::npos) << err.message;

  // Saving without memory says so.
  Key key;
  gmem::testing::TempDir dir;
  std::string image = dir.File("vm.img");  // opts.path points into it
  auto opts = SaveTo(image);
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key.key, &opts, nullptr, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("call gmemkit_vm_set_memory first"), std::string::npos) << err.message;
  EXPECT_EQ(fake.run_state, GMEMKIT_RUN_RUNNING);
}

TEST(CapiTest, OptionsNeedStructSizeAndPath) {
  SKIP_WITHOUT_KVM();
  FakeVm fake(GMEMKIT_RUN_RUNNING);
  Handle h(fake);
  Key key;
  gmemkit_error err{};
  gmemkit_save_options opts{};
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key.key, &opts, nullptr, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "gmemkit_save_options->struct_size is not set: set it to sizeof(gmemkit_save_options)");
  opts.struct_size = sizeof(opts);
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key.key, &opts, nullptr, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "options->path is required");
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, nullptr, &opts, nullptr, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "key is NULL");
  EXPECT_EQ(fake.pauses, 0);
}

TEST_F(CapiSnapshotTest, SaveAndRestoreRoundTripMemoryStateAndRunState) {
  SaveImage();
  EXPECT_GE(source_.pauses, 1);
  EXPECT_EQ(source_.resumes, 1);
  EXPECT_EQ(source_.run_state, GMEMKIT_RUN_RUNNING);

  FakeVm target(GMEMKIT_RUN_INCOMING);
  target.state.clear();
  std::memset(target.mem[0], 0xee, kRegionBytes[0]);  // stale contents: restore must clear them
  Handle h(target);
  auto opts = RestoreFrom(image_);
  gmemkit_restore_result result{};
  gmemkit_error err{};
  ASSERT_EQ(gmemkit_snapshot_restore(h.handle, key_.key, &opts, &result, &err), GMEMKIT_OK) << err.message;
  EXPECT_EQ(target.Memory(0), source_.Memory(0));
  EXPECT_EQ(target.Memory(1), source_.Memory(1));
  EXPECT_EQ(target.state, source_.state);
  EXPECT_EQ(target.run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_EQ(result.resumed, 1);
  EXPECT_EQ(result.images, 1u);
  EXPECT_GT(result.data_pages, 0u);
}

TEST_F(CapiSnapshotTest, RestoreFromAnFdLeavesItsOffsetAlone) {
  SaveImage();
  FakeVm target(GMEMKIT_RUN_INCOMING);
  Handle h(target);
  int fd = ::open(image_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::lseek(fd, 100, SEEK_SET), 100);
  gmemkit_restore_options opts{};
  opts.struct_size = sizeof(opts);
  opts.fd = fd;
  opts.leave_paused = 1;
  gmemkit_restore_result result{};
  gmemkit_error err{};
  ASSERT_EQ(gmemkit_snapshot_restore(h.handle, key_.key, &opts, &result, &err), GMEMKIT_OK) << err.message;
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), 100);
  ::close(fd);
  EXPECT_EQ(target.Memory(0), source_.Memory(0));
  EXPECT_EQ(result.resumed, 0);
  EXPECT_EQ(target.resumes, 0);
}

// An increment restored from an fd finds its parent beside the file (it once looked in
// /proc/self/fd, the directory of the path the library reopens the fd by).
TEST_F(CapiSnapshotTest, AnIncrementRestoredFromAnFdFindsItsParentBesideIt) {
  SaveImage();
  source_.Fill(2);
  std::string child = dir_.File("child.img");
  {
    Handle h(source_);
    auto opts = SaveTo(child);
    opts.parent_path = image_.c_str();
    gmemkit_error err{};
    ASSERT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_OK) << err.message;
  }
  FakeVm target(GMEMKIT_RUN_INCOMING);
  Handle h(target);
  int fd = ::open(child.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  gmemkit_restore_options opts{};
  opts.struct_size = sizeof(opts);
  opts.fd = fd;
  gmemkit_restore_result result{};
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_restore(h.handle, key_.key, &opts, &result, &err), GMEMKIT_OK) << err.message;
  ::close(fd);
  EXPECT_EQ(result.images, 2u);
  EXPECT_EQ(target.Memory(0), source_.Memory(0));
}

TEST_F(CapiSnapshotTest, PrepareIncomingLetsTheVmmCreateTheMemory) {
  SaveImage();
  FakeVm target(GMEMKIT_RUN_INCOMING);
  static std::vector<gmemkit_region> seen;
  seen.clear();
  Handle h(target, /*register_memory=*/false, [](gmemkit_vmm_callbacks& cb) {
    cb.prepare_incoming = [](void* ctx, const gmemkit_region* layout, size_t count, int* fds) {
      seen.assign(layout, layout + count);
      for (size_t i = 0; i < count; ++i) fds[i] = static_cast<FakeVm*>(ctx)->fds[i];
      return 0;
    };
  });
  auto opts = RestoreFrom(image_);
  gmemkit_error err{};
  ASSERT_EQ(gmemkit_snapshot_restore(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_OK) << err.message;
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].gpa, kRegionGpa[1]);
  EXPECT_EQ(seen[1].size_bytes, kRegionBytes[1]);
  EXPECT_EQ(seen[1].fd, -1);
  EXPECT_EQ(target.Memory(1), source_.Memory(1));
}

TEST_F(CapiSnapshotTest, WrongKeyIsAuthAndTouchesNothing) {
  SaveImage();
  FakeVm target(GMEMKIT_RUN_INCOMING);
  Handle h(target);
  Key wrong(0x43);
  auto opts = RestoreFrom(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_restore(h.handle, wrong.key, &opts, nullptr, &err), GMEMKIT_ERR_AUTH);
  EXPECT_EQ(err.code, GMEMKIT_ERR_AUTH);
  EXPECT_NE(std::string(err.message).find("key"), std::string::npos) << err.message;
  EXPECT_EQ(target.discards, 0);
  EXPECT_EQ(target.set_states, 0);
  EXPECT_EQ(target.run_state, GMEMKIT_RUN_INCOMING);
}

TEST_F(CapiSnapshotTest, TruncatedImageIsCorruptAndTheVmIsDiscardedNotResumed) {
  SaveImage();
  ASSERT_EQ(::truncate(image_.c_str(), static_cast<off_t>(std::filesystem::file_size(image_) / 2)), 0);
  FakeVm target(GMEMKIT_RUN_INCOMING);
  Handle h(target);
  auto opts = RestoreFrom(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_restore(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_CORRUPT) << err.message;
  EXPECT_NE(std::string(err.message).find("truncated"), std::string::npos) << err.message;
  EXPECT_EQ(target.resumes, 0);
  EXPECT_EQ(target.discards, 1);
}

TEST_F(CapiSnapshotTest, ADigestMismatchKeepsTheVmFromResuming) {
  SaveImage();
  FakeVm target(GMEMKIT_RUN_INCOMING);
  target.on_set_state = [&target] { target.mem[1][5] ^= 0xff; };  // memory changes behind the engine's back
  Handle h(target);
  auto opts = RestoreFrom(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_restore(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_CORRUPT);
  EXPECT_NE(std::string(err.message).find("digest"), std::string::npos) << err.message;
  EXPECT_EQ(target.resumes, 0);
  EXPECT_EQ(target.discards, 1);
}

TEST_F(CapiSnapshotTest, RestoreRefusesAVmThatIsNotIncomingOrHasAnotherLayout) {
  SaveImage();
  FakeVm running(GMEMKIT_RUN_RUNNING);
  Handle h(running);
  auto opts = RestoreFrom(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_restore(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "the target VM is running, not incoming: restore and receive need fresh memory");
  EXPECT_EQ(running.discards, 0);

  FakeVm other(GMEMKIT_RUN_INCOMING);
  Handle h2(other, /*register_memory=*/false);
  auto regions = other.Regions();
  regions[1].gpa = uint64_t{2} << 32;
  ASSERT_EQ(gmemkit_vm_set_memory(h2.handle, regions.data(), regions.size(), nullptr), GMEMKIT_OK);
  EXPECT_EQ(gmemkit_snapshot_restore(h2.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_INCOMPATIBLE);
  EXPECT_NE(std::string(err.message).find("layout differs"), std::string::npos) << err.message;
  EXPECT_EQ(other.resumes, 0);
}

TEST_F(CapiSnapshotTest, AFailingGetStateIsACallbackErrorAndTheVmRunsOn) {
  source_.fail_get_state = EIO;
  Handle h(source_);
  auto opts = SaveTo(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_CALLBACK);
  EXPECT_EQ(err.sys_errno, EIO);
  EXPECT_NE(std::string(err.message).find("VMM callback 'get_state' failed"), std::string::npos) << err.message;
  EXPECT_GE(source_.pauses, 1);
  EXPECT_EQ(source_.resumes, 1);
  EXPECT_EQ(source_.run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_FALSE(std::filesystem::exists(image_));
}

TEST_F(CapiSnapshotTest, AFailingPauseIsACallbackErrorAndWritesNothing) {
  source_.fail_pause = EBUSY;
  Handle h(source_);
  auto opts = SaveTo(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_CALLBACK);
  EXPECT_NE(std::string(err.message).find("'pause'"), std::string::npos) << err.message;
  EXPECT_EQ(source_.run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_FALSE(std::filesystem::exists(image_));
}

TEST_F(CapiSnapshotTest, AFailingSetStateDiscardsTheIncomingVm) {
  SaveImage();
  FakeVm target(GMEMKIT_RUN_INCOMING);
  target.fail_set_state = EINVAL;
  Handle h(target);
  auto opts = RestoreFrom(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_restore(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_CALLBACK);
  EXPECT_NE(std::string(err.message).find("'set_state'"), std::string::npos) << err.message;
  EXPECT_EQ(target.resumes, 0);
  EXPECT_EQ(target.discards, 1);
}

TEST_F(CapiSnapshotTest, CancelStopsASaveAndResumesTheVm) {
  source_.Fill(1);
  Handle h(source_);
  source_.cancel_in_get_state = h.handle;
  auto opts = SaveTo(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_CANCELLED) << err.message;
  EXPECT_EQ(source_.run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_EQ(source_.resumes, 1);
  EXPECT_FALSE(std::filesystem::exists(image_));
}

TEST_F(CapiSnapshotTest, PrivatePagesNeedAnAgentAndBadAttributesAreRefused) {
  source_.Fill(1);
  static uint8_t value;
  Handle h(source_, /*register_memory=*/true, [](gmemkit_vmm_callbacks& cb) {
    cb.get_attributes = [](void*, uint32_t region, uint8_t* attrs, uint64_t npages) {
      if (region == 1 && npages > 3) attrs[3] = value;
      return 0;
    };
  });
  auto opts = SaveTo(image_);
  gmemkit_error err{};
  value = GMEMKIT_PAGE_PRIVATE;
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_UNSUPPORTED);
  EXPECT_NE(std::string(err.message).find("private pages (region 1)"), std::string::npos) << err.message;
  value = 7;
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_PROTOCOL);
  EXPECT_NE(std::string(err.message).find("region 1 page 3 has attribute 7"), std::string::npos) << err.message;
  EXPECT_EQ(source_.run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_FALSE(std::filesystem::exists(image_));
}

TEST_F(CapiSnapshotTest, ADirtyLogCallbackDrivesTheDirtyTracking) {
  source_.Fill(1);
  static int calls;
  calls = 0;
  Handle h(source_, /*register_memory=*/true, [](gmemkit_vmm_callbacks& cb) {
    cb.dirty_log = [](void*, uint32_t, uint64_t* bitmap, uint64_t nwords) {
      ++calls;
      std::memset(bitmap, 0, nwords * 8);
      return 0;
    };
  });
  auto opts = SaveTo(image_);
  gmemkit_error err{};
  ASSERT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_OK) << err.message;
  EXPECT_GT(calls, 0);

  FakeVm target(GMEMKIT_RUN_INCOMING);
  Handle t(target);
  auto in = RestoreFrom(image_);
  ASSERT_EQ(gmemkit_snapshot_restore(t.handle, key_.key, &in, nullptr, &err), GMEMKIT_OK) << err.message;
  EXPECT_EQ(target.Memory(0), source_.Memory(0));
}

// The guest of a FakeVm: writes pages of region 0 while the VM runs, until destroyed.
class Dirtier {
 public:
  explicit Dirtier(FakeVm& vm) : vm_(vm), thread_([this] { Run(); }) {}
  ~Dirtier() {
    stop_.store(true);
    thread_.join();
  }
  uint64_t writes() const { return writes_.load(); }

 private:
  void Run() {
    for (uint64_t i = 0; !stop_.load(); ++i) {
      {
        std::lock_guard<std::mutex> lock(vm_.mu);
        if (vm_.run_state == GMEMKIT_RUN_RUNNING) {
          vm_.mem[0][(i % 300) * kPage + i % kPage] += 1;
          writes_.fetch_add(1);
        }
      }
      if (i % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  FakeVm& vm_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> writes_{0};
  std::thread thread_;
};

gmemkit_migrate_options OverFd(int fd) {
  gmemkit_migrate_options o{};
  o.struct_size = sizeof(o);
  o.fd = fd;
  return o;
}

// A receiver on its own thread over one end of a socketpair.
struct Receiver {
  Receiver(FakeVm& vm, const gmemkit_key* key, int fd) : handle(vm) {
    thread = std::thread([this, key, fd] {
      auto opts = OverFd(fd);
      code = gmemkit_migrate_receive(handle.handle, key, &opts, &result, &err);
    });
  }
  void Join() { thread.join(); }
  Handle handle;
  std::thread thread;
  int code = -1;
  gmemkit_migrate_result result{};
  gmemkit_error err{};
};

TEST_F(CapiSnapshotTest, LiveMigrationOverASocketpairMovesARunningGuest) {
  source_.Fill(1);
  FakeVm target(GMEMKIT_RUN_INCOMING);
  target.state.clear();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Receiver receiver(target, key_.key, sv[1]);
  gmemkit_migrate_result sent{};
  gmemkit_error err{};
  int code;
  uint64_t writes;
  {
    Dirtier guest(source_);
    while (guest.writes() < 1000) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    Handle h(source_);
    auto opts = OverFd(sv[0]);
    opts.verify_memory = 1;
    code = gmemkit_migrate_send(h.handle, key_.key, &opts, &sent, &err);
    writes = guest.writes();
  }
  receiver.Join();
  ::close(sv[0]);
  ::close(sv[1]);
  ASSERT_EQ(code, GMEMKIT_OK) << err.message;
  ASSERT_EQ(receiver.code, GMEMKIT_OK) << receiver.err.message;
  EXPECT_GT(writes, 1000u);
  EXPECT_GE(sent.passes, 1u);
  EXPECT_GT(sent.wire_bytes, 0u);
  // The source stopped for good at its pause: the target holds exactly that memory and state.
  EXPECT_EQ(source_.run_state, GMEMKIT_RUN_PAUSED);
  EXPECT_EQ(source_.discards, 1);
  EXPECT_EQ(target.run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_EQ(receiver.result.resumed, 1);
  EXPECT_EQ(target.Memory(0), source_.Memory(0));
  EXPECT_EQ(target.Memory(1), source_.Memory(1));
  EXPECT_EQ(target.state, source_.state);
}

TEST_F(CapiSnapshotTest, AMigrationWithTheWrongKeyFailsOnBothSidesAndTheSourceRunsOn) {
  source_.Fill(1);
  FakeVm target(GMEMKIT_RUN_INCOMING);
  Key other(0x44);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Receiver receiver(target, other.key, sv[1]);
  Handle h(source_);
  auto opts = OverFd(sv[0]);
  gmemkit_error err{};
  int code = gmemkit_migrate_send(h.handle, key_.key, &opts, nullptr, &err);
  ::shutdown(sv[0], SHUT_RDWR);
  receiver.Join();
  ::close(sv[0]);
  ::close(sv[1]);
  EXPECT_NE(code, GMEMKIT_OK);
  EXPECT_NE(receiver.code, GMEMKIT_OK);
  EXPECT_EQ(receiver.err.code, GMEMKIT_ERR_AUTH) << receiver.err.message;
  EXPECT_EQ(source_.run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_EQ(source_.discards, 0);
  EXPECT_EQ(target.resumes, 0);
  EXPECT_EQ(target.discards, 1);
}

TEST(CapiMigrateTest, LiveMigrationRefusesAPassphraseAndNeedsAPeer) {
  SKIP_WITHOUT_KVM();
  FakeVm fake(GMEMKIT_RUN_RUNNING);
  Handle h(fake);
  gmemkit_key* pass = nullptr;
  ASSERT_EQ(gmemkit_key_from_passphrase("hunter2", 7, &pass, nullptr), GMEMKIT_OK);
  gmemkit_error err{};
  auto opts = OverFd(-1);
  EXPECT_EQ(gmemkit_migrate_send(h.handle, pass, &opts, nullptr, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "a live migration needs a key, not a passphrase (the handshake proves the key)");
  gmemkit_key_free(pass);
  Key key;
  EXPECT_EQ(gmemkit_migrate_send(h.handle, key.key, &opts, nullptr, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "options->uri or options->fd (a connected socket) is required");
  EXPECT_EQ(fake.pauses, 0);
}

// A program built against an older header passes a shorter struct: what lies past its
// struct_size is never read (here a digest callback that would fail).
TEST_F(CapiSnapshotTest, MembersPastStructSizeAreNotRead) {
  source_.Fill(1);
  Handle h(source_, /*register_memory=*/true, [](gmemkit_vmm_callbacks& cb) {
    cb.digest = [](void*, gmemkit_buffer*) { return EIO; };
    cb.struct_size = offsetof(gmemkit_vmm_callbacks, digest);
  });
  auto opts = SaveTo(image_);
  gmemkit_error err{};
  ASSERT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_OK) << err.message;
  EXPECT_TRUE(std::filesystem::exists(image_));
}

TEST(CapiErrorTest, LongMessagesAreTruncatedWithAnEllipsis) {
  SKIP_WITHOUT_KVM();
  FakeVm fake(GMEMKIT_RUN_RUNNING);
  Handle h(fake);
  Key key;
  std::string path = "/nonexistent/" + std::string(600, 'd') + "/vm.img";
  auto opts = SaveTo(path);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key.key, &opts, nullptr, &err), GMEMKIT_ERR_IO);
  EXPECT_EQ(std::strlen(err.message), sizeof(err.message) - 1);
  EXPECT_STREQ(err.message + sizeof(err.message) - 4, "...");
}

}  // namespace
