// The migration harness every later migration test builds on: a hand-made copy of memory,
// attributes and state from a paused gmem-vmm into a second one started with --incoming, through
// the control socket (prepare-incoming, write through the mmap, set-attributes, set-state,
// resume), finishes with the same checksum as an uninterrupted run.
//
// The copy reads every page through the test's own unprotected mapping — private pages included.
// That is a harness shortcut: a real toolkit keeps private pages PROT_NONE and moves them through
// the guest's agent.

#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

#include "memory/guest_memfd.h"
#include "memory/guest_memfd_mapping.h"
#include "tests/testutil/testutil.h"
#include "tests/vmm/control_client.h"
#include "tests/vmm/vmm_process.h"

namespace gmem::vmm {
namespace {

using nlohmann::json;
using testing::ControlClient;
using testing::RunForChecksum;
using testing::VmmProcess;

struct CopyCase {
  const char* workload;
  const char* source_slot;
  const char* target_slot;
  const char* vcpus;
  const char* regions;
};

void PrintTo(const CopyCase& c, std::ostream* os) {
  *os << c.workload << " " << c.source_slot << "->" << c.target_slot << ", " << c.vcpus << " vCPU, " << c.regions
      << " regions";
}

std::vector<memory::GuestMemfdMapping> MapAll(const json& layout, std::vector<UniqueFd>& fds) {
  std::vector<memory::GuestMemfdMapping> out;
  const json& regions = layout["regions"];
  EXPECT_EQ(fds.size(), regions.size());
  for (size_t i = 0; i < fds.size() && i < regions.size(); ++i) {
    auto gmem = memory::GuestMemfd::Adopt(std::move(fds[i]), regions[i]["size"], regions[i]["flags"]);
    EXPECT_OK(gmem);
    if (!gmem.ok()) break;
    auto mapping = memory::GuestMemfdMapping::Map(*gmem);
    EXPECT_OK(mapping);
    if (!mapping.ok()) break;
    out.push_back(std::move(mapping).value());
  }
  return out;
}

class VmmIncomingTest : public ::testing::TestWithParam<CopyCase> {};

TEST_P(VmmIncomingTest, HandMadeCopyFinishesWithTheSameChecksum) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  const CopyCase& c = GetParam();
  auto args = [&](const std::string& workload, const std::string& slot) {
    return std::vector<std::string>{"run", "--mem", "32M", "--regions", c.regions, "--vcpus", c.vcpus, "--coco",
                                    "emulated", "--slot", slot, "--workload", workload, "--seed", "13", "--steps", "3000"};
  };
  std::string baseline = RunForChecksum(args(c.workload, "gmem"));
  ::gmem::testing::TempDir dir;
  auto src_args = args(std::string(c.workload) + ":rate=2000", c.source_slot);
  src_args.insert(src_args.end(), {"--control", dir.File("src")});
  VmmProcess source(src_args);
  VmmProcess target({"run", "--incoming", "--control", dir.File("dst")});
  auto src = ControlClient::Connect(dir.File("src"));
  auto dst = ControlClient::Connect(dir.File("dst"));
  ASSERT_OK(src);
  ASSERT_OK(dst);

  // The target refuses steps out of order.
  auto early = dst->Call({{"cmd", "resume"}});
  ASSERT_OK(early);
  EXPECT_FALSE((*early)["ok"].get<bool>());
  auto q0 = dst->Ok({{"cmd", "query"}});
  ASSERT_OK(q0);
  EXPECT_EQ((*q0)["state"], "incoming");

  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto paused = src->Ok({{"cmd", "pause"}});
  ASSERT_OK(paused) << "source: " << source.err() << source.out();
  auto info = src->Ok({{"cmd", "query"}});
  ASSERT_OK(info);
  ASSERT_EQ((*info)["state"], "paused");
  auto state = src->Ok({{"cmd", "get-state"}});
  ASSERT_OK(state);
  auto attrs = src->Ok({{"cmd", "get-attributes"}});
  ASSERT_OK(attrs);
  std::vector<UniqueFd> src_fds, dst_fds;
  auto src_mem = src->Ok({{"cmd", "get-memfds"}}, &src_fds);
  ASSERT_OK(src_mem);
  auto prepared = dst->Ok(
      {{"cmd", "prepare-incoming"}, {"layout", (*info)["layout"]}, {"slot", c.target_slot}}, &dst_fds);
  ASSERT_OK(prepared);
  EXPECT_EQ((*prepared)["layout"], (*info)["layout"]);

  auto from = MapAll((*src_mem)["layout"], src_fds);
  auto to = MapAll((*prepared)["layout"], dst_fds);
  ASSERT_EQ(from.size(), to.size());
  for (size_t i = 0; i < from.size(); ++i) std::memcpy(to[i].data(), from[i].data(), from[i].size_bytes());

  json set_attrs = {{"cmd", "set-attributes"}, {"regions", (*attrs)["regions"]}};
  ASSERT_OK(dst->Ok(set_attrs));
  ASSERT_OK(dst->Ok({{"cmd", "set-state"}, {"state", (*state)["state"]}}));
  auto src_digest = src->Ok({{"cmd", "digest"}});
  auto dst_digest = dst->Ok({{"cmd", "digest"}});
  ASSERT_OK(src_digest);
  ASSERT_OK(dst_digest);
  EXPECT_EQ((*src_digest)["digest"], (*dst_digest)["digest"]);
  EXPECT_EQ((*src_digest)["checksum"], (*dst_digest)["checksum"]);
  auto dst_info = dst->Ok({{"cmd", "query"}});
  ASSERT_OK(dst_info);
  EXPECT_EQ((*dst_info)["slot"], c.target_slot);
  EXPECT_EQ((*dst_info)["workload"], (*info)["workload"]);

  ASSERT_OK(src->Ok({{"cmd", "quit"}}));
  EXPECT_EQ(source.Wait(), 0) << source.err();
  EXPECT_EQ(source.out(), "");  // a source that quits prints no checksum
  ASSERT_OK(dst->Ok({{"cmd", "resume"}}));
  ASSERT_EQ(target.Wait(), 0) << target.err();
  EXPECT_EQ(testing::ChecksumIn(target.out()), baseline);
}

INSTANTIATE_TEST_SUITE_P(Copies, VmmIncomingTest,
                         ::testing::Values(CopyCase{"dirty", "gmem", "gmem", "1", "1"},
                                           CopyCase{"convert", "hva", "gmem", "2", "2"}),
                         [](const auto& info) {
                           return std::string(info.param.workload) + "_" + info.param.source_slot + "_to_" +
                                  info.param.target_slot;
                         });

}  // namespace
}  // namespace gmem::vmm
