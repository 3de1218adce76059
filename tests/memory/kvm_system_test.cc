#include "memory/kvm_system.h"

#include "memory/kvm_uapi.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;

TEST(KvmSystemTest, MissingDeviceIsUnsupported) {
  EXPECT_THAT(KvmSystem::Open("/nonexistent/kvm"), StatusIs(Code::kUnsupported, "no /nonexistent/kvm"));
  EXPECT_FALSE(KvmSystem::Available("/nonexistent/kvm"));
}

TEST(KvmSystemTest, OpensAndAnswersCapabilities) {
  GMEM_SKIP_WITHOUT_KVM("opens the real KVM");
  auto kvm = KvmSystem::Open();
  ASSERT_OK(kvm);
  auto gmem = kvm->CheckExtension(KVM_CAP_GUEST_MEMFD);
  ASSERT_OK(gmem);
  EXPECT_GE(*gmem, 0);
  auto unknown = kvm->CheckExtension(100000);  // unknown capabilities answer 0, not an error
  ASSERT_OK(unknown);
  EXPECT_EQ(*unknown, 0);
  auto run_size = kvm->VcpuMmapSize();
  ASSERT_OK(run_size);
  EXPECT_GE(*run_size, sizeof(struct kvm_run));
}

}  // namespace
}  // namespace gmem::memory
