#include "tools/cli_parse.h"

#include "tests/testutil/testutil.h"

namespace gmem::tools {
namespace {

using ::gmem::testing::StatusIs;

TEST(ParseCompressTest, AcceptsAutoZstdItsLevelsAndNone) {
  format::Compression compression = format::Compression::kNone;
  int level = 5;
  bool adaptive = false;
  ASSERT_OK(ParseCompress("auto", compression, level, adaptive));
  EXPECT_EQ(compression, format::Compression::kZstd);
  EXPECT_EQ(level, 1);
  EXPECT_TRUE(adaptive);
  ASSERT_OK(ParseCompress("zstd", compression, level, adaptive));
  EXPECT_EQ(compression, format::Compression::kZstd);
  EXPECT_EQ(level, 1);
  EXPECT_FALSE(adaptive);
  ASSERT_OK(ParseCompress("zstd:-7", compression, level, adaptive));
  EXPECT_EQ(level, -7);
  ASSERT_OK(ParseCompress("zstd:19", compression, level, adaptive));
  EXPECT_EQ(level, 19);
  ASSERT_OK(ParseCompress("auto", compression, level, adaptive));
  ASSERT_OK(ParseCompress("none", compression, level, adaptive));
  EXPECT_EQ(compression, format::Compression::kNone);
  EXPECT_FALSE(adaptive);
}

TEST(ParseCompressTest, RefusesAnythingElseAndChangesNothing) {
  for (const char* bad : {"zstd:20", "zstd:-8", "zstd:3x", "zstd:", "lz4", "", "ZSTD", "Auto", "auto:1"}) {
    format::Compression compression = format::Compression::kZstd;
    int level = 3;
    bool adaptive = true;
    EXPECT_THAT(ParseCompress(bad, compression, level, adaptive), StatusIs(Code::kInvalidArgument, "--compress")) << bad;
    EXPECT_EQ(compression, format::Compression::kZstd);
    EXPECT_EQ(level, 3);
    EXPECT_TRUE(adaptive);
  }
}

}  // namespace
}  // namespace gmem::tools
