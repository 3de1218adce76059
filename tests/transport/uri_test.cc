#include "transport/uri.h"

#include "tests/testutil/testutil.h"

namespace gmem::transport {
namespace {

using ::gmem::testing::StatusIs;

TEST(UriTest, ParsesEachForm) {
  auto tcp = ParseUri("tcp:127.0.0.1:4444");
  ASSERT_OK(tcp);
  EXPECT_EQ(tcp->kind, Uri::Kind::kTcp);
  EXPECT_EQ(tcp->host, "127.0.0.1");
  EXPECT_EQ(tcp->port, 4444);
  auto v6 = ParseUri("tcp:[::1]:80");
  ASSERT_OK(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "tcp:[::1]:80");
  auto unix_uri = ParseUri("unix:/run/x.sock");
  ASSERT_OK(unix_uri);
  EXPECT_EQ(unix_uri->path, "/run/x.sock");
  auto fd = ParseUri("fd:3");
  ASSERT_OK(fd);
  EXPECT_EQ(fd->fd, 3);
  auto file = ParseUri("file:vm.img");
  ASSERT_OK(file);
  EXPECT_EQ(file->kind, Uri::Kind::kFile);
  EXPECT_EQ(file->ToString(), "file:vm.img");
}

TEST(UriTest, RejectsWithAReason) {
  EXPECT_THAT(ParseUri("vm.img"), StatusIs(Code::kInvalidArgument, "no scheme"));
  EXPECT_THAT(ParseUri("http:x"), StatusIs(Code::kInvalidArgument, "unknown scheme"));
  EXPECT_THAT(ParseUri("tcp:host"), StatusIs(Code::kInvalidArgument, "no port"));
  EXPECT_THAT(ParseUri("tcp:host:99999"), StatusIs(Code::kInvalidArgument, "port must be"));
  EXPECT_THAT(ParseUri("tcp::80"), StatusIs(Code::kInvalidArgument, "empty host"));
  EXPECT_THAT(ParseUri("fd:-1"), StatusIs(Code::kInvalidArgument, "fd must be"));
  EXPECT_THAT(ParseUri("fd:3x"), StatusIs(Code::kInvalidArgument, "fd must be"));
  EXPECT_THAT(ParseUri("file:"), StatusIs(Code::kInvalidArgument, "empty path"));
}

}  // namespace
}  // namespace gmem::transport
