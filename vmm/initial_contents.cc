#include "vmm/initial_contents.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "base/unique_fd.h"
#include "vmm/guest/guest_abi.h"

namespace gmem::vmm {
namespace {

uint64_t Next(uint64_t& state) { return gmem_guest_splitmix(&state); }

// 64 pseudo-words built from the seed, skewed to common letters.
struct Vocabulary {
  std::array<std::array<char, 12>, 64> words{};
  std::array<uint8_t, 64> lengths{};
};

Vocabulary MakeVocabulary(uint64_t seed) {
  static constexpr char kLetters[] = "etaoinshrdlcumwfgypbvkjxqz";
  Vocabulary v;
  uint64_t state = seed ^ 0x766f636162756c61ULL;
  for (size_t w = 0; w < v.words.size(); ++w) {
    uint64_t r = Next(state);
    uint8_t len = static_cast<uint8_t>(2 + r % 9);
    for (uint8_t i = 0; i < len; ++i) {
      uint64_t a = Next(state) % 26, b = Next(state) % 26;
      v.words[w][i] = kLetters[a < b ? a : b];
    }
    v.lengths[w] = len;
  }
  return v;
}

void FillText(std::byte* page, uint64_t seed, uint64_t& state) {
  static constexpr std::string_view kSeps[] = {" ", " ", " ", ", ", "=", ": ", "/", "_", ".", "\n", "; ", "\t"};
  Vocabulary vocab = MakeVocabulary(seed);
  // SAFETY: every store below checks pos < GMEM_GUEST_PAGE; `page` is one whole 4 KiB page.
  size_t pos = 0;
  auto put = [&](const char* s, size_t n) {
    for (size_t i = 0; i < n && pos < GMEM_GUEST_PAGE; ++i) page[pos++] = static_cast<std::byte>(s[i]);
  };
  while (pos < GMEM_GUEST_PAGE) {
    uint64_t r = Next(state);
    if (r % 8 == 0) {
      char num[8];
      int n = 0;
      uint64_t value = (r >> 8) % 10000;
      do { num[n++] = static_cast<char>('0' + value % 10); value /= 10; } while (value != 0);
      for (int i = n - 1; i >= 0 && pos < GMEM_GUEST_PAGE; --i) page[pos++] = static_cast<std::byte>(num[i]);
    } else {
      size_t w = (r >> 8) % vocab.words.size();
      put(vocab.words[w].data(), vocab.lengths[w]);
    }
    std::string_view sep = kSeps[(r >> 32) % std::size(kSeps)];
    put(sep.data(), sep.size());
  }
}

void FillStruct(std::byte* page, uint64_t gfn, uint64_t& state) {
  for (uint64_t rec = 0; rec < GMEM_GUEST_PAGE / 32; ++rec) {
    uint64_t r = Next(state);
    uint64_t words[4] = {
        (gfn * 128 + rec) | ((r & 0xf) << 32),
        0x00007f0000000000ULL | ((r >> 8) & 0xfffffffff0ULL),
        (gfn * 128 + rec) * 1000003ULL + ((r >> 48) & 0xff),
        ((r >> 16) & 0x007fffff) | (0x3f800000ULL) | (((r >> 40) % 100) << 32),
    };
    // SAFETY: 128 records of 32 bytes fill exactly the 4 KiB page.
    std::memcpy(page + rec * 32, words, sizeof(words));
  }
}

void FillRandom(std::byte* page, uint64_t& state) {
  for (uint64_t off = 0; off < GMEM_GUEST_PAGE; off += 8) {
    uint64_t v = Next(state);
    // SAFETY: off + 8 <= 4096.
    std::memcpy(page + off, &v, sizeof(v));
  }
}

}  // namespace

uint64_t ClassRunDraw(uint64_t& state) { return Next(state); }

void FillPage(std::byte* page, PageClass cls, uint64_t seed, uint64_t gfn) {
  uint64_t state = seed ^ (gfn * 0x9fb21c651e98df25ULL) ^ static_cast<uint64_t>(cls);
  switch (cls) {
    case PageClass::kZero: return;
    case PageClass::kText: return FillText(page, seed, state);
    case PageClass::kStruct: return FillStruct(page, gfn, state);
    case PageClass::kRandom: return FillRandom(page, state);
  }
}

Status LayDownSeededContents(const GuestMemory& memory, uint64_t seed) {
  uint64_t data_npages = (memory.total_bytes() - GMEM_GUEST_DATA_GPA) / GMEM_GUEST_PAGE;
  Status status;
  ForEachClassRun(seed, data_npages, [&](uint64_t first, uint64_t count, PageClass cls) {
    if (cls == PageClass::kZero || !status.ok()) return;
    for (uint64_t p = first; p < first + count; ++p) {
      uint64_t gpa = GMEM_GUEST_DATA_GPA + p * GMEM_GUEST_PAGE;
      std::byte* page = memory.HostAddress(gpa, GMEM_GUEST_PAGE);
      if (page == nullptr) {
        status = Status(Code::kInvalidArgument, "initial contents: no memory at GPA " + std::to_string(gpa));
        return;
      }
      FillPage(page, cls, seed, gpa >> 12);
    }
  });
  return status;
}

Status LoadRawImage(const GuestMemory& memory, const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "open image '" + path + "'");
  struct stat st = {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(Code::kIo, "stat image '" + path + "'");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size % GMEM_GUEST_PAGE != 0 || size > memory.total_bytes()) {
    return InvalidArgument("image '" + path + "' is " + std::to_string(size) +
                           " bytes: it must be a multiple of 4096 and at most the memory size (" +
                           std::to_string(memory.total_bytes()) + ")");
  }
  constexpr uint64_t kChunk = uint64_t{1} << 20;
  for (uint64_t off = 0; off < size;) {
    uint64_t n = size - off < kChunk ? size - off : kChunk;
    std::byte* dst = memory.HostAddress(off, n);
    if (dst == nullptr) {  // the chunk crosses a region boundary (regions are 2 MiB aligned)
      n = GMEM_GUEST_PAGE;
      dst = memory.HostAddress(off, n);
    }
    // SAFETY: HostAddress checked that [off, off + n) lies inside one region's mapping.
    ssize_t got = ::pread(fd.get(), dst, n, static_cast<off_t>(off));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ErrnoStatus(Code::kIo, "read image '" + path + "'");
    if (got == 0) return Status(Code::kIo, "image '" + path + "' shrank while reading");
    off += static_cast<uint64_t>(got);
  }
  return Status::Ok();
}

std::vector<memory::PageRange> BootPrivateRuns(uint64_t seed, uint64_t data_npages, uint32_t percent) {
  const uint64_t candidates = data_npages / kBootPrivateRunPages;
  const uint64_t want = (candidates * percent + 50) / 100;
  // Selection sampling (Knuth's algorithm S): exactly `want` of the candidates, each with the same
  // chance, in one ordered pass. A stream of its own, so that the contents' runs do not align with
  // the private ones.
  uint64_t state = seed ^ 0x7072697661746531ULL;
  std::vector<memory::PageRange> runs;
  uint64_t chosen = 0;
  for (uint64_t i = 0; i < candidates && chosen < want; ++i) {
    if (Next(state) % (candidates - i) >= want - chosen) continue;
    ++chosen;
    uint64_t first = i * kBootPrivateRunPages;
    if (!runs.empty() && runs.back().end() == first) {
      runs.back().count += kBootPrivateRunPages;
    } else {
      runs.push_back(memory::PageRange{first, kBootPrivateRunPages});
    }
  }
  return runs;
}

Status MarkPrivateInRecord(std::span<std::byte> record, std::span<const memory::PageRange> runs) {
  for (const memory::PageRange& run : runs) {
    if (run.end() < run.first || run.end() > record.size() * 8) {
      return InvalidArgument("data pages [" + std::to_string(run.first) + ", " + std::to_string(run.end()) +
                             ") do not fit the private-page record");
    }
    for (uint64_t p = run.first; p < run.end(); ++p) record[p / 8] |= std::byte{1} << (p % 8);
  }
  return Status::Ok();
}

}  // namespace gmem::vmm
