#include "memory/deferred_release.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "memory/kvm_uapi.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

constexpr uint64_t kShared = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

// Whether this process's page tables map `addr` (/proc/self/pagemap, bit 63: present).
bool Mapped(const std::byte* addr) {
  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  uint64_t entry = 0;
  off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(addr) / kPageSize * sizeof(entry));
  bool ok = ::pread(fd, &entry, sizeof(entry), at) == static_cast<ssize_t>(sizeof(entry));
  ::close(fd);
  return ok && (entry >> 63) != 0;
}

class DeferredReleaseTest : public testing::RealVmTest {
 protected:
  static constexpr uint64_t kPages = 256;
  const char* SkipReason() const override { return "maps a real guest_memfd"; }
  void SetUp() override {
    RealVmTest::SetUp();
    if (IsSkipped()) return;
    auto g = GuestMemfd::Create(*vm_, kPages * kPageSize, kShared);
    ASSERT_OK(g);
    auto m = GuestMemfdMapping::Map(*g);
    ASSERT_OK(m);
    mapping_.emplace(std::move(*m));
    for (uint64_t p = 0; p < kPages; ++p) std::memset(mapping_->PageAddress(p), static_cast<int>(p % 200) + 1, kPageSize);
  }
  // How many of pages [first, first + count) this process maps; all keep their contents.
  uint64_t MappedPages(uint64_t first, uint64_t count) {
    uint64_t n = 0;
    for (uint64_t p = first; p < first + count; ++p) n += Mapped(mapping_->PageAddress(p)) ? 1 : 0;
    return n;
  }
  void ExpectContentsKept() {
    for (uint64_t p = 0; p < kPages; ++p) {
      ASSERT_EQ(std::to_integer<int>(mapping_->PageAddress(p)[kPageSize - 1]), static_cast<int>(p % 200) + 1) << p;
    }
  }
  std::optional<GuestMemfdMapping> mapping_;
};

TEST_F(DeferredReleaseTest, NeighbouringRangesMergeAndGoInOneCallOnFlush) {
  DeferredRelease release(/*threshold_pages=*/1000);
  release.Add(*mapping_, 16, 16);
  release.Add(*mapping_, 0, 16);   // touches the first from below
  release.Add(*mapping_, 24, 24);  // overlaps it
  release.Add(*mapping_, 48, 0);   // nothing
  EXPECT_EQ(release.pending_pages(), 48u);
  EXPECT_EQ(release.calls(), 0u);
  EXPECT_EQ(MappedPages(0, 48), 48u);  // nothing released yet
  release.Flush();
  EXPECT_EQ(release.calls(), 1u);
  EXPECT_EQ(release.pending_pages(), 0u);
  EXPECT_EQ(MappedPages(0, 48), 0u);
  EXPECT_EQ(MappedPages(48, kPages - 48), kPages - 48);  // never added: still mapped
  ExpectContentsKept();
}

TEST_F(DeferredReleaseTest, SeparateRangesAreReleasedSeparatelyOnceTheThresholdIsReached) {
  DeferredRelease release(/*threshold_pages=*/64);
  release.Add(*mapping_, 0, 32);
  release.Add(*mapping_, 100, 16);
  EXPECT_EQ(release.calls(), 0u);
  release.Add(*mapping_, 200, 16);  // 64 pending: released by this call, in three ranges
  EXPECT_EQ(release.pending_pages(), 0u);
  EXPECT_EQ(release.calls(), 3u);
  EXPECT_EQ(MappedPages(0, 32) + MappedPages(100, 16) + MappedPages(200, 16), 0u);
  EXPECT_EQ(MappedPages(32, 68), 68u);
  ExpectContentsKept();
}

TEST_F(DeferredReleaseTest, ThreadsAddingSideBySideLeaveNothingMappedAfterFlush) {
  DeferredRelease release(/*threshold_pages=*/48);
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t p = t * 8; p < kPages; p += 32) release.Add(*mapping_, p, 8);
    });
  }
  for (std::thread& t : threads) t.join();
  release.Flush();
  EXPECT_EQ(MappedPages(0, kPages), 0u);
  EXPECT_EQ(release.pending_pages(), 0u);
  EXPECT_LE(release.calls(), kPages / 8);  // how many merged depends on how the threads interleaved
  ExpectContentsKept();
}

}  // namespace
}  // namespace gmem::memory
