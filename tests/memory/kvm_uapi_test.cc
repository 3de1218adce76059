#include "memory/kvm_uapi.h"

#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

// The header's static_asserts pin every number at compile time; this keeps the values visible
// in the test output and checks the structs against reference §1.10.
TEST(KvmUapiTest, IoctlNumbersMatchTheReference) {
  EXPECT_EQ(KVM_CREATE_GUEST_MEMFD, 0xc040aed4u);
  EXPECT_EQ(KVM_SET_USER_MEMORY_REGION2, 0x40a0ae49u);
  EXPECT_EQ(KVM_SET_MEMORY_ATTRIBUTES, 0x4020aed2u);
  EXPECT_EQ(KVM_SET_MEMORY_ATTRIBUTES2, 0xc080aed2u);
  EXPECT_EQ(KVM_PRE_FAULT_MEMORY, 0xc040aed5u);
}

TEST(KvmUapiTest, StructSizes) {
  EXPECT_EQ(sizeof(uapi::CreateGuestMemfd), 64u);
  EXPECT_EQ(sizeof(uapi::UserspaceMemoryRegion2), 160u);
  EXPECT_EQ(sizeof(uapi::MemoryAttributes), 32u);
  EXPECT_EQ(sizeof(uapi::MemoryAttributes2), 128u);
  EXPECT_EQ(sizeof(uapi::MemoryFaultExit), 24u);
  EXPECT_EQ(sizeof(struct kvm_dirty_gfn), 16u);
}

TEST(KvmUapiTest, CapabilityAndFlagValues) {
  EXPECT_EQ(KVM_CAP_GUEST_MEMFD_FLAGS, 244);
  EXPECT_EQ(KVM_CAP_EXIT_HYPERCALL, 201);
  EXPECT_EQ(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED, 3u);
  EXPECT_EQ(KVM_MEM_GUEST_MEMFD, 4u);
  EXPECT_EQ(KVM_MEMORY_ATTRIBUTE_PRIVATE, 8u);
  EXPECT_EQ(KVM_MEMORY_EXIT_FLAG_PRIVATE, 8u);
  EXPECT_EQ(1ULL << KVM_HC_MAP_GPA_RANGE, 4096u);  // the exit-hypercall mask this host reports
  EXPECT_EQ(KVM_MAP_GPA_RANGE_ENCRYPTED | KVM_MAP_GPA_RANGE_PAGE_SZ_2M, 0x11);
  EXPECT_EQ(MSR_KVM_MIGRATION_CONTROL, 0x4b564d08);
}

}  // namespace
}  // namespace gmem::memory
