#include "memory/page.h"

#include <immintrin.h>

namespace gmem::memory {
namespace internal {

// Eight 16-byte loads OR-ed per step of 128 bytes: SSE2 is in every x86-64.
bool IsZeroPageSse2(const std::byte* page) {
  const auto* p = reinterpret_cast<const __m128i*>(page);
  for (size_t i = 0; i < kPageSize / sizeof(__m128i); i += 8) {
    __m128i a = _mm_or_si128(_mm_or_si128(_mm_loadu_si128(p + i), _mm_loadu_si128(p + i + 1)),
                             _mm_or_si128(_mm_loadu_si128(p + i + 2), _mm_loadu_si128(p + i + 3)));
    __m128i b = _mm_or_si128(_mm_or_si128(_mm_loadu_si128(p + i + 4), _mm_loadu_si128(p + i + 5)),
                             _mm_or_si128(_mm_loadu_si128(p + i + 6), _mm_loadu_si128(p + i + 7)));
    __m128i any = _mm_or_si128(a, b);
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) != 0xffff) return false;
  }
  return true;
}

// Eight 32-byte loads OR-ed per step of 256 bytes.
__attribute__((target("avx2"))) bool IsZeroPageAvx2(const std::byte* page) {
  const auto* p = reinterpret_cast<const __m256i*>(page);
  for (size_t i = 0; i < kPageSize / sizeof(__m256i); i += 8) {
    __m256i a = _mm256_or_si256(_mm256_or_si256(_mm256_loadu_si256(p + i), _mm256_loadu_si256(p + i + 1)),
                                _mm256_or_si256(_mm256_loadu_si256(p + i + 2), _mm256_loadu_si256(p + i + 3)));
    __m256i b = _mm256_or_si256(_mm256_or_si256(_mm256_loadu_si256(p + i + 4), _mm256_loadu_si256(p + i + 5)),
                                _mm256_or_si256(_mm256_loadu_si256(p + i + 6), _mm256_loadu_si256(p + i + 7)));
    __m256i any = _mm256_or_si256(a, b);
    if (!_mm256_testz_si256(any, any)) return false;
  }
  return true;
}

}  // namespace internal

bool IsZeroPage(const std::byte* page) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2 ? internal::IsZeroPageAvx2(page) : internal::IsZeroPageSse2(page);
}

}  // namespace gmem::memory
