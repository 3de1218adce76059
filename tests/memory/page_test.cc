#include "memory/page.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace gmem::memory {
namespace {

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};

// A page at an offset from a page boundary (the check must not assume alignment).
class PageAt {
 public:
  explicit PageAt(size_t offset)
      : buffer_(static_cast<std::byte*>(std::aligned_alloc(kPageSize, 2 * kPageSize))), page_(buffer_.get() + offset) {
    std::fill(buffer_.get(), buffer_.get() + 2 * kPageSize, std::byte{0xee});
    std::fill(page_, page_ + kPageSize, std::byte{0});
  }
  std::byte* page() { return page_; }

 private:
  std::unique_ptr<std::byte, FreeDeleter> buffer_;
  std::byte* page_;
};

using ZeroCheck = bool (*)(const std::byte*);

void ExpectAnyOneSetBitMakesAPageNonZero(ZeroCheck is_zero) {
  for (size_t offset : {size_t{0}, size_t{8}, size_t{1}}) {
    SCOPED_TRACE(offset);
    PageAt p(offset);
    EXPECT_TRUE(is_zero(p.page()));  // the 0xee bytes around it are not read
    for (size_t i = 0; i < kPageSize; ++i) {
      for (std::byte bit : {std::byte{0x01}, std::byte{0x80}}) {
        p.page()[i] = bit;
        ASSERT_FALSE(is_zero(p.page())) << "byte " << i;
        p.page()[i] = std::byte{0};
      }
    }
    EXPECT_TRUE(is_zero(p.page()));
  }
}

TEST(IsZeroPageTest, AnyOneSetBitAnywhereMakesAPageNonZero) { ExpectAnyOneSetBitMakesAPageNonZero(IsZeroPage); }

TEST(IsZeroPageTest, TheSse2WayAgrees) { ExpectAnyOneSetBitMakesAPageNonZero(internal::IsZeroPageSse2); }

TEST(IsZeroPageTest, TheAvx2WayAgrees) {
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "this CPU has no AVX2";
  ExpectAnyOneSetBitMakesAPageNonZero(internal::IsZeroPageAvx2);
}

}  // namespace
}  // namespace gmem::memory
