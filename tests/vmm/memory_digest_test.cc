#include "vmm/memory_digest.h"

#include <cstring>

#include "memory/kvm_system.h"
#include "tests/testutil/testutil.h"
#include "tests/vmm/vmm_process.h"
#include "vmm/guest/guest_abi.h"

namespace gmem::vmm {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// One 160 MiB region: its data pages are hashed as three chunks (64 + 64 + 30 MiB) on several
// threads, and the digest must still be one function of the contents.
class MemoryDigestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GMEM_VMM_SKIP_WITHOUT_KVM();
    auto kvm = memory::KvmSystem::Open();
    ASSERT_OK(kvm);
    auto vm = memory::Vm::Create(*kvm);
    ASSERT_OK(vm);
    auto memory = GuestMemory::Create(*vm, GuestMemory::MakeLayout(160 * kMiB, 1));
    ASSERT_OK(memory);
    kvm_.emplace(std::move(kvm).value());
    vm_.emplace(std::move(vm).value());
    memory_.emplace(std::move(memory).value());
    attrs_.emplace_back(memory_->layout().regions()[0].npages(), memory::PageAttr::kShared);
  }

  uint64_t Digest() const { return MemoryDigest(*memory_, attrs_); }
  std::byte* At(uint64_t gpa) const { return memory_->HostAddress(gpa, 1); }

  std::optional<memory::KvmSystem> kvm_;
  std::optional<memory::Vm> vm_;
  std::optional<GuestMemory> memory_;
  std::vector<memory::AttributeMap> attrs_;
};

TEST_F(MemoryDigestTest, EveryDataPageCountsAndHolesReadAsZeros) {
  const uint64_t fresh = Digest();
  EXPECT_EQ(Digest(), fresh);  // deterministic across the threads' scheduling
  // A page written with zeros (now resident) reads as the hole it was.
  std::memset(At(100 * kMiB), 0, 4096);
  EXPECT_EQ(Digest(), fresh);
  // A byte in each chunk, the last page included, changes it; undone, it is back.
  const uint64_t bytes[] = {GMEM_GUEST_DATA_GPA, 66 * kMiB + 5, 130 * kMiB + 7, 160 * kMiB - 1};
  for (uint64_t gpa : bytes) {
    *At(gpa) = std::byte{1};
    EXPECT_NE(Digest(), fresh) << gpa;
    *At(gpa) = std::byte{0};
    EXPECT_EQ(Digest(), fresh) << gpa;
  }
  // The same byte in two different chunks gives two different digests (chunk order counts).
  *At(10 * kMiB) = std::byte{1};
  uint64_t first = Digest();
  *At(10 * kMiB) = std::byte{0};
  *At(80 * kMiB) = std::byte{1};
  EXPECT_NE(Digest(), first);
  *At(80 * kMiB) = std::byte{0};
  // The boot area's control pages are left out; the private-page record is not.
  *At(GMEM_GUEST_DATA_GPA - 8) = std::byte{1};
  EXPECT_EQ(Digest(), fresh);
  *At(GMEM_GUEST_RECORD_GPA) = std::byte{1};
  EXPECT_NE(Digest(), fresh);
}

}  // namespace
}  // namespace gmem::vmm
