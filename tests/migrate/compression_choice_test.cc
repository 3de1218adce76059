#include "migrate/compression_choice.h"

#include <gtest/gtest.h>

namespace gmem::migrate {
namespace {

using std::chrono::nanoseconds;
constexpr uint64_t kBatch = 1 << 20;

// Runs `batches` batches through `choice` where a raw batch costs `raw_ns` and a compressed one
// `zstd_ns`; returns how many were compressed.
int RunBatches(CompressionChoice& choice, int batches, int64_t raw_ns, int64_t zstd_ns) {
  int compressed = 0;
  for (int i = 0; i < batches; ++i) {
    bool zstd = choice.Next();
    compressed += zstd;
    choice.Record(zstd, kBatch, nanoseconds(zstd ? zstd_ns : raw_ns));
  }
  return compressed;
}

TEST(CompressionChoiceTest, TriesRawThenZstdFirst) {
  CompressionChoice choice;
  EXPECT_FALSE(choice.Next());
  choice.Record(false, kBatch, nanoseconds(400'000));
  EXPECT_TRUE(choice.Next());
  choice.Record(true, kBatch, nanoseconds(2'000'000));
  EXPECT_DOUBLE_EQ(choice.ns_per_byte(false), 400'000.0 / kBatch);
  EXPECT_DOUBLE_EQ(choice.ns_per_byte(true), 2'000'000.0 / kBatch);
  EXPECT_FALSE(choice.Next());
}

// A fast link with busy cores: raw wins, and zstd is retried rarely enough to cost under 3 %
// over a 2 GiB guest's batches on one channel.
TEST(CompressionChoiceTest, OnAFastLinkRawWinsAndLookingCostsLittle) {
  CompressionChoice choice;
  const int64_t raw = 400'000, zstd = 2'000'000;  // 2.6 GB/s vs 0.5 GB/s
  int compressed = RunBatches(choice, 1000, raw, zstd);
  EXPECT_GE(compressed, 2);  // it does look again
  double spent = (1000.0 - compressed) * raw + compressed * zstd;
  EXPECT_LT(spent, 1.03 * 1000 * raw) << compressed << " compressed batches";
}

// A slow link: the smaller batch wins.
TEST(CompressionChoiceTest, OnASlowLinkZstdWins) {
  CompressionChoice choice;
  const int64_t raw = 80'000'000, zstd = 36'000'000;  // 12.5 MB/s, zstd halves the bytes
  int compressed = RunBatches(choice, 500, raw, zstd);
  EXPECT_GE(compressed, 470);
  double spent = (500.0 - compressed) * raw + compressed * zstd;
  EXPECT_LT(spent, 1.10 * 500 * zstd);
}

// The link slows down mid-stream (a bandwidth cap): the choice follows within a few hundred batches.
TEST(CompressionChoiceTest, FollowsAChangeOfLink) {
  CompressionChoice choice;
  RunBatches(choice, 300, 400'000, 2'000'000);
  EXPECT_FALSE(choice.Next());
  int compressed = RunBatches(choice, 600, 80'000'000, 36'000'000);
  EXPECT_GE(compressed, 300);
  int last = RunBatches(choice, 100, 80'000'000, 36'000'000);
  EXPECT_GE(last, 90);
}

// Small batches (a few pages) say little about throughput and are not counted.
TEST(CompressionChoiceTest, SmallBatchesDoNotCount) {
  CompressionChoice choice;
  choice.Record(false, 8192, nanoseconds(1'000'000'000));
  EXPECT_FALSE(choice.Next());  // still learning raw
  EXPECT_EQ(choice.ns_per_byte(false), 0);
}

}  // namespace
}  // namespace gmem::migrate
