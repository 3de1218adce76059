#include "memory/kernel_attribute_source.h"

#include "memory/capabilities.h"
#include "memory/kvm_uapi.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;

TEST(KernelAttributeSourceTest, AvailableExactlyWhenTheKernelOffersIt) {
  GMEM_SKIP_WITHOUT_KVM("issues KVM_SET_MEMORY_ATTRIBUTES2 on a real guest_memfd");
  auto kvm = KvmSystem::Open();
  ASSERT_OK(kvm);
  auto caps = ProbeCapabilities(*kvm);
  ASSERT_OK(caps);
  auto vm = Vm::Create(*kvm);
  ASSERT_OK(vm);
  auto g = GuestMemfd::Create(*vm, 16 * kPageSize, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
  ASSERT_OK(g);
  auto src = KernelAttributeSource::Create(*g, 0, 16);
  if (!caps->Has(Feature::kGmemMemoryAttributes)) {
    // This host (6.18): ENOTTY, so callers fall back to the emulated source.
    EXPECT_THAT(src, StatusIs(Code::kUnsupported, "KVM_SET_MEMORY_ATTRIBUTES2"));
    return;
  }
  ASSERT_OK(src);
  EXPECT_EQ(src->attributes().CountShared(), 16u);  // INIT_SHARED
  ASSERT_OK(src->Convert(2, 3, PageAttr::kPrivate));
  EXPECT_EQ(src->attributes().CountPrivate(), 3u);
  EXPECT_EQ(src->TakeConversions(), (std::vector<PageRange>{{2, 3}}));
}

TEST(KernelAttributeSourceTest, RejectsARegionOutsideTheGuestMemfd) {
  GMEM_SKIP_WITHOUT_KVM("creates a real guest_memfd");
  auto kvm = KvmSystem::Open();
  ASSERT_OK(kvm);
  auto vm = Vm::Create(*kvm);
  ASSERT_OK(vm);
  auto g = GuestMemfd::Create(*vm, 16 * kPageSize, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
  ASSERT_OK(g);
  EXPECT_THAT(KernelAttributeSource::Create(*g, 8 * kPageSize, 9), StatusIs(Code::kInvalidArgument, "outside"));
}

}  // namespace
}  // namespace gmem::memory
