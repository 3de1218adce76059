#include "base/status.h"

#include <cerrno>

#include "base/expected.h"
#include "tests/testutil/testutil.h"

namespace gmem {
namespace {

Expected<int> Half(int v) {
  if (v % 2 != 0) return InvalidArgument("odd value " + std::to_string(v));
  return v / 2;
}

Expected<int> Quarter(int v) {
  GMEM_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

TEST(StatusTest, ContextIsPrepended) {
  Status s = CorruptError("bad magic").WithContext("record 3").WithContext("restore 'vm.img'");
  EXPECT_EQ(s.message(), "restore 'vm.img': record 3: bad magic");
  EXPECT_EQ(s.code(), Code::kCorrupt);
  EXPECT_TRUE(Status::Ok().WithContext("ignored").ok());
}

TEST(StatusTest, ErrnoIsRendered) {
  errno = ENOSPC;
  Status s = ErrnoStatus(Code::kIo, "write 'x'");
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_EQ(s.ToString(), "write 'x': No space left on device");
}

TEST(StatusTest, ExpectedPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  auto bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd value 3");
}

TEST(StatusTest, CodeNamesAreStable) {
  EXPECT_EQ(CodeName(Code::kAuth), "auth");
  EXPECT_EQ(CodeName(Code::kPeerAborted), "peer-aborted");
}

}  // namespace
}  // namespace gmem
