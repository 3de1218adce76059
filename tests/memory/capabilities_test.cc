#include "memory/capabilities.h"

#include <cerrno>
#include <cstdio>

#include "memory/guest_memfd.h"
#include "memory/guest_memfd_mapping.h"
#include "memory/kvm_uapi.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;

TEST(CapabilitiesTest, ProbesTheRealKernel) {
  GMEM_SKIP_WITHOUT_KVM("probes the real KVM");
  auto kvm = KvmSystem::Open();
  ASSERT_OK(kvm);
  auto caps = ProbeCapabilities(*kvm);
  ASSERT_OK(caps);
  std::printf("%s", caps->ToString().c_str());  // informational

  // Internal consistency, whatever the host.
  EXPECT_FALSE(caps->kernel_release.empty());
  EXPECT_EQ(caps->guest_memfd_flags & ~uint64_t{0x3}, 0u) << "flags beyond MMAP|INIT_SHARED are unknown to us";
  EXPECT_EQ(caps->gmem_memory_attributes, caps->gmem_attributes_probe_errno != ENOTTY);
  EXPECT_EQ(caps->dirty_log_on_gmem_slots, caps->gmem_dirty_log_probe_errno == 0);
  EXPECT_EQ(caps->Has(Feature::kDirtyRing), caps->dirty_ring_max_bytes > 0 || caps->dirty_ring_acq_rel_max_bytes > 0);
  for (Feature f :
       {Feature::kGuestMemfd, Feature::kGuestMemfdMmap, Feature::kGuestMemfdInitShared, Feature::kUserMemory2,
        Feature::kVmMemoryAttributes, Feature::kGmemMemoryAttributes, Feature::kDirtyLogOnGmemSlots,
        Feature::kDirtyRing, Feature::kManualDirtyLogProtect, Feature::kExitHypercallMapGpaRange}) {
    Status s = caps->Require(f);
    EXPECT_EQ(s.ok(), caps->Has(f)) << FeatureName(f);
    if (!s.ok()) {
      EXPECT_THAT(s, StatusIs(Code::kUnsupported, std::string(FeatureName(f))));
    }
  }

  // guest_memfd must really work where /dev/kvm exists (the toolkit's whole premise).
  ASSERT_TRUE(caps->Has(Feature::kGuestMemfd)) << caps->ToString();
  auto vm = Vm::Create(*kvm);
  ASSERT_OK(vm);
  auto gmem = GuestMemfd::Create(*vm, 4 * kPageSize, caps->guest_memfd_flags);
  ASSERT_OK(gmem);
  if (caps->Has(Feature::kGuestMemfdMmap)) {
    EXPECT_OK(GuestMemfdMapping::Map(*gmem));
  }
}

// On the machine the reference was measured on (kvm_pvm, Linux 6.18), the probe must find the
// reference's table (reference §1.1, §4.2, §2.2). Elsewhere this test skips.
TEST(CapabilitiesTest, MatchesTheReferenceTableOnThePvmHost) {
  GMEM_SKIP_WITHOUT_KVM("probes the real KVM");
  auto kvm = KvmSystem::Open();
  ASSERT_OK(kvm);
  auto caps = ProbeCapabilities(*kvm);
  ASSERT_OK(caps);
  if (!caps->pvm_host || caps->kernel_release.rfind("6.18.", 0) != 0) {
    GTEST_SKIP() << "not the reference host (kvm_pvm, 6.18): " << caps->kernel_release;
  }
  EXPECT_TRUE(caps->user_memory2);
  EXPECT_TRUE(caps->memory_fault_info);
  EXPECT_TRUE(caps->guest_memfd);
  EXPECT_EQ(caps->guest_memfd_flags, 3u);
  EXPECT_EQ(caps->vm_types, 1u);
  EXPECT_EQ(caps->vm_memory_attributes, 0u);
  EXPECT_FALSE(caps->gmem_memory_attributes);
  EXPECT_EQ(caps->gmem_attributes_probe_errno, ENOTTY);
  EXPECT_FALSE(caps->dirty_log_on_gmem_slots);
  EXPECT_EQ(caps->gmem_dirty_log_probe_errno, EINVAL);
  EXPECT_EQ(caps->dirty_ring_max_bytes, 1048576u);
  EXPECT_EQ(caps->dirty_ring_acq_rel_max_bytes, 1048576u);
  EXPECT_FALSE(caps->dirty_ring_with_bitmap);
  EXPECT_EQ(caps->manual_dirty_log_protect, 3u);
  EXPECT_EQ(caps->exit_hypercall_mask, 4096u);
  EXPECT_FALSE(caps->param_vm_memory_attributes.has_value());
  EXPECT_FALSE(caps->param_gmem_in_place_conversion.has_value());
  EXPECT_THAT(caps->Require(Feature::kGmemMemoryAttributes),
              StatusIs(Code::kUnsupported, "Inappropriate ioctl for device"));
  EXPECT_THAT(caps->Require(Feature::kDirtyLogOnGmemSlots), StatusIs(Code::kUnsupported, "Invalid argument"));
}

}  // namespace
}  // namespace gmem::memory
