#include "tools/cli_parse.h"

#include "tests/testutil/testutil.h"

namespace gmem::tools {
namespace {

using ::gmem::testing::StatusIs;

TEST(ParseCompressTest, AcceptsZstdItsLevelsAndNone) {
  format::Compression compression = format::Compression::kNone;
  int level = 1;
  ASSERT_OK(ParseCompress("zstd", compression, level));
  EXPECT_EQ(compression, format::Compression::kZstd);
  EXPECT_EQ(level, 1);
  ASSERT_OK(ParseCompress("zstd:-7", compression, level));
  EXPECT_EQ(level, -7);
  ASSERT_OK(ParseCompress("zstd:19", compression, level));
  EXPECT_EQ(level, 19);
  ASSERT_OK(ParseCompress("none", compression, level));
  EXPECT_EQ(compression, format::Compression::kNone);
}

TEST(ParseCompressTest, RefusesAnythingElseAndChangesNothing) {
  for (const char* bad : {"zstd:20", "zstd:-8", "zstd:3x", "zstd:", "lz4", "", "ZSTD"}) {
    format::Compression compression = format::Compression::kZstd;
    int level = 3;
    EXPECT_THAT(ParseCompress(bad, compression, level), StatusIs(Code::kInvalidArgument, "--compress")) << bad;
    EXPECT_EQ(compression, format::Compression::kZstd);
    EXPECT_EQ(level, 3);
  }
}

}  // namespace
}  // namespace gmem::tools
