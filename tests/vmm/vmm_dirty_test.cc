// Dirty tracking against the guest's own write log (workload option log=1): in hva mode KVM's
// dirty log reports exactly the pages the guest wrote in an interval; in gmem mode (no KVM dirty
// log) the memory layer's content-hash tracker finds the same set.

#include <chrono>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "memory/content_hash_source.h"
#include "memory/dirty_tracker.h"
#include "memory/guest_memfd.h"
#include "memory/guest_memfd_mapping.h"
#include "memory/layout.h"
#include "tests/testutil/testutil.h"
#include "tests/vmm/control_client.h"
#include "tests/vmm/vmm_process.h"
#include "vmm/base64.h"
#include "vmm/guest/guest_abi.h"

namespace gmem::vmm {
namespace {

using nlohmann::json;
using testing::ControlClient;
using testing::VmmProcess;

constexpr uint64_t kFirstDataGfn = GMEM_GUEST_DATA_GPA / 4096;

std::vector<std::string> Args(const std::string& slot, const std::string& ctl) {
  return {"run", "--mem", "32M", "--regions", "2", "--slot", slot, "--workload", "dirty:rate=2000,log=1",
          "--seed", "21", "--control", ctl};
}

// The data gfns the guest logged since the last call.
std::set<uint64_t> GuestWrites(ControlClient& client) {
  auto log = client.Ok({{"cmd", "guest-write-log"}});
  EXPECT_OK(log);
  std::set<uint64_t> out;
  if (!log.ok()) return out;
  for (const json& vcpu : (*log)["vcpus"]) {
    for (uint64_t gfn : vcpu.get<std::vector<uint64_t>>()) out.insert(gfn);
  }
  return out;
}

// The data gfns KVM's dirty log reports since the last call.
std::set<uint64_t> KvmDirty(ControlClient& client) {
  auto log = client.Ok({{"cmd", "dirty-log"}});
  EXPECT_OK(log);
  std::set<uint64_t> out;
  if (!log.ok()) return out;
  for (const json& slot : (*log)["slots"]) {
    auto words = Base64Decode(slot["bitmap"].get<std::string>());
    EXPECT_OK(words);
    uint64_t first_gfn = slot["gpa"].get<uint64_t>() / 4096, npages = slot["npages"];
    for (uint64_t p = 0; p < npages; ++p) {
      uint8_t byte = std::to_integer<uint8_t>((*words)[p / 8]);
      if (((byte >> (p % 8)) & 1) != 0 && first_gfn + p >= kFirstDataGfn) out.insert(first_gfn + p);
    }
  }
  return out;
}

// "kvm only: ...; guest only: ..." for a failure message.
std::string Difference(const std::set<uint64_t>& kvm, const std::set<uint64_t>& guest) {
  std::string out = "; kvm only:";
  for (uint64_t g : kvm) {
    if (guest.count(g) == 0) out += " " + std::to_string(g);
  }
  out += "; guest only:";
  for (uint64_t g : guest) {
    if (kvm.count(g) == 0) out += " " + std::to_string(g);
  }
  return out;
}

TEST(VmmDirtyTest, HvaDirtyLogReportsExactlyThePagesTheGuestWrote) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  ::gmem::testing::TempDir dir;
  VmmProcess vmm(Args("hva", dir.File("ctl")));
  auto client = ControlClient::Connect(dir.File("ctl"));
  ASSERT_OK(client);
  for (int interval = 0; interval < 3; ++interval) {
    ASSERT_OK(client->Ok({{"cmd", "pause"}}));
    KvmDirty(*client);  // start the interval: clear both logs
    GuestWrites(*client);
    ASSERT_OK(client->Ok({{"cmd", "resume"}}));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    ASSERT_OK(client->Ok({{"cmd", "pause"}}));
    std::set<uint64_t> kvm = KvmDirty(*client);
    std::set<uint64_t> guest = GuestWrites(*client);
    EXPECT_GT(guest.size(), 50u);
    EXPECT_EQ(kvm, guest) << "interval " << interval << Difference(kvm, guest);
    ASSERT_OK(client->Ok({{"cmd", "resume"}}));
  }
  ASSERT_OK(client->Ok({{"cmd", "quit"}}));
  EXPECT_EQ(vmm.Wait(), 0) << vmm.err();
}

struct RegionView {
  memory::Region region;
  std::unique_ptr<memory::GuestMemfdMapping> mapping;
  std::unique_ptr<memory::DirtyTracker> tracker;
};

TEST(VmmDirtyTest, GmemContentHashFindsThePagesTheGuestWrote) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  ::gmem::testing::TempDir dir;
  VmmProcess vmm(Args("gmem", dir.File("ctl")));
  auto client = ControlClient::Connect(dir.File("ctl"));
  ASSERT_OK(client);
  ASSERT_OK(client->Ok({{"cmd", "pause"}}));
  std::vector<UniqueFd> fds;
  auto memfds = client->Ok({{"cmd", "get-memfds"}}, &fds);
  ASSERT_OK(memfds);
  std::vector<RegionView> views;
  const json& regions = (*memfds)["layout"]["regions"];
  ASSERT_EQ(fds.size(), regions.size());
  for (size_t i = 0; i < fds.size(); ++i) {
    RegionView v;
    v.region.gpa_base = regions[i]["gpa"];
    v.region.size_bytes = regions[i]["size"];
    auto gmem = memory::GuestMemfd::Adopt(std::move(fds[i]), v.region.size_bytes, regions[i]["flags"]);
    ASSERT_OK(gmem);
    auto mapping = memory::GuestMemfdMapping::Map(*gmem);
    ASSERT_OK(mapping);
    v.mapping = std::make_unique<memory::GuestMemfdMapping>(std::move(mapping).value());
    memory::AttributeMap shared(v.mapping->npages(), memory::PageAttr::kShared);
    v.tracker = std::make_unique<memory::DirtyTracker>(shared);
    v.tracker->AddSource(std::make_unique<memory::ContentHashSource>(*v.mapping, 0, v.mapping->npages()));
    auto first = v.tracker->BeginPass(shared);  // everything is dirty before the first send
    ASSERT_OK(first);
    ASSERT_OK(v.tracker->MarkSent(first->dirty));
    views.push_back(std::move(v));
  }
  GuestWrites(*client);
  auto kvm_log = client->Call({{"cmd", "dirty-log"}});
  ASSERT_OK(kvm_log);
  EXPECT_FALSE((*kvm_log)["ok"].get<bool>());  // gmem slots: KVM keeps no dirty log
  ASSERT_OK(client->Ok({{"cmd", "resume"}}));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_OK(client->Ok({{"cmd", "pause"}}));
  std::set<uint64_t> hashed;
  for (RegionView& v : views) {
    auto pass = v.tracker->BeginPass(memory::AttributeMap(v.mapping->npages(), memory::PageAttr::kShared));
    ASSERT_OK(pass);
    EXPECT_GT(pass->flagged_by(memory::DirtySourceKind::kContentHash), 0u);
    pass->dirty.ForEachSet([&](uint64_t p) {
      uint64_t gfn = v.region.gpa_base / 4096 + p;
      if (gfn >= kFirstDataGfn) hashed.insert(gfn);
    });
  }
  std::set<uint64_t> guest = GuestWrites(*client);
  EXPECT_GT(guest.size(), 50u);
  EXPECT_EQ(hashed, guest) << Difference(hashed, guest);
  ASSERT_OK(client->Ok({{"cmd", "quit"}}));
  EXPECT_EQ(vmm.Wait(), 0) << vmm.err();
}

}  // namespace
}  // namespace gmem::vmm
