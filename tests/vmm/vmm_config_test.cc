#include "vmm/vmm_config.h"

#include "tests/testutil/testutil.h"

namespace gmem::vmm {
namespace {

using ::gmem::testing::StatusIs;

TEST(VmmConfigTest, ParsesSizes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("256M"), 256u << 20);
  EXPECT_EQ(*ParseSize("1G"), 1u << 30);
  EXPECT_EQ(*ParseSize("64KiB"), 64u << 10);
  EXPECT_THAT(ParseSize("lots"), StatusIs(Code::kInvalidArgument, "not a number"));
  EXPECT_THAT(ParseSize("3X"), StatusIs(Code::kInvalidArgument, "unknown suffix"));
  EXPECT_THAT(ParseSize("99999999999T"), StatusIs(Code::kInvalidArgument, "overflows"));
}

TEST(VmmConfigTest, ParsesModes) {
  EXPECT_EQ(*ParseSlotMode("hva"), SlotMode::kHva);
  EXPECT_EQ(*ParseCocoMode("emulated"), CocoMode::kEmulated);
  EXPECT_EQ(*ParseConversionContent("scramble"), memory::ConversionContent::kScramble);
  EXPECT_THAT(ParseSlotMode("mmio"), StatusIs(Code::kInvalidArgument, "unknown slot mode"));
  EXPECT_THAT(ParseCocoMode("snp"), StatusIs(Code::kInvalidArgument, "unknown coco mode"));
  EXPECT_THAT(ParseConversionContent("keep"), StatusIs(Code::kInvalidArgument, "unknown conversion contents"));
}

TEST(VmmConfigTest, ValidatesLimits) {
  VmmConfig c;
  c.mem_bytes = 16 << 20;
  EXPECT_OK(ValidateConfig(c));
  c.mem_bytes = 3 << 20;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "multiple of 2 MiB"));
  c.mem_bytes = 2 << 20;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "between 4 MiB and 8 GiB"));
  c.mem_bytes = 16 << 20;
  c.regions = 9;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "--regions"));
  c.regions = 2;
  c.vcpus = 17;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "--vcpus"));
  c.vcpus = 4;
  c.workload.pages = 3;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "one page per vCPU"));
  c.incoming = true;  // an incoming VM gets everything from the control socket
  EXPECT_OK(ValidateConfig(c));
}

TEST(VmmConfigTest, ValidatesTheMemoryOfAnIncomingVm) {
  VmmConfig c;
  c.incoming = true;
  EXPECT_OK(ValidateConfig(c));  // no --mem: the layout comes with prepare-incoming
  c.regions = 2;
  EXPECT_THAT(ValidateConfig(c),
              StatusIs(Code::kInvalidArgument, "--regions 2: with --incoming only together with --mem"));
  c.mem_bytes = 64 << 20;
  EXPECT_OK(ValidateConfig(c));
  c.vcpus = 17;  // vCPUs and workload arrive with set-state
  EXPECT_OK(ValidateConfig(c));
  c.mem_bytes = 3 << 20;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "--mem 3145728: must be a multiple of 2 MiB"));
  c.mem_bytes = uint64_t{16} << 30;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "between 4 MiB and 8 GiB"));
  c.mem_bytes = 4 << 20;
  c.regions = 4;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "--regions 4: must be 1..16 regions"));
  c.regions = 17;
  c.mem_bytes = 64 << 20;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "--regions 17"));
  EXPECT_THAT(ValidateMemorySize(0, 1), StatusIs(Code::kInvalidArgument, "--mem 0: must be"));
  EXPECT_OK(ValidateMemorySize(64 << 20, 16));
}

TEST(VmmConfigTest, ValidatesPrivatePercent) {
  VmmConfig c;
  c.mem_bytes = 16 << 20;
  c.private_percent = 25;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "--private needs --coco emulated"));
  c.coco = CocoMode::kEmulated;
  EXPECT_OK(ValidateConfig(c));
  c.private_percent = 100;
  EXPECT_OK(ValidateConfig(c));
  c.private_percent = 101;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "--private 101: must be a percentage, 0..100"));
  c.private_percent = 0;
  c.coco = CocoMode::kNone;
  EXPECT_OK(ValidateConfig(c));  // the default is valid everywhere
  c.coco = CocoMode::kEmulated;
  c.incoming = true;
  c.private_percent = 10;
  EXPECT_THAT(ValidateConfig(c), StatusIs(Code::kInvalidArgument, "not with --incoming"));
}

}  // namespace
}  // namespace gmem::vmm
