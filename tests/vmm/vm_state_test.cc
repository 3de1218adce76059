#include "vmm/vm_state.h"

#include "tests/testutil/testutil.h"
#include "vmm/guest_memory.h"
#include "vmm/x86_boot.h"

namespace gmem::vmm {
namespace {

using ::gmem::testing::StatusIs;

VmState Sample() {
  VmState st;
  st.workload.kind = WorkloadKind::kConvert;
  st.workload.rate = 500;
  st.workload.log_writes = true;
  st.seed = 42;
  st.steps = 1000;
  st.coco = CocoMode::kEmulated;
  st.contents = memory::ConversionContent::kScramble;
  st.layout = GuestMemory::MakeLayout(16 << 20, 2);
  for (uint32_t id = 0; id < 2; ++id) {
    VcpuState v;
    v.regs = InitialRegs(id);
    v.regs.rax = 0x1122334455667788ULL + id;
    SetLongModeSregs(v.sregs);
    v.sregs.interrupt_bitmap[3] = 9;
    v.finished = id == 1;
    st.vcpus.push_back(v);
  }
  return st;
}

TEST(VmStateTest, RoundTrips) {
  VmState st = Sample();
  Bytes blob = EncodeVmState(st);
  auto back = DecodeVmState(blob);
  ASSERT_OK(back);
  EXPECT_EQ(back->workload, st.workload);
  EXPECT_EQ(back->seed, 42u);
  EXPECT_EQ(back->steps, 1000u);
  EXPECT_EQ(back->coco, CocoMode::kEmulated);
  EXPECT_EQ(back->contents, memory::ConversionContent::kScramble);
  EXPECT_EQ(back->layout, st.layout);
  ASSERT_EQ(back->vcpus.size(), 2u);
  EXPECT_EQ(back->vcpus[1].regs.rax, st.vcpus[1].regs.rax);
  EXPECT_EQ(back->vcpus[1].regs.rip, st.vcpus[1].regs.rip);
  EXPECT_EQ(back->vcpus[0].sregs.cr0, st.vcpus[0].sregs.cr0);
  EXPECT_EQ(back->vcpus[0].sregs.cs.l, 1);
  EXPECT_EQ(back->vcpus[0].sregs.tr.selector, st.vcpus[0].sregs.tr.selector);
  EXPECT_EQ(back->vcpus[0].sregs.interrupt_bitmap[3], 9u);
  EXPECT_FALSE(back->vcpus[0].finished);
  EXPECT_TRUE(back->vcpus[1].finished);
  EXPECT_EQ(EncodeVmState(*back), blob);
}

TEST(VmStateTest, RejectsDamage) {
  Bytes blob = EncodeVmState(Sample());
  EXPECT_THAT(DecodeVmState(::gmem::testing::FlipByte(blob, 0)), StatusIs(Code::kCorrupt, "bad magic"));
  EXPECT_THAT(DecodeVmState(::gmem::testing::FlipByte(blob, 8)), StatusIs(Code::kIncompatible, "version"));
  EXPECT_THAT(DecodeVmState(::gmem::testing::FlipByte(blob, 12)), StatusIs(Code::kCorrupt, "reserved"));
  EXPECT_THAT(DecodeVmState(::gmem::testing::FlipByte(blob, 16, 0x80)), StatusIs(Code::kCorrupt, "workload kind"));
  EXPECT_FALSE(DecodeVmState(::gmem::testing::Truncate(blob, blob.size() - 1)).ok());
  Bytes longer = blob;
  longer.push_back(std::byte{0});
  EXPECT_FALSE(DecodeVmState(longer).ok());
  EXPECT_FALSE(DecodeVmState({}).ok());
}

}  // namespace
}  // namespace gmem::vmm
