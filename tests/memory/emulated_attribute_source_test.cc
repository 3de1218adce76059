#include "memory/emulated_attribute_source.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "memory/kvm_uapi.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;
constexpr PageAttr kS = PageAttr::kShared;
constexpr PageAttr kP = PageAttr::kPrivate;

TEST(EmulatedAttributeSourceTest, ConvertsAndLogsConversions) {
  auto src = EmulatedAttributeSource::Create(100, kS, nullptr, 0);
  ASSERT_OK(src);
  EXPECT_EQ(src->name(), "emulated (VMM attribute table)");
  ASSERT_OK(src->Convert(10, 10, kP));
  ASSERT_OK(src->Convert(15, 10, kP));  // half already private: only [20, 25) changes
  ASSERT_OK(src->Convert(0, 5, kS));    // already shared: nothing happens
  EXPECT_EQ(src->attributes().CountPrivate(), 15u);
  EXPECT_EQ(src->TakeConversions(), (std::vector<PageRange>{{10, 10}, {20, 5}}));
  EXPECT_TRUE(src->TakeConversions().empty());
  ASSERT_OK(src->Convert(0, 100, kS));
  EXPECT_EQ(src->TakeConversions(), (std::vector<PageRange>{{10, 15}}));
  EXPECT_THAT(src->Convert(90, 11, kP), StatusIs(Code::kInvalidArgument, "outside the region's 100 pages"));
  EXPECT_THAT(src->Convert(0, 1, static_cast<PageAttr>(0)), StatusIs(Code::kInvalidArgument, "invalid"));
}

TEST(EmulatedAttributeSourceTest, ContentPoliciesOtherThanPreserveNeedTheMapping) {
  EmulatedAttributeOptions zero;
  zero.content = ConversionContent::kZero;
  EXPECT_THAT(EmulatedAttributeSource::Create(10, kS, nullptr, 0, zero),
              StatusIs(Code::kInvalidArgument, "'zero' needs the guest_memfd mapping"));
}

class EmulatedWithMappingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GMEM_SKIP_WITHOUT_KVM("maps a real guest_memfd");
    auto kvm = KvmSystem::Open();
    ASSERT_OK(kvm);
    auto vm = Vm::Create(*kvm);
    ASSERT_OK(vm);
    auto g = GuestMemfd::Create(*vm, 32 * kPageSize, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
    ASSERT_OK(g);
    auto m = GuestMemfdMapping::Map(*g);
    ASSERT_OK(m);
    map_.emplace(std::move(*m));
    std::memset(map_->data(), 0x77, map_->size_bytes());
  }
  // Whether a read of region page `p` (region at guest_memfd page 8) faults, tried in a child.
  bool Faults(uint64_t p) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::signal(SIGSEGV, SIG_DFL);
      volatile std::byte b = *static_cast<volatile std::byte*>(map_->PageAddress(8 + p));
      (void)b;
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
  }
  int Byte(uint64_t p, uint64_t off = 0) { return std::to_integer<int>(map_->PageAddress(8 + p)[off]); }
  std::optional<GuestMemfdMapping> map_;
};

TEST_F(EmulatedWithMappingTest, PrivatePagesArePROT_NONE) {
  auto src = EmulatedAttributeSource::Create(16, kS, &*map_, 8);
  ASSERT_OK(src);
  ASSERT_OK(src->Convert(4, 2, kP));
  EXPECT_FALSE(Faults(3));
  EXPECT_TRUE(Faults(4));
  EXPECT_TRUE(Faults(5));
  EXPECT_FALSE(Faults(6));
  ASSERT_OK(src->Convert(4, 1, kS));
  EXPECT_FALSE(Faults(4));
  EXPECT_EQ(Byte(4), 0x77);  // preserve
  // A region that starts private is PROT_NONE from the start.
  auto all_private = EmulatedAttributeSource::Create(2, kP, &*map_, 8 + 14);
  ASSERT_OK(all_private);
  EXPECT_TRUE(Faults(14));
  EXPECT_TRUE(Faults(15));
}

TEST_F(EmulatedWithMappingTest, ZeroPolicyZeroesConvertedPages) {
  EmulatedAttributeOptions opts;
  opts.content = ConversionContent::kZero;
  auto src = EmulatedAttributeSource::Create(16, kS, &*map_, 8, opts);
  ASSERT_OK(src);
  ASSERT_OK(src->Convert(2, 2, kP));
  ASSERT_OK(src->Convert(2, 2, kS));
  EXPECT_EQ(Byte(2), 0);
  EXPECT_EQ(Byte(3, 4095), 0);
  EXPECT_EQ(Byte(4), 0x77);
  EXPECT_EQ(Byte(1), 0x77);
}

TEST_F(EmulatedWithMappingTest, ScramblePolicyLeavesGarbage) {
  EmulatedAttributeOptions opts;
  opts.content = ConversionContent::kScramble;
  auto src = EmulatedAttributeSource::Create(16, kS, &*map_, 8, opts);
  ASSERT_OK(src);
  ASSERT_OK(src->Convert(7, 1, kP));
  ASSERT_OK(src->Convert(7, 1, kS));
  int same = 0;
  for (uint64_t off = 0; off < kPageSize; ++off) same += Byte(7, off) == 0x77 ? 1 : 0;
  EXPECT_LT(same, 64) << "scrambled page still looks like the original";
  EXPECT_EQ(Byte(6), 0x77);
  EXPECT_EQ(Byte(8), 0x77);
}

}  // namespace
}  // namespace gmem::memory
