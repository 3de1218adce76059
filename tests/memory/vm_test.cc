#include "memory/vm.h"

#include <cerrno>

#include "memory/kvm_uapi.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;

TEST(VmTest, CreatesAndRejectsBadMemslots) {
  GMEM_SKIP_WITHOUT_KVM("creates a real VM");
  auto kvm = KvmSystem::Open();
  ASSERT_OK(kvm);
  auto vm = Vm::Create(*kvm);
  ASSERT_OK(vm);
  EXPECT_EQ(vm->type(), 0u);
  EXPECT_OK(vm->CheckExtension(KVM_CAP_GUEST_MEMFD_FLAGS));
  MemslotSpec bad;
  bad.slot = 0;
  bad.gpa = 0x1000;
  bad.size_bytes = 0x1000;
  bad.userspace_addr = reinterpret_cast<void*>(0x1001);  // unaligned
  Status s = vm->SetMemslot(bad);
  EXPECT_THAT(s, StatusIs(Code::kKvm, "KVM_SET_USER_MEMORY_REGION2(slot 0"));
  EXPECT_EQ(s.sys_errno(), EINVAL);
  EXPECT_THAT(vm->DeleteMemslot(0), StatusIs(Code::kKvm, "slot 0"));  // there is no slot 0 to delete
}

}  // namespace
}  // namespace gmem::memory
