#include "memory/guest_memfd_mapping.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <vector>
#include <cstdio>

#include "memory/kvm_uapi.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;
constexpr uint64_t kShared = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

// Reads one byte of `addr` in a forked child. Returns the child's wait status.
int ReadInChild(const std::byte* addr) {
  pid_t pid = ::fork();
  if (pid == 0) {
    // The default action, so the child really dies of the signal (ASan would otherwise report
    // the fault and exit with a code).
    ::signal(SIGSEGV, SIG_DFL);
    ::signal(SIGBUS, SIG_DFL);
    volatile std::byte b = *static_cast<const volatile std::byte*>(addr);
    (void)b;
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

class GuestMemfdMappingTest : public testing::RealVmTest {
 protected:
  const char* SkipReason() const override { return "maps a real guest_memfd"; }
  GuestMemfdMapping MapNew(uint64_t npages, MapOptions options = {}) {
    auto g = GuestMemfd::Create(*vm_, npages * kPageSize, kShared);
    EXPECT_OK(g);
    auto m = GuestMemfdMapping::Map(*g, options);
    EXPECT_OK(m);
    return std::move(*m);
  }
};

TEST_F(GuestMemfdMappingTest, MapsReadsAndWrites) {
  GuestMemfdMapping m = MapNew(16, MapOptions{.populate = true});
  EXPECT_EQ(m.size_bytes(), 16 * kPageSize);
  EXPECT_EQ(m.npages(), 16u);
  for (uint64_t p = 0; p < 16; ++p) EXPECT_EQ(std::to_integer<int>(m.PageAddress(p)[123]), 0);  // fresh = zero
  std::memset(m.PageAddress(3), 0x5a, kPageSize);
  EXPECT_EQ(std::to_integer<int>(m.data()[3 * kPageSize + 4095]), 0x5a);
}

TEST_F(GuestMemfdMappingTest, MappingOutlivesTheGuestMemfdObject) {
  std::optional<GuestMemfdMapping> m;
  {
    auto g = GuestMemfd::Create(*vm_, 4 * kPageSize, kShared);
    ASSERT_OK(g);
    auto mapped = GuestMemfdMapping::Map(*g);
    ASSERT_OK(mapped);
    m.emplace(std::move(*mapped));
  }
  std::memset(m->PageAddress(1), 0x11, kPageSize);
  EXPECT_OK(m->PunchHole(1, 1));  // the mapping's own fd still works
  EXPECT_EQ(std::to_integer<int>(m->PageAddress(1)[0]), 0);
}

TEST_F(GuestMemfdMappingTest, PunchedPagesReadZerosAndNeighboursStay) {
  GuestMemfdMapping m = MapNew(16);
  std::memset(m.data(), 0xAB, 16 * kPageSize);
  ASSERT_OK(m.PunchHole(4, 8));
  for (uint64_t p = 0; p < 16; ++p) {
    const std::byte* page = m.PageAddress(p);
    bool punched = p >= 4 && p < 12;
    for (uint64_t i = 0; i < kPageSize; i += 511) {
      ASSERT_EQ(std::to_integer<int>(page[i]), punched ? 0 : 0xAB) << "page " << p << " byte " << i;
    }
  }
  EXPECT_THAT(m.PunchHole(15, 2), StatusIs(Code::kInvalidArgument, "outside the mapping's 16 pages"));
}

// Release drops only this process's page-table entries: the pages stay in the guest_memfd (still
// resident, same contents) and the process's resident set shrinks by them.
TEST_F(GuestMemfdMappingTest, ReleasedPagesKeepTheirContentsAndLeaveTheResidentSet) {
  constexpr uint64_t kPages = 4096;  // 16 MiB: clearly visible in VmRSS
  GuestMemfdMapping m = MapNew(kPages);
  for (uint64_t p = 0; p < kPages; ++p) std::memset(m.PageAddress(p), static_cast<int>(p % 251) + 1, kPageSize);
  auto rss_kib = [] {
    FILE* f = std::fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) {
      if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    }
    if (f != nullptr) std::fclose(f);
    return kib;
  };
  long before = rss_kib();
  ASSERT_OK(m.Release(0, kPages));
  long after = rss_kib();
  EXPECT_LE(after, before - 15 * 1024) << "VmRSS " << before << " kB -> " << after << " kB";
  std::vector<unsigned char> resident(kPages);
  ASSERT_OK(m.Residency(0, kPages, resident));
  for (uint64_t p = 0; p < kPages; p += 97) {
    ASSERT_EQ(resident[p] & 1, 1) << "page " << p << " left the guest_memfd";
    ASSERT_EQ(std::to_integer<int>(m.PageAddress(p)[4095]), static_cast<int>(p % 251) + 1) << "page " << p;
  }
  EXPECT_THAT(m.Release(kPages - 1, 2), StatusIs(Code::kInvalidArgument, "outside the mapping"));
}

TEST_F(GuestMemfdMappingTest, UnmappableGuestMemfdIsUnsupported) {
  auto g = GuestMemfd::Create(*vm_, 4 * kPageSize, 0);
  ASSERT_OK(g);
  EXPECT_THAT(GuestMemfdMapping::Map(*g), StatusIs(Code::kUnsupported, "without GUEST_MEMFD_FLAG_MMAP"));
}

TEST_F(GuestMemfdMappingTest, PrivateRangeFaultsInAChild) {
  GuestMemfdMapping m = MapNew(8);
  std::memset(m.data(), 0x42, 8 * kPageSize);
  ASSERT_OK(m.ProtectNone(2, 3));
  int status = ReadInChild(m.PageAddress(3) + 17);
  ASSERT_TRUE(WIFSIGNALED(status)) << "a read of a PROT_NONE (private) page must fault; status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
  status = ReadInChild(m.PageAddress(5));  // first page after the range: fine
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_OK(m.ProtectReadWrite(2, 3));
  status = ReadInChild(m.PageAddress(3) + 17);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(std::to_integer<int>(m.PageAddress(3)[17]), 0x42);  // contents preserved by mprotect
  EXPECT_THAT(m.ProtectNone(7, 2), StatusIs(Code::kInvalidArgument, "outside"));
}

TEST_F(GuestMemfdMappingTest, ApplyAttributesProtectsExactlyThePrivateRuns) {
  GuestMemfdMapping m = MapNew(32);
  AttributeMap attrs(16, PageAttr::kShared);  // a region at pages [8, 24) of the guest_memfd
  ASSERT_OK(attrs.SetRange(0, 2, PageAttr::kPrivate));
  ASSERT_OK(attrs.SetRange(10, 6, PageAttr::kPrivate));
  ASSERT_OK(m.ApplyAttributes(attrs, 8));
  for (uint64_t p = 0; p < 32; ++p) {
    bool priv = (p >= 8 && p < 10) || (p >= 18 && p < 24);
    int status = ReadInChild(m.PageAddress(p));
    EXPECT_EQ(WIFSIGNALED(status), priv) << "guest_memfd page " << p;
  }
  ASSERT_OK(attrs.SetRange(0, 16, PageAttr::kShared));
  ASSERT_OK(m.ApplyAttributes(attrs, 8));
  EXPECT_TRUE(WIFEXITED(ReadInChild(m.PageAddress(20))));
  EXPECT_THAT(m.ApplyAttributes(attrs, 20), StatusIs(Code::kInvalidArgument, "outside"));
}

TEST_F(GuestMemfdMappingTest, GuestMemfdWithoutInitSharedFaultsWithSigbus) {
  auto g = GuestMemfd::Create(*vm_, 4 * kPageSize, GUEST_MEMFD_FLAG_MMAP);
  ASSERT_OK(g);
  auto m = GuestMemfdMapping::Map(*g);
  ASSERT_OK(m);  // mapping works; every access is private to the host (reference §1.8)
  int status = ReadInChild(m->PageAddress(0));
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGBUS);
}

}  // namespace
}  // namespace gmem::memory
