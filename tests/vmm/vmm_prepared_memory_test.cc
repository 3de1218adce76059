// An incoming VM started with --mem (VmmConfig::mem_bytes): its guest memory exists, every page
// populated, before the control socket listens; prepare-incoming accepts only that layout (and a
// refused one leaves the VM incoming with its memory), and the memory reads as zeros. End to end:
// `gmem-migrate send/recv` into a `run --incoming --mem` target.

#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "memory/guest_memfd.h"
#include "memory/guest_memfd_mapping.h"
#include "tests/testutil/testutil.h"
#include "tests/vmm/control_client.h"
#include "tests/vmm/vmm_process.h"
#include "vmm/guest_memory.h"
#include "vmm/vmm.h"

namespace gmem::vmm {
namespace {

using ::gmem::testing::RunTool;
using ::gmem::testing::StatusIs;
using ::gmem::testing::TempDir;
using ::gmem::testing::ToolProcess;
using testing::ChecksumIn;
using testing::ControlClient;
using testing::RunForChecksum;
using testing::VmmProcess;

constexpr uint64_t kMiB = uint64_t{1} << 20;

VmmConfig IncomingConfig(uint64_t mem_bytes, uint32_t regions) {
  VmmConfig c;
  c.incoming = true;
  c.mem_bytes = mem_bytes;
  c.regions = regions;
  return c;
}

// What a fresh mapping of the returned guest_memfds finds: how many pages have memory behind them
// (mincore, before anything touches them) and whether every byte reads zero.
struct MemoryView {
  uint64_t pages = 0;
  uint64_t resident = 0;
  bool all_zero = true;
};

MemoryView Inspect(MemfdSet& set) {
  MemoryView view;
  EXPECT_EQ(set.fds.size(), set.layout.regions().size());
  for (size_t i = 0; i < set.fds.size() && i < set.layout.regions().size(); ++i) {
    const memory::Region& r = set.layout.regions()[i];
    auto gmem = memory::GuestMemfd::Adopt(std::move(set.fds[i]), r.size_bytes, r.gmem_flags);
    EXPECT_OK(gmem);
    if (!gmem.ok()) return view;
    auto mapping = memory::GuestMemfdMapping::Map(*gmem);
    EXPECT_OK(mapping);
    if (!mapping.ok()) return view;
    std::vector<unsigned char> residency(mapping->npages());
    EXPECT_OK(mapping->Residency(0, mapping->npages(), residency));
    view.pages += mapping->npages();
    for (unsigned char bit : residency) view.resident += bit & 1;
    const auto* words = reinterpret_cast<const uint64_t*>(mapping->data());
    uint64_t nwords = mapping->size_bytes() / sizeof(uint64_t);
    uint64_t any = 0;
    for (uint64_t w = 0; w < nwords; ++w) any |= words[w];
    view.all_zero = view.all_zero && any == 0;
  }
  return view;
}

class VmmPreparedMemoryTest : public ::testing::TestWithParam<SlotMode> {};

TEST_P(VmmPreparedMemoryTest, MatchingPrepareReturnsTheResidentZeroedMemory) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  auto vmm = Vmm::Create(IncomingConfig(64 * kMiB, 2));
  ASSERT_OK(vmm);
  VmmInfo before = (*vmm)->Query();
  EXPECT_EQ(before.state, VmmState::kIncoming);
  EXPECT_FALSE(before.memory_ready);  // no memslots, nothing handed out yet
  EXPECT_EQ(before.prepared_bytes, 64 * kMiB);
  EXPECT_THAT((*vmm)->GetMemfds(), StatusIs(Code::kInvalidArgument, "send prepare-incoming first"));

  memory::Layout layout = GuestMemory::MakeLayout(64 * kMiB, 2);
  auto set = (*vmm)->PrepareIncoming(layout, GetParam());
  ASSERT_OK(set);
  EXPECT_EQ(set->layout, layout);
  MemoryView view = Inspect(*set);
  EXPECT_EQ(view.pages, 64 * kMiB / 4096);
  EXPECT_EQ(view.resident, view.pages) << "the memory was not populated before prepare-incoming";
  EXPECT_TRUE(view.all_zero);

  VmmInfo after = (*vmm)->Query();
  EXPECT_EQ(after.state, VmmState::kIncoming);
  EXPECT_TRUE(after.memory_ready);
  EXPECT_EQ(after.layout, layout);
  EXPECT_EQ(after.slot, GetParam());
  if (GetParam() == SlotMode::kHva) {
    auto logs = (*vmm)->FetchDirtyLog();
    ASSERT_OK(logs);
    EXPECT_EQ(logs->size(), 2u);
  }
  EXPECT_THAT((*vmm)->PrepareIncoming(layout, std::nullopt), StatusIs(Code::kInvalidArgument, "already exist"));
}

INSTANTIATE_TEST_SUITE_P(Slots, VmmPreparedMemoryTest, ::testing::Values(SlotMode::kGmem, SlotMode::kHva),
                         [](const auto& info) { return std::string(SlotModeName(info.param)); });

// The contrast that makes the residency check mean something: without --mem, prepare-incoming
// creates the memory and hands it out untouched.
TEST(VmmPreparedMemoryTest, WithoutMemThePreparedPagesAreNotResident) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  auto vmm = Vmm::Create(IncomingConfig(0, 1));
  ASSERT_OK(vmm);
  EXPECT_EQ((*vmm)->Query().prepared_bytes, 0u);
  auto set = (*vmm)->PrepareIncoming(GuestMemory::MakeLayout(16 * kMiB, 2), std::nullopt);
  ASSERT_OK(set);
  MemoryView view = Inspect(*set);
  EXPECT_EQ(view.pages, 16 * kMiB / 4096);
  EXPECT_EQ(view.resident, 0u);
  EXPECT_TRUE(view.all_zero);
}

TEST(VmmPreparedMemoryTest, AnotherLayoutIsRefusedAndTheVmStaysPrepared) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  auto vmm = Vmm::Create(IncomingConfig(64 * kMiB, 2));
  ASSERT_OK(vmm);
  EXPECT_THAT((*vmm)->PrepareIncoming(GuestMemory::MakeLayout(64 * kMiB, 1), std::nullopt),
              StatusIs(Code::kInvalidArgument,
                       "prepare-incoming: the stream's layout (1 region, 64 MiB) does not match this VM's --mem 64M "
                       "--regions 2 (2 regions, 64 MiB)"));
  EXPECT_THAT((*vmm)->PrepareIncoming(GuestMemory::MakeLayout(128 * kMiB, 2), std::nullopt),
              StatusIs(Code::kInvalidArgument, "the stream's layout (2 regions, 128 MiB) does not match"));
  // Same count and total, another split: the first region that differs is named.
  memory::Layout uneven = GuestMemory::MakeLayout(64 * kMiB, 2);
  memory::Layout shifted;
  for (memory::Region r : uneven.regions()) {
    if (r.id == 0) r.size_bytes = 16 * kMiB;
    if (r.id == 1) {
      r.gpa_base = 16 * kMiB;
      r.size_bytes = 48 * kMiB;
    }
    shifted.Add(r);
  }
  EXPECT_THAT((*vmm)->PrepareIncoming(shifted, std::nullopt),
              StatusIs(Code::kInvalidArgument, "(2 regions, 64 MiB): region 0: size 16 MiB (this VM's 32 MiB)"));
  // A field the summary does not show.
  memory::Layout flags;
  for (memory::Region r : uneven.regions()) {
    r.gmem_flags = 1;
    flags.Add(r);
  }
  EXPECT_THAT((*vmm)->PrepareIncoming(flags, std::nullopt),
              StatusIs(Code::kInvalidArgument, "region 0: flags 0x1 (this VM's 0x3)"));

  VmmInfo info = (*vmm)->Query();
  EXPECT_EQ(info.state, VmmState::kIncoming);
  EXPECT_FALSE(info.memory_ready);
  EXPECT_EQ(info.prepared_bytes, 64 * kMiB);

  auto set = (*vmm)->PrepareIncoming(uneven, std::nullopt);
  ASSERT_OK(set);
  MemoryView view = Inspect(*set);
  EXPECT_EQ(view.resident, view.pages);
  EXPECT_TRUE(view.all_zero);
}

// A fresh VM (its --mem is its own running memory) prepares nothing and refuses prepare-incoming.
TEST(VmmPreparedMemoryTest, AFreshVmHasNoPreparedMemory) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  VmmConfig c;
  c.mem_bytes = 16 * kMiB;
  c.steps = 10;
  auto vmm = Vmm::Create(c);
  ASSERT_OK(vmm);
  EXPECT_EQ((*vmm)->Query().prepared_bytes, 0u);
  EXPECT_THAT((*vmm)->PrepareIncoming(GuestMemory::MakeLayout(16 * kMiB, 1), std::nullopt),
              StatusIs(Code::kInvalidArgument, "not started with --incoming"));
}

// The command line: `run --incoming --mem SIZE --regions N` starts, is incoming without memslots,
// and quits cleanly.
TEST(VmmPreparedMemoryTest, IncomingWithMemStartsFromTheCommandLine) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  TempDir dir;
  VmmProcess target({"run", "--incoming", "--mem", "64M", "--regions", "2", "--control", dir.File("dst")});
  auto client = ControlClient::Connect(dir.File("dst"));
  ASSERT_OK(client) << target.err();
  auto info = client->Ok({{"cmd", "query"}});
  ASSERT_OK(info);
  EXPECT_EQ((*info)["state"], "incoming");
  EXPECT_EQ((*info)["memory_ready"], false);
  ASSERT_OK(client->Ok({{"cmd", "quit"}}));
  EXPECT_EQ(target.Wait(), 0) << target.err();
}

// gmem-migrate send/recv between two gmem-vmm processes, the target started with the source's
// --mem and --regions: the migration completes and the target ends with the uninterrupted
// checksum.
std::vector<std::string> SourceArgs(bool with_rate) {
  return {"run", "--mem", "32M", "--regions", "2", "--workload", with_rate ? "dirty:rate=1000" : "dirty",
          "--seed", "13", "--steps", "3000"};
}

TEST(VmmPreparedMemoryTest, LiveMigrationIntoAPreSizedTargetKeepsTheChecksum) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  std::string baseline = RunForChecksum(SourceArgs(false));
  ASSERT_FALSE(baseline.empty());
  TempDir dir;
  ASSERT_EQ(RunTool("gmem-migrate", {"-q", "keygen", "--out", dir.File("key")}).exit_code, 0);
  auto src_args = SourceArgs(true);
  src_args.insert(src_args.end(), {"--control", dir.File("src")});
  VmmProcess source(src_args);
  VmmProcess target({"run", "--incoming", "--mem", "32M", "--regions", "2", "--control", dir.File("dst")});
  ASSERT_OK(ControlClient::Connect(dir.File("src")));
  ASSERT_OK(ControlClient::Connect(dir.File("dst")));
  std::string uri = "unix:" + dir.File("mig");
  ToolProcess recv("gmem-migrate", {"recv", "--vmm", dir.File("dst"), "--from", uri, "--key-file", dir.File("key")});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto send = RunTool("gmem-migrate", {"send", "--vmm", dir.File("src"), "--to", uri, "--key-file", dir.File("key"),
                                       "--verify-memory"});
  ASSERT_EQ(send.exit_code, 0) << send.err;
  ASSERT_EQ(recv.Wait(), 0) << recv.err();
  EXPECT_EQ(source.Wait(), 0) << source.err();
  EXPECT_EQ(source.out(), "");  // migrated away: it never finished here
  ASSERT_EQ(target.Wait(), 0) << target.err();
  EXPECT_EQ(ChecksumIn(target.out()), baseline);
}

// The same into a target sized differently: recv fails with the VMM's one-line reason.
TEST(VmmPreparedMemoryTest, LiveMigrationIntoAMisSizedTargetFailsClearly) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  TempDir dir;
  ASSERT_EQ(RunTool("gmem-migrate", {"-q", "keygen", "--out", dir.File("key")}).exit_code, 0);
  auto src_args = SourceArgs(true);
  src_args.insert(src_args.end(), {"--control", dir.File("src")});
  VmmProcess source(src_args);
  VmmProcess target({"run", "--incoming", "--mem", "64M", "--control", dir.File("dst")});
  ASSERT_OK(ControlClient::Connect(dir.File("src")));
  ASSERT_OK(ControlClient::Connect(dir.File("dst")));
  std::string uri = "unix:" + dir.File("mig");
  ToolProcess recv("gmem-migrate", {"recv", "--vmm", dir.File("dst"), "--from", uri, "--key-file", dir.File("key")});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto send = RunTool("gmem-migrate", {"send", "--vmm", dir.File("src"), "--to", uri, "--key-file", dir.File("key")});
  EXPECT_NE(send.exit_code, 0);
  EXPECT_NE(recv.Wait(), 0);
  EXPECT_THAT(recv.err(), ::testing::HasSubstr("VMM prepare-incoming: the stream's layout (2 regions, 32 MiB) does "
                                               "not match this VM's --mem 64M --regions 1 (1 region, 64 MiB)"));
  EXPECT_THAT(recv.err(), ::testing::Not(::testing::HasSubstr("prepare-incoming: prepare-incoming")));
  // The source keeps its guest: quit it.
  auto src = ControlClient::Connect(dir.File("src"));
  ASSERT_OK(src);
  ASSERT_OK(src->Ok({{"cmd", "quit"}}));
  EXPECT_EQ(source.Wait(), 0) << source.err();
}

}  // namespace
}  // namespace gmem::vmm
