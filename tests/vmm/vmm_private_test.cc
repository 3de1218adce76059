// `gmem-vmm run --private PERCENT` on real KVM: the VM starts with that share of its data pages
// private (emulated CoCo) — reported by get-attributes, known to the guest's record, PROT_NONE in a
// toolkit's view, contents kept — and every workload still runs to a checksum that does not depend
// on the slot mode. The checksum covers the attribute table and the guest's record (vmm/
// memory_digest.h), so it is not the checksum of the same VM with --private 0: only the contents
// and the guest's results are the same.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

#include "memory/attribute_map.h"
#include "memory/guest_memfd.h"
#include "memory/guest_memfd_mapping.h"
#include "tests/testutil/testutil.h"
#include "tests/vmm/control_client.h"
#include "tests/vmm/vmm_process.h"
#include "vmm/guest/guest_abi.h"
#include "vmm/initial_contents.h"

namespace gmem::vmm {
namespace {

using nlohmann::json;
using testing::ControlClient;
using testing::RunForChecksum;
using testing::VmmProcess;

constexpr uint64_t kDataGfn = GMEM_GUEST_DATA_GPA / GMEM_GUEST_PAGE;

std::vector<std::string> Args(const std::string& workload, uint64_t seed, uint64_t steps, uint32_t percent,
                              std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"run", "--mem", "64M", "--coco", "emulated", "--workload", workload,
                                "--seed", std::to_string(seed), "--steps", std::to_string(steps),
                                "--private", std::to_string(percent)};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

json WaitForFinished(ControlClient& client) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    auto q = client.Ok({{"cmd", "query"}});
    if (!q.ok()) {
      ADD_FAILURE() << q.status().ToString();
      return {};
    }
    if ((*q)["state"] == "finished") return *q;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the VM never finished: " << q->dump();
      return *q;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// One region of a VM as the test sees it: its GPA, an unprotected mapping (the harness's view)
// and the attribute table from get-attributes.
struct RegionView {
  uint64_t gpa = 0;
  memory::GuestMemfd gmem;
  memory::GuestMemfdMapping raw;
  memory::AttributeMap attrs;
};

std::vector<RegionView> MapRegions(ControlClient& client) {
  std::vector<RegionView> out;
  auto attrs = client.Ok({{"cmd", "get-attributes"}});
  std::vector<UniqueFd> fds;
  auto memfds = client.Ok({{"cmd", "get-memfds"}}, &fds);
  EXPECT_OK(attrs);
  EXPECT_OK(memfds);
  if (!attrs.ok() || !memfds.ok()) return out;
  const json& regions = (*memfds)["layout"]["regions"];
  EXPECT_EQ(fds.size(), regions.size());
  EXPECT_EQ((*attrs)["regions"].size(), regions.size());
  for (size_t i = 0; i < fds.size() && i < regions.size(); ++i) {
    const json& a = (*attrs)["regions"][i];
    std::vector<memory::AttrRun> runs;
    for (const json& run : a["runs"]) {
      runs.push_back({run[0], run[1], run[2] == "private" ? memory::PageAttr::kPrivate : memory::PageAttr::kShared});
    }
    auto map = memory::AttributeMap::FromRuns(a["npages"], runs);
    auto gmem = memory::GuestMemfd::Adopt(std::move(fds[i]), regions[i]["size"], regions[i]["flags"]);
    EXPECT_OK(map);
    EXPECT_OK(gmem);
    if (!map.ok() || !gmem.ok()) return {};
    EXPECT_EQ(a["private"], map->CountPrivate());
    auto raw = memory::GuestMemfdMapping::Map(*gmem);
    EXPECT_OK(raw);
    if (!raw.ok()) return {};
    out.push_back(RegionView{regions[i]["gpa"], std::move(gmem).value(), std::move(raw).value(), std::move(map).value()});
  }
  return out;
}

// The host view of guest page `gfn` in the harness's unprotected mappings.
const std::byte* Page(const std::vector<RegionView>& regions, uint64_t gfn) {
  for (const RegionView& r : regions) {
    uint64_t first = r.gpa / GMEM_GUEST_PAGE;
    if (gfn >= first && gfn - first < r.attrs.npages()) return r.raw.PageAddress(gfn - first);
  }
  return nullptr;
}

// Bit `data_index` of the guest's private-page record. REQUIRES: region 0 is mapped.
bool RecordBit(const std::vector<RegionView>& regions, uint64_t data_index) {
  const std::byte* record = regions[0].raw.data() + GMEM_GUEST_RECORD_GPA;
  return ((std::to_integer<unsigned>(record[data_index / 8]) >> (data_index % 8)) & 1) != 0;
}

// Whether reading page `page` of `view` kills a child process with SIGSEGV.
bool ReadFaults(const memory::GuestMemfdMapping& view, uint64_t page) {
  pid_t child = ::fork();
  if (child == 0) {
    ::signal(SIGSEGV, SIG_DFL);  // sanitizers catch SIGSEGV: die of it instead
    volatile const std::byte* p = view.PageAddress(page);
    (void)*p;
    ::_exit(0);
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child) return false;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

TEST(VmmPrivateTest, QuarterOfTheDataPagesStartPrivateWithTheirContents) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  ::gmem::testing::TempDir dir;
  constexpr uint64_t kSeed = 11;
  // scramble: were boot-time privatisation a conversion with its contents policy, the private
  // pages would not hold the seeded contents below.
  VmmProcess vmm(Args("idle", kSeed, 200, 25,
                      {"--regions", "2", "--convert-contents", "scramble", "--control", dir.File("ctl"), "--linger"}));
  auto client = ControlClient::Connect(dir.File("ctl"));
  ASSERT_OK(client);
  json q = WaitForFinished(*client);
  EXPECT_EQ(q["conversions"], 0) << "private at boot is not a conversion";
  std::vector<RegionView> regions = MapRegions(*client);
  ASSERT_EQ(regions.size(), 2u);

  // Which pages are private: data pages only, in whole aligned 64 KiB runs, 25 % of them.
  std::vector<bool> is_private;
  for (const RegionView& r : regions) {
    r.attrs.ForEachRun([&](const memory::AttrRun& run) {
      const uint64_t gfn = r.gpa / GMEM_GUEST_PAGE + run.first;
      if (run.attr != memory::PageAttr::kPrivate) return;
      EXPECT_GE(gfn, kDataGfn) << "a page of the first 2 MiB (boot area, agent area) is private";
      EXPECT_EQ(gfn % kBootPrivateRunPages, 0u) << "run at gfn " << gfn;
      EXPECT_EQ(run.count % kBootPrivateRunPages, 0u) << "run at gfn " << gfn;
    });
    for (uint64_t p = 0; p < r.attrs.npages(); ++p) is_private.push_back(r.attrs.Get(p) == memory::PageAttr::kPrivate);
  }
  const uint64_t data_npages = is_private.size() - kDataGfn;
  uint64_t private_pages = 0;
  for (uint64_t gfn = kDataGfn; gfn < is_private.size(); ++gfn) private_pages += is_private[gfn] ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(private_pages), data_npages * 0.25, kBootPrivateRunPages);

  // The guest's record agrees, and the contents are the seeded ones (the idle guest writes none).
  std::vector<std::byte> want(GMEM_GUEST_PAGE);
  uint64_t checked = 0;
  ForEachClassRun(kSeed, data_npages, [&](uint64_t first, uint64_t count, PageClass cls) {
    if (::testing::Test::HasFatalFailure()) return;  // one mismatch is enough
    for (uint64_t i = first; i < first + count; ++i) {
      const uint64_t gfn = kDataGfn + i;
      ASSERT_EQ(RecordBit(regions, i), is_private[gfn]) << "data page " << i;
      if (!is_private[gfn]) continue;
      std::fill(want.begin(), want.end(), std::byte{0});
      FillPage(want.data(), cls, kSeed, gfn);
      const std::byte* page = Page(regions, gfn);
      ASSERT_NE(page, nullptr) << "gfn " << gfn;
      ASSERT_EQ(std::memcmp(page, want.data(), want.size()), 0) << "private page at gfn " << gfn;
      ++checked;
    }
  });
  EXPECT_EQ(checked, private_pages);

  // A toolkit's view (its mapping with the attributes applied): a private page faults, its shared
  // neighbours and the whole first 2 MiB do not.
  const RegionView& r1 = regions[1];
  auto view = memory::GuestMemfdMapping::Map(r1.gmem);
  ASSERT_OK(view);
  ASSERT_OK(view->ApplyAttributes(r1.attrs, 0));
  std::optional<uint64_t> private_page, shared_page;
  for (uint64_t p = 0; p < r1.attrs.npages() && !(private_page && shared_page); ++p) {
    (r1.attrs.Get(p) == memory::PageAttr::kPrivate ? private_page : shared_page) = p;
  }
  ASSERT_TRUE(private_page && shared_page);
  EXPECT_TRUE(ReadFaults(*view, *private_page));
  EXPECT_FALSE(ReadFaults(*view, *shared_page));
  auto view0 = memory::GuestMemfdMapping::Map(regions[0].gmem);
  ASSERT_OK(view0);
  ASSERT_OK(view0->ApplyAttributes(regions[0].attrs, 0));
  EXPECT_FALSE(ReadFaults(*view0, 0));
  EXPECT_FALSE(ReadFaults(*view0, GMEM_GUEST_AGENT_GPA / GMEM_GUEST_PAGE));
  EXPECT_FALSE(ReadFaults(*view0, kDataGfn - 1));

  ASSERT_OK(client->Ok({{"cmd", "quit"}}));
  EXPECT_EQ(vmm.Wait(), 0) << vmm.err();
  EXPECT_EQ(testing::ChecksumIn(vmm.out()).size(), 16u);
}

// The brief asked whether the checksum of --private 50 equals that of --private 0: it does not,
// because the checksum covers the attribute table and the guest's record. Everything else is the
// same: data pages, the guest's results.
TEST(VmmPrivateTest, ChecksumCoversTheAttributesButContentsAndResultsAreUnchanged) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  ::gmem::testing::TempDir dir;
  VmmProcess shared(Args("dirty", 4, 2000, 0, {"--control", dir.File("shared"), "--linger"}));
  VmmProcess half(Args("dirty", 4, 2000, 50, {"--control", dir.File("half"), "--linger"}));
  auto a = ControlClient::Connect(dir.File("shared"));
  auto b = ControlClient::Connect(dir.File("half"));
  ASSERT_OK(a);
  ASSERT_OK(b);
  WaitForFinished(*a);
  WaitForFinished(*b);
  std::vector<RegionView> ra = MapRegions(*a), rb = MapRegions(*b);
  ASSERT_EQ(ra.size(), 1u);
  ASSERT_EQ(rb.size(), 1u);
  EXPECT_EQ(ra[0].attrs.CountPrivate(), 0u);
  EXPECT_GT(rb[0].attrs.CountPrivate(), 0u);
  const uint64_t size = ra[0].raw.size_bytes();
  ASSERT_EQ(size, rb[0].raw.size_bytes());
  EXPECT_EQ(std::memcmp(ra[0].raw.data() + GMEM_GUEST_DATA_GPA, rb[0].raw.data() + GMEM_GUEST_DATA_GPA,
                        size - GMEM_GUEST_DATA_GPA), 0)
      << "the data pages differ";
  for (size_t field : {offsetof(gmem_guest_vcpu, step), offsetof(gmem_guest_vcpu, digest)}) {
    uint64_t va = 0, vb = 0;
    std::memcpy(&va, ra[0].raw.data() + GMEM_GUEST_VCPU_GPA + field, 8);
    std::memcpy(&vb, rb[0].raw.data() + GMEM_GUEST_VCPU_GPA + field, 8);
    EXPECT_EQ(va, vb) << "vCPU field at offset " << field;
  }
  ASSERT_OK(a->Ok({{"cmd", "quit"}}));
  ASSERT_OK(b->Ok({{"cmd", "quit"}}));
  ASSERT_EQ(shared.Wait(), 0) << shared.err();
  ASSERT_EQ(half.Wait(), 0) << half.err();
  EXPECT_NE(testing::ChecksumIn(shared.out()), testing::ChecksumIn(half.out()));
}

class VmmPrivateWorkloadTest : public ::testing::TestWithParam<const char*> {};

TEST_P(VmmPrivateWorkloadTest, RunsToTheSameChecksumInBothSlotModes) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  auto args = [](const std::string& slot) {
    return Args(GetParam(), 9, 3000, 50, {"--slot", slot, "--vcpus", "2", "--regions", "2"});
  };
  std::string gmem = RunForChecksum(args("gmem"));
  ASSERT_EQ(gmem.size(), 16u);
  EXPECT_EQ(gmem, RunForChecksum(args("hva")));
  EXPECT_EQ(gmem, RunForChecksum(args("gmem"))) << "not deterministic";
}

INSTANTIATE_TEST_SUITE_P(Workloads, VmmPrivateWorkloadTest, ::testing::Values("dirty", "convert", "idle"));

}  // namespace
}  // namespace gmem::vmm
