// End-to-end tests of the reference VMM on real KVM: checksums across slot modes, seeds, contents
// policies, pauses; conversions and the private-page view; malformed control requests.

#include "vmm/vmm.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "memory/guest_memfd.h"
#include "memory/guest_memfd_mapping.h"
#include "tests/testutil/testutil.h"
#include "tests/vmm/control_client.h"
#include "tests/vmm/vmm_process.h"
#include "vmm/guest/guest_abi.h"

namespace gmem::vmm {
namespace {

using nlohmann::json;
using testing::ControlClient;
using testing::RunForChecksum;
using testing::VmmProcess;

std::vector<std::string> Args(const std::string& workload, const std::string& slot, uint64_t seed, uint64_t steps,
                              std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"run", "--mem", "32M", "--coco", "emulated", "--slot", slot, "--workload", workload,
                                "--seed", std::to_string(seed), "--steps", std::to_string(steps)};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Polls `query` until the VM reports `state`.
json WaitForState(ControlClient& client, const std::string& state, int timeout_ms = 60000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto q = client.Ok({{"cmd", "query"}});
    if (!q.ok()) {
      ADD_FAILURE() << q.status().ToString();
      return {};
    }
    if ((*q)["state"] == state) return *q;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "VM never reached state " << state << ": " << q->dump();
      return *q;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

class VmmWorkloadTest : public ::testing::TestWithParam<const char*> {};

TEST_P(VmmWorkloadTest, SameChecksumInBothSlotModes) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  std::string gmem = RunForChecksum(Args(GetParam(), "gmem", 7, 3000));
  std::string hva = RunForChecksum(Args(GetParam(), "hva", 7, 3000));
  ASSERT_EQ(gmem.size(), 16u);
  EXPECT_EQ(gmem, hva);
}

INSTANTIATE_TEST_SUITE_P(Workloads, VmmWorkloadTest, ::testing::Values("dirty", "convert", "idle"));

TEST(VmmTest, DifferentSeedsAndStepsGiveDifferentChecksums) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  std::string a = RunForChecksum(Args("dirty", "gmem", 1, 2000));
  std::string b = RunForChecksum(Args("dirty", "gmem", 2, 2000));
  std::string c = RunForChecksum(Args("dirty", "gmem", 1, 2001));
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(a, RunForChecksum(Args("dirty", "gmem", 1, 2000)));
}

TEST(VmmTest, ConvertChecksumDoesNotDependOnConversionContents) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  // The convert workload rewrites a page after converting it, before it reads it again.
  std::string preserve = RunForChecksum(Args("convert:every=2", "gmem", 5, 2000, {"--convert-contents", "preserve"}));
  std::string zero = RunForChecksum(Args("convert:every=2", "gmem", 5, 2000, {"--convert-contents", "zero"}));
  std::string scramble = RunForChecksum(Args("convert:every=2", "hva", 5, 2000, {"--convert-contents", "scramble"}));
  EXPECT_EQ(preserve, zero);
  EXPECT_EQ(preserve, scramble);
  // Without private memory the requests fail, so the run differs.
  std::vector<std::string> none = Args("convert:every=2", "gmem", 5, 2000);
  none[4] = "none";
  EXPECT_NE(preserve, RunForChecksum(none));
}

TEST(VmmTest, SeveralVcpusAndRegions) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  std::string gmem = RunForChecksum(Args("convert", "gmem", 3, 3000, {"--vcpus", "2", "--regions", "3"}));
  std::string hva = RunForChecksum(Args("convert", "hva", 3, 3000, {"--vcpus", "2", "--regions", "3"}));
  EXPECT_EQ(gmem, hva);
  EXPECT_NE(gmem, RunForChecksum(Args("convert", "gmem", 3, 3000, {"--vcpus", "2", "--regions", "2"})));
}

TEST(VmmTest, InitFromRawImage) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  ::gmem::testing::TempDir dir;
  {
    std::ofstream img(dir.File("img"), std::ios::binary);
    std::mt19937_64 rng(3);
    Bytes data = ::gmem::testing::RandomBytes(rng, 8 << 20);
    img.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  std::vector<std::string> args = {"run", "--mem", "16M", "--workload", "dirty", "--steps", "1000", "--init-from",
                                   dir.File("img")};
  std::string a = RunForChecksum(args);
  EXPECT_EQ(a, RunForChecksum(args));
  EXPECT_NE(a, RunForChecksum({"run", "--mem", "16M", "--workload", "dirty", "--steps", "1000"}));
}

TEST(VmmTest, RateLimitsStepsWithoutChangingTheChecksum) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  std::string fast = RunForChecksum(Args("dirty", "gmem", 6, 1000));
  VmmProcess slow(Args("dirty:rate=2000", "gmem", 6, 1000, {"--json"}));
  ASSERT_EQ(slow.Wait(), 0) << slow.err();
  json done = json::parse(slow.out());
  EXPECT_EQ(done["event"], "done");
  EXPECT_EQ(done["checksum"], fast);
  EXPECT_EQ(done["steps"], 1000);
  EXPECT_GE(done["seconds"].get<double>(), 0.45);  // 1000 steps at 2000 steps/s
}

// set-rate: a crawling guest (5 steps/s would need 300 s) finishes at once when the limit goes;
// a fast one slows down when it comes; pauses in between; the checksum is the unlimited run's.
TEST(VmmTest, SetRateChangesTheLimitWhileRunningOrPausedWithoutChangingTheChecksum) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  std::string baseline = RunForChecksum(Args("convert", "gmem", 8, 3000, {"--vcpus", "2"}));
  ::gmem::testing::TempDir dir;
  VmmProcess vmm(Args("convert:rate=5", "gmem", 8, 3000, {"--vcpus", "2", "--control", dir.File("ctl")}));
  auto client = ControlClient::Connect(dir.File("ctl"));
  ASSERT_OK(client);
  auto steps = [&] {
    auto q = client->Ok({{"cmd", "query"}});
    uint64_t n = 0;
    if (q.ok()) {
      for (const auto& v : (*q)["vcpus"]) n += v["step"].get<uint64_t>();
    }
    return n;
  };
  // Unlimited for a moment, then limited again: progress must stop growing fast.
  ASSERT_OK(client->Ok({{"cmd", "set-rate"}, {"rate", 0}}));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_OK(client->Ok({{"cmd", "set-rate"}, {"rate", 1}}));
  uint64_t limited = steps();
  EXPECT_LT(limited, 3000u) << "finished within 100 ms: cannot see the limit come back";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_LE(steps(), limited + 2 * 2) << "the new limit (1 step/s per vCPU) was not applied";
  ASSERT_OK(client->Ok({{"cmd", "pause"}}));
  ASSERT_OK(client->Ok({{"cmd", "set-rate"}, {"rate", 0}}));
  auto q = client->Ok({{"cmd", "query"}});
  ASSERT_OK(q);
  EXPECT_THAT((*q)["workload"]["spec"].get<std::string>(), ::testing::HasSubstr("rate=0"));
  ASSERT_OK(client->Ok({{"cmd", "resume"}}));
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(vmm.Wait(60000), 0) << vmm.err();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(testing::ChecksumIn(vmm.out()), baseline);
}

struct PauseCase {
  const char* workload;
  const char* slot;
  const char* vcpus;
};

void PrintTo(const PauseCase& c, std::ostream* os) { *os << c.workload << "/" << c.slot << "/" << c.vcpus << " vCPU"; }

class VmmPauseTest : public ::testing::TestWithParam<PauseCase> {};

TEST_P(VmmPauseTest, PausingAndResumingAtTwentyPointsKeepsTheChecksum) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  const PauseCase& pc = GetParam();
  std::string baseline = RunForChecksum(Args(pc.workload, pc.slot, 11, 4000, {"--vcpus", pc.vcpus}));
  ::gmem::testing::TempDir dir;
  VmmProcess vmm(Args(std::string(pc.workload) + ":rate=1500", pc.slot, 11, 4000,
                      {"--vcpus", pc.vcpus, "--control", dir.File("ctl")}));
  auto client = ControlClient::Connect(dir.File("ctl"));
  ASSERT_OK(client);
  std::mt19937 rng(99);
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 60));
    ASSERT_OK(client->Ok({{"cmd", "pause"}}));
    auto before = client->Ok({{"cmd", "query"}});
    ASSERT_OK(before);
    EXPECT_EQ((*before)["state"], "paused");
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
    auto after = client->Ok({{"cmd", "query"}});
    ASSERT_OK(after);
    EXPECT_EQ((*before)["vcpus"], (*after)["vcpus"]) << "a paused VM made progress";
    ASSERT_OK(client->Ok({{"cmd", "resume"}}));
  }
  ASSERT_EQ(vmm.Wait(), 0) << vmm.err();
  EXPECT_EQ(testing::ChecksumIn(vmm.out()), baseline);
}

INSTANTIATE_TEST_SUITE_P(Modes, VmmPauseTest,
                         ::testing::Values(PauseCase{"dirty", "gmem", "1"}, PauseCase{"convert", "hva", "2"}),
                         [](const auto& info) {
                           return std::string(info.param.workload) + "_" + info.param.slot + "_" + info.param.vcpus +
                                  "vcpu";
                         });

TEST(VmmTest, MalformedRequestsGetErrorsAndTheVmKeepsRunning) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  std::string baseline = RunForChecksum(Args("dirty", "gmem", 4, 3000));
  ::gmem::testing::TempDir dir;
  VmmProcess vmm(Args("dirty:rate=3000", "gmem", 4, 3000, {"--control", dir.File("ctl")}));
  auto client = ControlClient::Connect(dir.File("ctl"));
  ASSERT_OK(client);
  const std::pair<std::string, std::string> bad[] = {
      {"{\"id\":", "malformed JSON"},
      {"[]", "must be a JSON object"},
      {"{\"cmd\":\"query\"}", "missing 'id'"},
      {"{\"id\":5,\"cmd\":\"explode\"}", "unknown command 'explode'"},
      {"{\"id\":6,\"cmd\":\"set-state\"}", "missing 'state'"},
      {"{\"id\":7,\"cmd\":\"set-state\",\"state\":\"AAAA\"}", "bad magic"},
      {"{\"id\":8,\"cmd\":\"get-state\"}", "the VM must be paused"},
      {"{\"id\":9,\"cmd\":\"dirty-log\"}", "KVM keeps no dirty log"},
      {"{\"id\":11,\"cmd\":\"set-rate\"}", "set-rate: missing 'rate'"},
      {"{\"id\":12,\"cmd\":\"set-rate\",\"rate\":-3}", "'rate' must be a non-negative integer"},
      {"{\"id\":10,\"cmd\":\"prepare-incoming\",\"layout\":{\"regions\":[]}}", "not started with --incoming"},
  };
  for (const auto& [line, error] : bad) {
    auto reply = client->CallRaw(line);
    ASSERT_OK(reply);
    EXPECT_FALSE((*reply)["ok"].get<bool>()) << line;
    EXPECT_THAT((*reply)["error"].get<std::string>(), ::testing::HasSubstr(error)) << line;
  }
  auto q = client->Ok({{"cmd", "query"}});
  ASSERT_OK(q);
  EXPECT_EQ((*q)["state"], "running");
  // A second client, while the first stays connected.
  auto second = ControlClient::Connect(dir.File("ctl"));
  ASSERT_OK(second);
  ASSERT_OK(second->Ok({{"cmd", "digest"}}));
  ASSERT_EQ(vmm.Wait(), 0) << vmm.err();
  EXPECT_EQ(testing::ChecksumIn(vmm.out()), baseline);
}

// Reads bit `index` of the guest's private-page record.
bool RecordBit(const std::byte* region0, uint64_t index) {
  return ((std::to_integer<unsigned>(region0[GMEM_GUEST_RECORD_GPA + index / 8]) >> (index % 8)) & 1) != 0;
}

TEST(VmmTest, ConvertRunAttributesMatchTheGuestsRecordAndPrivatePagesFault) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  ::gmem::testing::TempDir dir;
  VmmProcess vmm(Args("convert:every=2,pages=512", "hva", 8, 3000, {"--control", dir.File("ctl"), "--linger"}));
  auto client = ControlClient::Connect(dir.File("ctl"));
  ASSERT_OK(client);
  WaitForState(*client, "finished");
  auto attrs = client->Ok({{"cmd", "get-attributes"}});
  ASSERT_OK(attrs);
  std::vector<UniqueFd> fds;
  auto memfds = client->Ok({{"cmd", "get-memfds"}}, &fds);
  ASSERT_OK(memfds);
  ASSERT_EQ(fds.size(), 1u);
  uint64_t size = (*memfds)["layout"]["regions"][0]["size"];
  auto gmem = memory::GuestMemfd::Adopt(std::move(fds[0]), size, 3);
  ASSERT_OK(gmem);
  auto raw = memory::GuestMemfdMapping::Map(*gmem);  // the test's unprotected view
  ASSERT_OK(raw);
  const std::byte* mem = raw->data();
  uint64_t private_pages = 0;
  uint64_t private_example = 0;
  for (const json& run : (*attrs)["regions"][0]["runs"]) {
    uint64_t first = run[0], count = run[1];
    bool priv = run[2] == "private";
    for (uint64_t p = first; p < first + count; ++p) {
      if (p < GMEM_GUEST_DATA_GPA / 4096) {
        EXPECT_FALSE(priv) << "boot page " << p << " is private";
        continue;
      }
      uint64_t index = p - GMEM_GUEST_DATA_GPA / 4096;
      ASSERT_EQ(RecordBit(mem, index), priv) << "data page " << index;
      if (priv) {
        ++private_pages;
        private_example = p;
        // A page written while private starts with the private marker + 16 bytes from seed and gfn.
        EXPECT_EQ(std::memcmp(mem + p * 4096, "GMEMKIT-PRIVATE!", 16), 0) << "page " << p;
        uint64_t tail;
        std::memcpy(&tail, mem + p * 4096 + 16, 8);
        EXPECT_EQ(tail, gmem_guest_marker_tail(8, p, 0));
      }
    }
  }
  EXPECT_GT(private_pages, 20u);
  EXPECT_EQ((*attrs)["regions"][0]["private"], private_pages);

  // The toolkit's view: private pages PROT_NONE, so reading one faults (in a child process).
  auto view = memory::GuestMemfdMapping::Map(*gmem);
  ASSERT_OK(view);
  std::vector<memory::AttrRun> runs;
  for (const json& run : (*attrs)["regions"][0]["runs"]) {
    runs.push_back({run[0], run[1], run[2] == "private" ? memory::PageAttr::kPrivate : memory::PageAttr::kShared});
  }
  auto attr_map = memory::AttributeMap::FromRuns(size / 4096, runs);
  ASSERT_OK(attr_map);
  ASSERT_OK(view->ApplyAttributes(*attr_map, 0));
  volatile const std::byte* shared_page = view->PageAddress(GMEM_GUEST_DATA_GPA / 4096 - 1);
  (void)*shared_page;  // shared pages stay readable
  pid_t child = fork();
  if (child == 0) {
    signal(SIGSEGV, SIG_DFL);  // sanitizers catch SIGSEGV: die of it instead
    volatile const std::byte* priv = view->PageAddress(private_example);
    (void)*priv;
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) << "status " << status;
  ASSERT_OK(client->Ok({{"cmd", "quit"}}));
  EXPECT_EQ(vmm.Wait(), 0) << vmm.err();
  EXPECT_EQ(testing::ChecksumIn(vmm.out()).size(), 16u);
}

}  // namespace
}  // namespace gmem::vmm
