// Incremental file streams: a full image with its page-hash table, increments that carry only
// what changed since their parent, and a restore that applies the chain oldest first — checked
// link by link — and ends with the uninterrupted run's checksum.

#include <chrono>
#include <filesystem>
#include <thread>

#include "memory/content_hash_source.h"
#include "migrate/incremental.h"
#include "migrate/source_region.h"
#include "migrate/source.h"
#include "migrate/target.h"
#include "migrate/vmm_client.h"
#include "tests/migrate/migrate_testing.h"

namespace gmem::migrate {
namespace {

using ::gmem::testing::StatusIs;
using testing::NewKey;
using testing::VmPair;
using testing::VmSpec;
using vmm::testing::ChecksumIn;
using vmm::testing::RunForChecksum;
using vmm::testing::VmmProcess;

TEST(PageHashTableTest, RoundTripsThroughStateEntriesAndRejectsBadOnes) {
  format::LayoutRecord layout;
  layout.regions.push_back({.id = 3, .page_size = 4096, .gpa_base = 0, .size_bytes = 8 << 12});
  std::vector<memory::PageHash> hashes(8);
  for (uint64_t p = 0; p < 8; ++p) hashes[p] = {p * 3 + 1, p * 7 + 2};
  std::vector<format::StateRecord> records = EncodePageHashes(3, hashes);
  ASSERT_EQ(records.size(), 1u);
  ASSERT_EQ(records[0].entries[0].name, "page-hashes/3/0");

  PageHashTable table(layout);
  bool taken = false;
  ASSERT_OK(table.Add({"vmm-state", {}}, taken));
  EXPECT_FALSE(taken);
  ASSERT_OK(table.Add(records[0].entries[0], taken));
  EXPECT_TRUE(taken);
  EXPECT_THAT(table.Add(records[0].entries[0], taken), StatusIs(Code::kCorrupt, "repeated"));
  auto done = std::move(table).Finish();
  ASSERT_OK(done);
  EXPECT_EQ((*done)[0], hashes);

  PageHashTable bad(layout);
  format::StateEntry wrong_region = records[0].entries[0];
  wrong_region.name = "page-hashes/4/0";
  EXPECT_THAT(bad.Add(wrong_region, taken), StatusIs(Code::kCorrupt, "unknown region 4"));
  format::StateEntry short_blob = records[0].entries[0];
  short_blob.blob.resize(16);
  EXPECT_THAT(bad.Add(short_blob, taken), StatusIs(Code::kCorrupt, "expected 128"));
  EXPECT_THAT(bad.Add({"page-hashes/3/x", {}}, taken), StatusIs(Code::kCorrupt, "malformed"));
  EXPECT_THAT(std::move(bad).Finish(), StatusIs(Code::kIncompatible, "no page-hash table"));
}

class IncrementalTest : public ::testing::TestWithParam<const char*> {
 protected:
  // Saves the source VM to `path` (it stays paused), with `parent` as the base when given.
  Expected<MigrationStats> Save(const std::string& path, const std::string& parent) {
    SourceOptions options;
    options.vmm_socket = vms_->source_socket;
    options.to_uri = "file:" + path;
    options.record_page_hashes = true;
    if (!parent.empty()) {
      auto base = LoadIncrementalBase(parent, key_);
      if (!base.ok()) return base.status();
      options.base = std::make_shared<const IncrementalBase>(std::move(base).value());
    }
    return MigrationSource(std::move(options), testing::CopyKey(key_)).Run();
  }

  Status ResumeSource() {
    GMEM_ASSIGN_OR_RETURN(VmmClient client, VmmClient::Connect(vms_->source_socket));
    return client.Resume();
  }

  // Restores into a fresh incoming VMM.
  Expected<TargetResult> Restore(VmmProcess& vmm, const std::string& socket, std::vector<std::string> parents,
                                 const std::string& image) {
    TargetOptions options;
    options.vmm_socket = socket;
    options.from_uri = "file:" + image;
    for (std::string& p : parents) p = "file:" + p;
    options.parents = std::move(parents);
    (void)vmm;
    return MigrationTarget(options, testing::CopyKey(key_)).Run();
  }

  // The source's memory as it is now, hashed page by page from scratch (per region, layout order).
  Expected<std::vector<std::vector<memory::PageHash>>> HashSourceMemory() {
    GMEM_ASSIGN_OR_RETURN(VmmClient client, VmmClient::Connect(vms_->source_socket));
    std::vector<UniqueFd> fds;
    GMEM_ASSIGN_OR_RETURN(format::LayoutRecord layout, client.GetMemfds(fds));
    GMEM_ASSIGN_OR_RETURN(std::vector<RegionAttributes> attrs, client.GetAttributes(layout));
    GMEM_ASSIGN_OR_RETURN(std::vector<memory::GuestMemfdMapping> mappings, MapRegions(layout, fds));
    std::vector<std::vector<memory::PageHash>> out;
    for (size_t i = 0; i < mappings.size(); ++i) {
      const format::Region& r = layout.regions[i];
      GMEM_ASSIGN_OR_RETURN(auto hashes,
                            memory::HashAllPages(mappings[i], r.gmem_offset / r.page_size, attrs[i].map, 2));
      out.push_back(std::move(hashes));
    }
    return out;
  }

  // What a child of the image at `path` compares against: its recorded page-hash table.
  Expected<std::vector<std::vector<memory::PageHash>>> RecordedHashes(const std::string& path) {
    GMEM_ASSIGN_OR_RETURN(IncrementalBase base, LoadIncrementalBase(path, key_));
    return base.hashes;
  }

  MigrationKey key_ = NewKey();
  std::unique_ptr<VmPair> vms_;
};

// The table an image records is built from the pages as they go out (not by reading memory again
// at the end): it must equal the hash of every page of the paused VM, for a full image and for an
// increment (whose unchanged pages are never sent), in both slot modes.
TEST_P(IncrementalTest, TheRecordedPageHashesAreThoseOfTheSavedMemory) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  VmSpec spec;
  spec.slot = GetParam();
  spec.workload = "dirty:pages=96";
  spec.steps = "4000";
  vms_ = std::make_unique<VmPair>(spec);
  const std::string full = vms_->dir.File("full.gmem");
  const std::string inc = vms_->dir.File("inc.gmem");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_OK(Save(full, ""));
  auto now = HashSourceMemory();
  ASSERT_OK(now);
  auto recorded = RecordedHashes(full);
  ASSERT_OK(recorded);
  ASSERT_EQ(recorded->size(), now->size());
  for (size_t i = 0; i < now->size(); ++i) EXPECT_TRUE((*recorded)[i] == (*now)[i]) << "region " << i;

  ASSERT_OK(ResumeSource());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto s1 = Save(inc, full);
  ASSERT_OK(s1);
  EXPECT_GT(s1->unchanged_pages, 0u);
  now = HashSourceMemory();
  ASSERT_OK(now);
  recorded = RecordedHashes(inc);
  ASSERT_OK(recorded);
  for (size_t i = 0; i < now->size(); ++i) EXPECT_TRUE((*recorded)[i] == (*now)[i]) << "region " << i;
}

TEST_P(IncrementalTest, AChainOfThreeRestoresToTheUninterruptedChecksum) {
  GMEM_VMM_SKIP_WITHOUT_KVM();
  VmSpec spec;
  spec.slot = GetParam();
  spec.workload = "dirty:pages=96";  // a small working set: increments stay small
  spec.steps = "4000";
  std::string baseline = RunForChecksum(testing::VmArgs(spec, false));
  ASSERT_FALSE(baseline.empty());
  vms_ = std::make_unique<VmPair>(spec);
  const std::string full = vms_->dir.File("full.gmem");
  const std::string inc1 = vms_->dir.File("inc1.gmem");
  const std::string inc2 = vms_->dir.File("inc2.gmem");

  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto s0 = Save(full, "");
  ASSERT_OK(s0) << vms_->source->err();
  ASSERT_OK(ResumeSource());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto s1 = Save(inc1, full);
  ASSERT_OK(s1);
  ASSERT_OK(ResumeSource());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto s2 = Save(inc2, inc1);
  ASSERT_OK(s2);
  {
    auto client = VmmClient::Connect(vms_->source_socket);
    ASSERT_OK(client);
    ASSERT_OK(client->Quit());  // the chain is the guest now
  }
  EXPECT_EQ(vms_->source->Wait(), 0);
  // Each increment carries the pages the guest changed, far fewer than the full image's.
  EXPECT_GT(s1->unchanged_pages, 0u);
  EXPECT_LT(std::filesystem::file_size(inc1) * 4, std::filesystem::file_size(full));
  EXPECT_LT(std::filesystem::file_size(inc2) * 4, std::filesystem::file_size(full));
  EXPECT_GT(s1->data_pages, 0u);  // the guest did write in between

  // A child without its parent, and a chain with a missing link: refused, never resumed.
  auto orphan = Restore(*vms_->target, vms_->target_socket, {}, inc2);
  EXPECT_THAT(orphan, StatusIs(Code::kIncompatible, "restore it together with its parent chain"));
  EXPECT_EQ(vms_->target->Wait(), 0);
  EXPECT_EQ(vms_->target->out(), "");
  std::string socket2 = vms_->dir.File("dst2.sock");
  VmmProcess target2({"run", "--incoming", "--control", socket2});
  auto skipped = Restore(target2, socket2, {full}, inc2);
  EXPECT_THAT(skipped, StatusIs(Code::kCorrupt, "not the increment of the one before it"));
  EXPECT_EQ(target2.Wait(), 0);
  EXPECT_EQ(target2.out(), "");

  std::string socket3 = vms_->dir.File("dst3.sock");
  VmmProcess target3({"run", "--incoming", "--control", socket3});
  auto restored = Restore(target3, socket3, {full, inc1}, inc2);
  ASSERT_OK(restored) << target3.err();
  EXPECT_TRUE(restored->resumed);
  EXPECT_EQ(restored->digest, s2->source_digest);  // the whole chain rebuilt the VM as paused
  ASSERT_EQ(target3.Wait(), 0) << target3.err();
  EXPECT_EQ(ChecksumIn(target3.out()), baseline);
}

INSTANTIATE_TEST_SUITE_P(SlotModes, IncrementalTest, ::testing::Values("gmem", "hva"));

}  // namespace
}  // namespace gmem::migrate
