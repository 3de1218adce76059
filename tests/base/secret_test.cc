#include "base/secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/testutil/testutil.h"

namespace gmem {
namespace {

using ::gmem::testing::StatusIs;

std::string WriteTemp(const std::string& content, mode_t mode) {
  char path[] = "/tmp/gmem_secret_XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  fchmod(fd, mode);
  close(fd);
  return path;
}

TEST(SecretTest, ReadsPrivateFile) {
  std::string path = WriteTemp("hunter2", 0600);
  auto s = ReadSecretFile(path, 64);
  ASSERT_OK(s);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(s->data()), s->size()), "hunter2");
  unlink(path.c_str());
}

TEST(SecretTest, RefusesGroupReadableFile) {
  std::string path = WriteTemp("k", 0640);
  EXPECT_THAT(ReadSecretFile(path, 64), StatusIs(Code::kInvalidArgument, "mode 0640"));
  unlink(path.c_str());
}

TEST(SecretTest, RefusesOversizeSecret) {
  std::string path = WriteTemp(std::string(65, 'x'), 0600);
  EXPECT_THAT(ReadSecretFile(path, 64), StatusIs(Code::kInvalidArgument, "longer than 64"));
  unlink(path.c_str());
}

TEST(SecretTest, MissingFileIsIoError) {
  EXPECT_THAT(ReadSecretFile("/nonexistent/key", 64), StatusIs(Code::kIo, "/nonexistent/key"));
}

TEST(SecretTest, MoveLeavesSourceEmpty) {
  SecretBytes a(32);
  a.data()[0] = std::byte{7};
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.size(), 32u);
  EXPECT_EQ(b.data()[0], std::byte{7});
}

}  // namespace
}  // namespace gmem
