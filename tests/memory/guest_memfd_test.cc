#include "memory/guest_memfd.h"

#include <sys/mman.h>
#include <unistd.h>

#include <optional>

#include "memory/kvm_uapi.h"
#include "tests/memory/test_vm.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;
constexpr uint64_t kShared = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

class GuestMemfdTest : public testing::RealVmTest {
 protected:
  const char* SkipReason() const override { return "creates guest_memfds on a real VM"; }
};

TEST_F(GuestMemfdTest, CreatesWithSizeAndFlags) {
  auto g = GuestMemfd::Create(*vm_, 1 << 20, kShared);
  ASSERT_OK(g);
  EXPECT_TRUE(g->mappable());
  EXPECT_TRUE(g->init_shared());
  EXPECT_EQ(g->size_bytes(), 1u << 20);
  auto plain = GuestMemfd::Create(*vm_, 8192, 0);
  ASSERT_OK(plain);
  EXPECT_FALSE(plain->mappable());
}

TEST_F(GuestMemfdTest, BadArgumentsAreRejectedBeforeTheKernel) {
  EXPECT_THAT(GuestMemfd::Create(*vm_, 0, kShared), StatusIs(Code::kInvalidArgument, "size 0"));
  EXPECT_THAT(GuestMemfd::Create(*vm_, 4097, kShared), StatusIs(Code::kInvalidArgument, "size 4097"));
  EXPECT_THAT(GuestMemfd::Create(*vm_, 4096, 0x4), StatusIs(Code::kInvalidArgument, "unknown guest_memfd flags 4"));
}

TEST_F(GuestMemfdTest, AdoptsARealGuestMemfd) {
  auto g = GuestMemfd::Create(*vm_, 64 * 4096, kShared);
  ASSERT_OK(g);
  auto dup = g->Duplicate();
  ASSERT_OK(dup);
  UniqueFd received(dup->fd() >= 0 ? ::dup(dup->fd()) : -1);  // as if it came over SCM_RIGHTS
  auto adopted = GuestMemfd::Adopt(std::move(received), 64 * 4096, kShared);
  ASSERT_OK(adopted);
  EXPECT_EQ(adopted->size_bytes(), 64u * 4096);
  EXPECT_EQ(adopted->flags(), kShared);
}

TEST_F(GuestMemfdTest, AdoptRejectsOtherKindsOfFd) {
  UniqueFd memfd(::memfd_create("not-gmem", MFD_CLOEXEC));
  ASSERT_TRUE(memfd.valid());
  ASSERT_EQ(::ftruncate(memfd.get(), 8192), 0);
  EXPECT_THAT(GuestMemfd::Adopt(std::move(memfd), 8192, kShared),
              StatusIs(Code::kInvalidArgument, "not a guest_memfd (anon_inode:[kvm-gmem])"));
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  EXPECT_THAT(GuestMemfd::Adopt(std::move(read_end), 8192, kShared), StatusIs(Code::kInvalidArgument, "'pipe:["));
  EXPECT_THAT(GuestMemfd::Adopt(UniqueFd(), 8192, kShared), StatusIs(Code::kInvalidArgument, "no fd"));
}

TEST_F(GuestMemfdTest, AdoptRejectsTheWrongSize) {
  auto g = GuestMemfd::Create(*vm_, 16 * 4096, kShared);
  ASSERT_OK(g);
  UniqueFd received(::dup(g->fd()));
  EXPECT_THAT(GuestMemfd::Adopt(std::move(received), 32 * 4096, kShared),
              StatusIs(Code::kInvalidArgument, "size is 65536 bytes, the sender said 131072"));
}

TEST_F(GuestMemfdTest, PunchHoleChecksItsRange) {
  auto g = GuestMemfd::Create(*vm_, 16 * 4096, kShared);
  ASSERT_OK(g);
  EXPECT_OK(g->PunchHole(4096, 4096));
  EXPECT_OK(g->PunchHole(0, 16 * 4096));
  EXPECT_THAT(g->PunchHole(100, 4096), StatusIs(Code::kInvalidArgument, "unaligned or outside"));
  EXPECT_THAT(g->PunchHole(15 * 4096, 2 * 4096), StatusIs(Code::kInvalidArgument, "unaligned or outside"));
}

}  // namespace
}  // namespace gmem::memory
