// Tests of private pages through the C API (capi/gmemkit.h, agent_query / agent_doorbell): a VMM
// with emulated CoCo whose doorbell callback serves the mailbox with gmem-vmm's emulated agent
// (vmm/emulated_agent.h). A snapshot of a VM with private pages restores into a fresh VM on the
// same platform with the same guest identity; the image never holds private plaintext; another
// platform, a VMM without an agent and a failing doorbell are each refused and the VM never runs.
// A live migration between two such VMs moves the private pages agent to agent.

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "agent/platform_key.h"
#include "base/io.h"
#include "base/secret.h"
#include "format/image_reader.h"
#include "format/keys.h"
#include "gmemkit.h"
#include "memory/kvm_system.h"
#include "memory/vm.h"
#include "tests/capi/capi_testing.h"
#include "tests/testutil/testutil.h"
#include "vmm/emulated_agent.h"
#include "vmm/conversion.h"
#include "vmm/emulated_coco.h"
#include "vmm/guest_memory.h"

namespace {

using gmem::memory::PageAttr;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMemBytes = uint64_t{4} << 20;  // two 2 MiB regions (region 0 holds the agent area)
constexpr std::string_view kPrivateCanary = "GMEMKIT-PRIVATE!";
constexpr std::string_view kSharedCanary = "GMEMKIT-SHARED!!";
constexpr uint8_t kKeyFill = gmem::capi_testing::kTestKeyFill;
// Private gfns: a run in region 0 below the agent area and one in region 1.
constexpr uint64_t kPrivateRuns[2][2] = {{0x20, 6}, {0x300, 10}};

std::shared_ptr<const gmem::agent::PlatformKey> NewPlatformKey() {
  auto key = gmem::agent::PlatformKey::Generate();
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::make_shared<const gmem::agent::PlatformKey>(std::move(key).value());
}

// A confidential VMM as gmem-vmm --coco emulated is one: guest memory, the emulated attribute
// table, and the guest agent behind the doorbell. REQUIRES: /dev/kvm.
struct CocoVm : gmem::capi_testing::VmmBasics {
  CocoVm(int state, std::shared_ptr<const gmem::agent::PlatformKey> platform_key, std::string_view guest_id)
      : VmmBasics(state, "vcpu0: rip=0x1000 sev-snp"), vm(gmem::capi_testing::NewKvmVm()) {
    auto mem = gmem::vmm::GuestMemory::Create(*vm, gmem::vmm::GuestMemory::MakeLayout(kMemBytes, 2));
    EXPECT_TRUE(mem.ok()) << mem.status().ToString();
    memory.emplace(std::move(mem).value());
    auto coco_or = gmem::vmm::EmulatedCoco::Create(*memory, gmem::vmm::CocoMode::kEmulated,
                                                   gmem::memory::ConversionContent::kPreserve, 0);
    EXPECT_TRUE(coco_or.ok()) << coco_or.status().ToString();
    coco = std::move(coco_or).value();
    agent.emplace(std::move(platform_key), guest_id, gmem::vmm::AgentDirtyMode::kHash);
  }

  std::byte* Page(uint64_t gfn) const { return memory->HostAddress(gfn * kPage, kPage); }

  // Shared pages carry the shared canary and a pattern; the private runs the private canary and
  // a pattern of their gfn, made private as at an SNP launch.
  void Boot() {
    for (uint64_t gfn = 0; gfn < kMemBytes / kPage; ++gfn) {
      if (gfn * kPage >= GMEMKIT_AGENT_AREA_GPA && gfn * kPage < GMEMKIT_AGENT_AREA_GPA + GMEMKIT_AGENT_AREA_BYTES) continue;
      std::memset(Page(gfn), static_cast<int>((gfn * 13) | 1), kPage);
      std::memcpy(Page(gfn), kSharedCanary.data(), kSharedCanary.size());
    }
    std::vector<gmem::memory::PageRange> runs;
    for (const auto& run : kPrivateRuns) {
      for (uint64_t gfn = run[0]; gfn < run[0] + run[1]; ++gfn) std::memcpy(Page(gfn), PrivateContents(gfn).data(), kPage);
      runs.push_back({run[0], run[1]});
    }
    ASSERT_TRUE(coco->MakePrivateAtBoot(runs).ok());
  }

  static std::vector<std::byte> PrivateContents(uint64_t gfn) {
    std::vector<std::byte> page(kPage, static_cast<std::byte>((gfn * 29) | 3));
    std::memcpy(page.data(), kPrivateCanary.data(), kPrivateCanary.size());
    page[kPage - 1] = static_cast<std::byte>(gfn);
    return page;
  }

  std::vector<gmemkit_region> Regions() const {
    std::vector<gmemkit_region> out;
    for (size_t i = 0; i < memory->region_count(); ++i) {
      const auto& r = memory->layout().regions()[i];
      out.push_back({r.id, static_cast<uint32_t>(r.page_size), r.gpa_base, r.size_bytes, r.gmem_offset, r.gmem_flags,
                     memory->gmem(i).fd()});
    }
    return out;
  }

  gmemkit_vmm_callbacks Callbacks() {
    gmemkit_vmm_callbacks cb = gmem::capi_testing::BasicCallbacks(*this);
    cb.get_attributes = [](void* ctx, uint32_t region_id, uint8_t* attrs, uint64_t npages) {
      auto maps = static_cast<CocoVm*>(ctx)->coco->Snapshot();
      if (region_id >= maps.size() || maps[region_id].npages() != npages) return EINVAL;
      for (uint64_t p = 0; p < npages; ++p) {
        attrs[p] = maps[region_id].Get(p) == PageAttr::kPrivate ? GMEMKIT_PAGE_PRIVATE : GMEMKIT_PAGE_SHARED;
      }
      return 0;
    };
    cb.set_attributes = [](void* ctx, uint32_t region_id, const uint8_t* attrs, uint64_t npages) {
      std::vector<gmem::memory::AttrRun> runs;
      for (uint64_t p = 0; p < npages; ++p) {
        runs.push_back({p, 1, attrs[p] == GMEMKIT_PAGE_PRIVATE ? PageAttr::kPrivate : PageAttr::kShared});
      }
      auto map = gmem::memory::AttributeMap::FromRuns(npages, runs);
      if (!map.ok()) return EINVAL;
      return static_cast<CocoVm*>(ctx)->coco->Restore(region_id, *map).ok() ? 0 : EINVAL;
    };
    cb.agent_query = [](void* ctx, gmemkit_agent_info* info) {
      auto* vm = static_cast<CocoVm*>(ctx);
      info->available = 1;
      info->provisioned = vm->agent->Info().provisioned ? 1 : 0;
      info->area_gpa = vm->area_gpa;
      info->conversions = vm->coco->conversions();
      return 0;
    };
    cb.agent_doorbell = [](void* ctx) {
      auto* vm = static_cast<CocoVm*>(ctx);
      ++vm->doorbells;
      if (vm->fail_doorbell != 0) return vm->fail_doorbell;
      // The agent runs in the guest: its reads of private pages are ordered with the guest's writes.
      std::lock_guard<std::mutex> lock(vm->mu);
      return vm->agent->Ring(*vm->memory, *vm->coco).ok() ? 0 : EIO;
    };
    return cb;
  }

  // One step of a running guest (see Guest): rewrites a private page, a shared page, and every
  // 16th step converts a page of [0x280, 0x288) the other way. Nothing while paused.
  void Step(uint64_t k) {
    std::lock_guard<std::mutex> lock(mu);
    if (run_state != GMEMKIT_RUN_RUNNING) return;
    uint64_t private_gfn = kPrivateRuns[1][0] + k % kPrivateRuns[1][1];
    std::memset(Page(private_gfn) + 64, static_cast<int>(k), 64);
    std::memset(Page(0x250 + k % 32) + 64, static_cast<int>(k), 64);
    if (k % 16 == 0) {
      uint64_t gpa = (0x280 + k / 16 % 8) * kPage;
      auto attr = coco->AttributeAt(gpa) == PageAttr::kPrivate ? PageAttr::kShared : PageAttr::kPrivate;
      EXPECT_TRUE(coco->Apply({gpa, kPage, attr, gmem::vmm::ConversionOrigin::kHypercall}).ok());
    }
    ++steps;
  }

  uint64_t steps = 0;
  std::optional<gmem::memory::Vm> vm;
  std::optional<gmem::vmm::GuestMemory> memory;
  std::unique_ptr<gmem::vmm::EmulatedCoco> coco;
  std::optional<gmem::vmm::EmulatedAgent> agent;
  uint64_t area_gpa = GMEMKIT_AGENT_AREA_GPA;
  int doorbells = 0;
  int fail_doorbell = 0;
};

using Handle = gmem::capi_testing::VmHandle<CocoVm>;
using Key = gmem::capi_testing::TestKey;
using gmem::capi_testing::RestoreFrom;
using gmem::capi_testing::SaveTo;

size_t Count(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string_view::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The image's records opened with its key: the shared canaries in PAGES records' page data, the
// private canaries anywhere in a decrypted record, and the private blobs.
struct Decrypted {
  size_t shared_canaries = 0;
  size_t private_canaries = 0;
  std::set<std::pair<uint32_t, uint64_t>> private_pages;  // (region, page) with a blob
};

Decrypted DecryptImage(const std::string& file) {
  Decrypted out;
  gmem::MemorySource source(gmem::ByteSpan(reinterpret_cast<const std::byte*>(file.data()), file.size()));
  std::vector<std::byte> key(32, static_cast<std::byte>(kKeyFill));
  auto reader = gmem::format::ImageReader::Open(
      source, gmem::format::KeySource::FromKey(gmem::SecretBytes::CopyOf(key)), gmem::format::ReaderOptions{});
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return out;
  for (;;) {
    auto record = reader->Next();
    EXPECT_TRUE(record.ok()) << record.status().ToString();
    if (!record.ok() || std::holds_alternative<gmem::format::EndRecord>((*record)->body)) break;
    const auto& body = (*record)->body;
    if (const auto* pages = std::get_if<gmem::format::PagesRecord>(&body)) {
      std::string_view data(reinterpret_cast<const char*>(pages->data.data()), pages->data.size());
      out.shared_canaries += Count(data, kSharedCanary);
      out.private_canaries += Count(data, kPrivateCanary);
    }
    if (const auto* priv = std::get_if<gmem::format::PrivateRecord>(&body)) {
      for (const auto& blob : priv->blobs) {
        out.private_pages.insert({priv->region_id, blob.page});
        out.private_canaries +=
            Count(std::string_view(reinterpret_cast<const char*>(blob.blob.data()), blob.blob.size()), kPrivateCanary);
      }
    }
    if (const auto* state = std::get_if<gmem::format::StateRecord>(&body)) {
      for (const auto& entry : state->entries) {
        out.private_canaries +=
            Count(std::string_view(reinterpret_cast<const char*>(entry.blob.data()), entry.blob.size()), kPrivateCanary);
      }
    }
  }
  return out;
}

class CapiPrivateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_KVM();
    source_.emplace(GMEMKIT_RUN_RUNNING, platform_key_, "guest-a");
    source_->Boot();
  }

  // Saves source_ to image_ (uncompressed: a plaintext canary would show in the decrypted pages).
  void SaveImage() {
    Handle h(*source_);
    auto opts = SaveTo(image_);
    opts.compression = GMEMKIT_COMPRESSION_NONE;
    gmemkit_error err{};
    ASSERT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, &saved_, &err), GMEMKIT_OK) << err.message;
  }

  // Restores image_ into `target`; returns the code and fills err_.
  int Restore(CocoVm& target, void (*tweak)(gmemkit_vmm_callbacks&) = nullptr) {
    Handle h(target, /*register_memory=*/true, tweak);
    auto opts = RestoreFrom(image_);
    err_ = gmemkit_error{};
    return gmemkit_snapshot_restore(h.handle, key_.key, &opts, nullptr, &err_);
  }

  gmem::testing::TempDir dir_;
  std::string image_ = dir_.File("vm.img");
  Key key_;
  std::shared_ptr<const gmem::agent::PlatformKey> platform_key_ = NewPlatformKey();
  std::optional<CocoVm> source_;
  gmemkit_save_result saved_{};
  gmemkit_error err_{};
};

TEST_F(CapiPrivateTest, SaveAndRestoreThroughTheAgentBringsPrivatePagesBackAndNoPlaintextLeaves) {
  ASSERT_NO_FATAL_FAILURE(SaveImage());
  EXPECT_GT(source_->doorbells, 0);
  EXPECT_EQ(source_->run_state, GMEMKIT_RUN_RUNNING);

  // Not in the file, and not in any record decrypted with the image's key, where the shared
  // canary is (so the check can fail).
  std::string file = ReadFile(image_);
  EXPECT_EQ(Count(file, kPrivateCanary), 0u);
  Decrypted decrypted = DecryptImage(file);
  EXPECT_GT(decrypted.shared_canaries, 0u);
  EXPECT_EQ(decrypted.private_canaries, 0u) << "private plaintext in the image";
  EXPECT_EQ(decrypted.private_pages, (std::set<std::pair<uint32_t, uint64_t>>{
                                         {0, 0x20}, {0, 0x21}, {0, 0x22}, {0, 0x23}, {0, 0x24}, {0, 0x25},
                                         {1, 0x100}, {1, 0x101}, {1, 0x102}, {1, 0x103}, {1, 0x104},
                                         {1, 0x105}, {1, 0x106}, {1, 0x107}, {1, 0x108}, {1, 0x109}}));

  CocoVm target(GMEMKIT_RUN_INCOMING, platform_key_, "guest-a");
  ASSERT_EQ(Restore(target), GMEMKIT_OK) << err_.message;
  EXPECT_EQ(target.resumes, 1);
  EXPECT_EQ(target.discards, 0);
  EXPECT_GT(target.doorbells, 0);
  EXPECT_EQ(target.state, source_->state);
  for (const auto& run : kPrivateRuns) {
    for (uint64_t gfn = run[0]; gfn < run[0] + run[1]; ++gfn) {
      EXPECT_EQ(target.coco->AttributeAt(gfn * kPage), PageAttr::kPrivate) << "gfn " << gfn;
      EXPECT_EQ(std::memcmp(target.Page(gfn), CocoVm::PrivateContents(gfn).data(), kPage), 0) << "gfn " << gfn;
    }
  }
  EXPECT_EQ(std::memcmp(target.Page(0x250), source_->Page(0x250), kPage), 0);
  EXPECT_EQ(target.coco->AttributeAt(0x250 * kPage), PageAttr::kShared);
}

TEST_F(CapiPrivateTest, RestoreOnAnotherPlatformFailsWithAuthAndTheVmNeverRuns) {
  ASSERT_NO_FATAL_FAILURE(SaveImage());
  CocoVm target(GMEMKIT_RUN_INCOMING, NewPlatformKey(), "guest-a");
  EXPECT_EQ(Restore(target), GMEMKIT_ERR_AUTH) << err_.message;
  EXPECT_NE(std::string(err_.message).find("another platform"), std::string::npos) << err_.message;
  EXPECT_EQ(std::string(err_.message).find('\n'), std::string::npos);
  EXPECT_EQ(target.resumes, 0);
  EXPECT_EQ(target.discards, 1);
  EXPECT_EQ(target.run_state, GMEMKIT_RUN_INCOMING);
}

TEST_F(CapiPrivateTest, RestoreAsAnotherGuestFailsWithAuthAndTheVmNeverRuns) {
  ASSERT_NO_FATAL_FAILURE(SaveImage());
  CocoVm target(GMEMKIT_RUN_INCOMING, platform_key_, "guest-b");
  EXPECT_EQ(Restore(target), GMEMKIT_ERR_AUTH) << err_.message;
  EXPECT_EQ(target.resumes, 0);
  EXPECT_EQ(target.discards, 1);
}

TEST_F(CapiPrivateTest, AFailingDoorbellIsACallbackErrorOnSaveAndOnRestore) {
  source_->fail_doorbell = EIO;
  Handle h(*source_);
  auto opts = SaveTo(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_CALLBACK) << err.message;
  EXPECT_NE(std::string(err.message).find("agent_doorbell"), std::string::npos) << err.message;
  EXPECT_EQ(err.sys_errno, EIO);
  struct stat st;
  EXPECT_NE(::stat(image_.c_str(), &st), 0) << "a failed save left a file";
  EXPECT_EQ(source_->run_state, GMEMKIT_RUN_RUNNING);

  source_->fail_doorbell = 0;
  ASSERT_NO_FATAL_FAILURE(SaveImage());
  CocoVm target(GMEMKIT_RUN_INCOMING, platform_key_, "guest-a");
  target.fail_doorbell = EPIPE;
  EXPECT_EQ(Restore(target), GMEMKIT_ERR_CALLBACK) << err_.message;
  EXPECT_NE(std::string(err_.message).find("agent_doorbell"), std::string::npos) << err_.message;
  EXPECT_EQ(target.resumes, 0);
  EXPECT_EQ(target.discards, 1);
}

TEST_F(CapiPrivateTest, PrivatePagesWithoutAnAgentAreUnsupported) {
  // The table of an older VMM (struct_size before the agent callbacks): private pages refused.
  Handle old(*source_, /*register_memory=*/true, [](gmemkit_vmm_callbacks& cb) { cb.struct_size = offsetof(gmemkit_vmm_callbacks, agent_query); });
  auto opts = SaveTo(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_save(old.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_UNSUPPORTED) << err.message;
  EXPECT_EQ(source_->doorbells, 0);

  // An agent without its platform key cannot seal.
  CocoVm unprovisioned(GMEMKIT_RUN_RUNNING, nullptr, "guest-a");
  unprovisioned.Boot();
  Handle h(unprovisioned);
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_UNSUPPORTED) << err.message;

  // A restore into a VMM without an agent stops at the first private page, and discards.
  ASSERT_NO_FATAL_FAILURE(SaveImage());
  CocoVm target(GMEMKIT_RUN_INCOMING, platform_key_, "guest-a");
  EXPECT_EQ(Restore(target, [](gmemkit_vmm_callbacks& cb) { cb.agent_doorbell = nullptr; cb.agent_query = nullptr; }),
            GMEMKIT_ERR_UNSUPPORTED)
      << err_.message;
  EXPECT_EQ(target.resumes, 0);
  EXPECT_EQ(target.discards, 1);
}

TEST_F(CapiPrivateTest, AnAgentAreaElsewhereIsUnsupportedAndADoorbellNeedsAQuery) {
  source_->area_gpa = 0x300000;
  Handle h(*source_);
  auto opts = SaveTo(image_);
  gmemkit_error err{};
  EXPECT_EQ(gmemkit_snapshot_save(h.handle, key_.key, &opts, nullptr, &err), GMEMKIT_ERR_UNSUPPORTED) << err.message;
  EXPECT_NE(std::string(err.message).find("0x300000"), std::string::npos) << err.message;
  EXPECT_EQ(source_->doorbells, 0);

  gmemkit_vmm_callbacks cb = source_->Callbacks();
  cb.agent_query = nullptr;
  gmemkit_vm* vm = nullptr;
  EXPECT_EQ(gmemkit_vm_new(&cb, &vm, &err), GMEMKIT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("agent_query"), std::string::npos) << err.message;
  EXPECT_EQ(vm, nullptr);
}

gmemkit_migrate_options OverFd(int fd) {
  gmemkit_migrate_options o{};
  o.struct_size = sizeof(o);
  o.fd = fd;
  o.verify_memory = 1;
  return o;
}

// gmemkit_migrate_send from `source` to a receive into `target` on another thread, over a
// socketpair. Fills both codes and errors.
struct Migration {
  Migration(CocoVm& source, CocoVm& target, const gmemkit_key* key) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    Handle target_handle(target);
    std::thread receiver([&] {
      auto opts = OverFd(sv[1]);
      receive_code = gmemkit_migrate_receive(target_handle.handle, key, &opts, &received, &receive_err);
    });
    {
      Handle h(source);
      auto opts = OverFd(sv[0]);
      send_code = gmemkit_migrate_send(h.handle, key, &opts, &sent, &send_err);
    }
    ::shutdown(sv[0], SHUT_RDWR);
    receiver.join();
    ::close(sv[0]);
    ::close(sv[1]);
  }
  int send_code = -1, receive_code = -1;
  gmemkit_migrate_result sent{}, received{};
  gmemkit_error send_err{}, receive_err{};
};

TEST_F(CapiPrivateTest, LiveMigrationMovesPrivatePagesAgentToAgent) {
  CocoVm target(GMEMKIT_RUN_INCOMING, platform_key_, "guest-a");
  Migration m(*source_, target, key_.key);
  ASSERT_EQ(m.send_code, GMEMKIT_OK) << m.send_err.message;
  ASSERT_EQ(m.receive_code, GMEMKIT_OK) << m.receive_err.message;
  EXPECT_GT(source_->doorbells, 0);
  EXPECT_GT(target.doorbells, 0);
  EXPECT_EQ(source_->discards, 1);
  EXPECT_EQ(target.run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_EQ(target.resumes, 1);
  for (const auto& run : kPrivateRuns) {
    for (uint64_t gfn = run[0]; gfn < run[0] + run[1]; ++gfn) {
      EXPECT_EQ(target.coco->AttributeAt(gfn * kPage), PageAttr::kPrivate) << "gfn " << gfn;
      EXPECT_EQ(std::memcmp(target.Page(gfn), CocoVm::PrivateContents(gfn).data(), kPage), 0) << "gfn " << gfn;
    }
  }
  EXPECT_EQ(std::memcmp(target.Page(0x250), source_->Page(0x250), kPage), 0);
}

// A guest thread stepping `vm` until destroyed.
class Guest {
 public:
  explicit Guest(CocoVm& vm) : thread_([this, &vm] {
    for (uint64_t k = 1; !stop_.load(); ++k) {
      vm.Step(k);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }) {}
  ~Guest() {
    stop_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(CapiPrivateTest, LiveMigrationOfAGuestThatWritesAndConvertsPrivatePages) {
  CocoVm target(GMEMKIT_RUN_INCOMING, platform_key_, "guest-a");
  std::optional<Migration> m;
  {
    Guest guest(*source_);
    while (true) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::lock_guard<std::mutex> lock(source_->mu);
      if (source_->steps >= 50) break;
    }
    m.emplace(*source_, target, key_.key);
  }
  ASSERT_EQ(m->send_code, GMEMKIT_OK) << m->send_err.message;
  ASSERT_EQ(m->receive_code, GMEMKIT_OK) << m->receive_err.message;
  EXPECT_GT(source_->coco->conversions(), 0u);
  EXPECT_GE(m->sent.passes, 2u) << "a precopy pass while the guest ran, then the final one";
  // The source stopped at its pause: the target holds exactly that memory and those attributes.
  EXPECT_EQ(source_->run_state, GMEMKIT_RUN_PAUSED);
  EXPECT_EQ(target.run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_EQ(target.coco->Snapshot(), source_->coco->Snapshot());
  for (uint64_t gfn = 0; gfn < kMemBytes / kPage; ++gfn) {
    if (gfn * kPage >= GMEMKIT_AGENT_AREA_GPA && gfn * kPage < GMEMKIT_AGENT_AREA_GPA + GMEMKIT_AGENT_AREA_BYTES) continue;
    ASSERT_EQ(std::memcmp(target.Page(gfn), source_->Page(gfn), kPage), 0) << "gfn " << gfn;
  }
}

TEST_F(CapiPrivateTest, LiveMigrationToAnotherPlatformFailsAndTheSourceRunsOn) {
  CocoVm target(GMEMKIT_RUN_INCOMING, NewPlatformKey(), "guest-a");
  Migration m(*source_, target, key_.key);
  EXPECT_NE(m.send_code, GMEMKIT_OK);
  EXPECT_EQ(m.receive_code, GMEMKIT_ERR_AUTH) << m.receive_err.message;
  EXPECT_EQ(source_->run_state, GMEMKIT_RUN_RUNNING);
  EXPECT_EQ(source_->discards, 0);
  EXPECT_EQ(target.resumes, 0);
  EXPECT_EQ(target.discards, 1);
}

}  // namespace
