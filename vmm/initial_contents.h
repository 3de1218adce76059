#pragma once
// The contents guest memory starts with, laid down host-side before any vCPU runs (the guest
// itself writes only ~20 MB/s on this host). From a seed: a mix of page classes in runs, like
// the benchmark image (/work/shared/bench/gen_image.py) — zero 35% (runs of 1..128 pages),
// text-like 25% (1..32), structured records 20% (1..32), random 20% (1..64). Or from a raw image.
// Only the data pages (guest-physical GMEM_GUEST_DATA_GPA and up) are written: the boot area is
// the VMM's (vmm/x86_boot.h).
//
// The attributes a VM starts with (`--private PERCENT`, emulated CoCo) are chosen here too, from
// the same seed: an SNP guest starts with most of its memory private, not all shared.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "memory/page.h"
#include "vmm/guest_memory.h"

namespace gmem::vmm {

enum class PageClass : uint8_t { kZero = 0, kText = 1, kStruct = 2, kRandom = 3 };

// Calls fn(first_data_page, count, PageClass) for the runs covering `data_npages` data pages, in
// order; the sequence depends only on `seed`.
template <typename Fn>
void ForEachClassRun(uint64_t seed, uint64_t data_npages, Fn&& fn);

// Fills one 4 KiB page of class `cls` for gfn `gfn` (zero pages are left alone).
void FillPage(std::byte* page, PageClass cls, uint64_t seed, uint64_t gfn);

// Writes every data page of `memory` from `seed`. Pages of class zero are not touched (a fresh
// guest_memfd reads as zeros), so they cost nothing.
Status LayDownSeededContents(const GuestMemory& memory, uint64_t seed);

// Copies the raw image at `path` (guest-physical 0 first) into guest memory. Its size must be a
// multiple of 4096 and at most the memory size; bytes past its end stay zero. The boot area of
// the image is overwritten afterwards by the VMM.
Status LoadRawImage(const GuestMemory& memory, const std::string& path);

// Private memory at boot is chosen in runs of this many pages (64 KiB), aligned to the run size.
inline constexpr uint64_t kBootPrivateRunPages = 16;

// The data pages (indices from GMEM_GUEST_DATA_GPA) a VM with `--private percent` starts with
// private: of the data_npages / kBootPrivateRunPages whole aligned runs, round(percent % of them),
// picked uniformly at random by a generator seeded from `seed` alone. Every run is private with the
// same probability, so private pages are spread over all of RAM; the boot area (guest-physical
// [0, GMEM_GUEST_DATA_GPA): page tables, GDT, code, control pages, the guest's record, the agent
// area) is never among them. Returned in order, neighbours merged. REQUIRES: percent <= 100.
std::vector<memory::PageRange> BootPrivateRuns(uint64_t seed, uint64_t data_npages, uint32_t percent);

// Sets the bits of the data pages in `runs` in the guest's record of its private pages (`record`,
// guest-physical GMEM_GUEST_RECORD_GPA: one bit per data page, LSB first), so that the guest knows
// which of its pages start private. kInvalidArgument if a run does not fit the record.
Status MarkPrivateInRecord(std::span<std::byte> record, std::span<const memory::PageRange> runs);

// ---- implementation ----

uint64_t ClassRunDraw(uint64_t& state);

template <typename Fn>
void ForEachClassRun(uint64_t seed, uint64_t data_npages, Fn&& fn) {
  // Classes are drawn with weights fraction / mean run length, so pages come out in the
  // fractions above: weights 0.35/64.5, 0.25/16.5, 0.20/16.5, 0.20/32.5, scaled to 1/10000.
  static constexpr uint64_t kWeight[4] = {54, 152, 121, 62};
  static constexpr uint64_t kMaxRun[4] = {128, 32, 32, 64};
  uint64_t state = seed ^ 0x6c6179646f776e31ULL;
  uint64_t page = 0;
  while (page < data_npages) {
    uint64_t pick = ClassRunDraw(state) % (kWeight[0] + kWeight[1] + kWeight[2] + kWeight[3]);
    unsigned cls = 0;
    while (pick >= kWeight[cls]) pick -= kWeight[cls++];
    uint64_t len = 1 + ClassRunDraw(state) % kMaxRun[cls];
    if (len > data_npages - page) len = data_npages - page;
    fn(page, len, static_cast<PageClass>(cls));
    page += len;
  }
}

}  // namespace gmem::vmm
