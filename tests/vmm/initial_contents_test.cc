#include "vmm/initial_contents.h"

#include <array>
#include <cstring>

#include "tests/testutil/testutil.h"

namespace gmem::vmm {
namespace {

TEST(InitialContentsTest, ClassMixFollowsTheBenchmarkImage) {
  std::array<uint64_t, 4> pages{};
  uint64_t total = 0, runs = 0;
  ForEachClassRun(7, 262144, [&](uint64_t first, uint64_t count, PageClass cls) {
    EXPECT_EQ(first, total);
    pages[static_cast<size_t>(cls)] += count;
    total += count;
    ++runs;
  });
  EXPECT_EQ(total, 262144u);
  const double want[4] = {0.35, 0.25, 0.20, 0.20};
  for (int c = 0; c < 4; ++c) EXPECT_NEAR(static_cast<double>(pages[c]) / total, want[c], 0.03) << "class " << c;
  EXPECT_GT(runs, 5000u);
}

TEST(InitialContentsTest, DeterministicPerSeedAndGfn) {
  std::vector<std::byte> a(4096), b(4096), c(4096);
  for (PageClass cls : {PageClass::kText, PageClass::kStruct, PageClass::kRandom}) {
    FillPage(a.data(), cls, 1, 100);
    FillPage(b.data(), cls, 1, 100);
    FillPage(c.data(), cls, 2, 100);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
  }
  FillPage(a.data(), PageClass::kText, 1, 5);
  for (std::byte x : a) {
    char ch = static_cast<char>(x);
    EXPECT_TRUE(ch == '\n' || ch == '\t' || (ch >= 32 && ch < 127)) << int(ch);
  }
}

}  // namespace
}  // namespace gmem::vmm
