#include "vmm/memory_digest.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/xxh3.h"
#include "vmm/guest/guest_abi.h"
#include "vmm/x86_boot.h"

namespace gmem::vmm {
namespace {

constexpr uint64_t kWindowPages = 512;  // residency read at once
constexpr uint64_t kChunkPages = 16384;  // 64 MiB hashed as one

struct StateDeleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};
using HashState = std::unique_ptr<XXH3_state_t, StateDeleter>;

void Update64(XXH3_state_t* state, uint64_t v) {
  unsigned char le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(v >> (8 * i));
  XXH3_64bits_update(state, le, sizeof(le));
}

// Hashes guest-physical [gpa, gpa + npages pages) of one region, resident pages from the mapping
// and holes as zeros.
void HashRange(XXH3_state_t* state, const GuestMemory& memory, uint64_t gpa, uint64_t npages) {
  static const std::byte kZeroPage[GMEM_GUEST_PAGE] = {};
  unsigned char resident[kWindowPages];
  for (uint64_t done = 0; done < npages;) {
    uint64_t n = npages - done < kWindowPages ? npages - done : kWindowPages;
    std::byte* base = memory.HostAddress(gpa + done * GMEM_GUEST_PAGE, n * GMEM_GUEST_PAGE);
    bool known = ::mincore(base, n * GMEM_GUEST_PAGE, resident) == 0;
    for (uint64_t p = 0; p < n; ++p) {
      // SAFETY: p < n pages of the range HostAddress checked.
      const std::byte* page = (!known || (resident[p] & 1) != 0) ? base + p * GMEM_GUEST_PAGE : kZeroPage;
      XXH3_64bits_update(state, page, GMEM_GUEST_PAGE);
    }
    done += n;
  }
}

struct Chunk {
  uint64_t gpa = 0;
  uint64_t npages = 0;
  uint64_t hash = 0;
};

// The data pages in chunks of kChunkPages (per region, ascending GPA), each hashed on its own so
// that `threads` share them: the digest of 2 GiB took 0.2 s on one core, in every save and
// restore.
std::vector<Chunk> HashDataChunks(const GuestMemory& memory, unsigned threads) {
  std::vector<Chunk> chunks;
  for (const memory::Region& r : memory.layout().regions()) {
    uint64_t first = r.gpa_base > GMEM_GUEST_DATA_GPA ? r.gpa_base : GMEM_GUEST_DATA_GPA;
    for (uint64_t gpa = first; gpa < r.gpa_end(); gpa += kChunkPages * GMEM_GUEST_PAGE) {
      chunks.push_back({gpa, std::min<uint64_t>(kChunkPages, (r.gpa_end() - gpa) / GMEM_GUEST_PAGE), 0});
    }
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    HashState state(XXH3_createState());
    for (size_t i; (i = next.fetch_add(1)) < chunks.size();) {
      XXH3_64bits_reset(state.get());
      HashRange(state.get(), memory, chunks[i].gpa, chunks[i].npages);
      chunks[i].hash = XXH3_64bits_digest(state.get());
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads && t < chunks.size(); ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  return chunks;
}

}  // namespace

uint64_t MemoryDigest(const GuestMemory& memory, const std::vector<memory::AttributeMap>& attrs) {
  HashState state(XXH3_createState());
  XXH3_64bits_reset(state.get());
  static constexpr char kTag[] = "gmemkit-memory-v2";
  XXH3_64bits_update(state.get(), kTag, sizeof(kTag) - 1);
  for (const memory::Region& r : memory.layout().regions()) {
    Update64(state.get(), r.id);
    Update64(state.get(), r.gpa_base);
    Update64(state.get(), r.size_bytes);
  }
  unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  for (const Chunk& chunk : HashDataChunks(memory, threads)) Update64(state.get(), chunk.hash);
  uint64_t record_bytes = (DataPages(memory.total_bytes()) + 7) / 8;
  const std::byte* record = memory.HostAddress(GMEM_GUEST_RECORD_GPA, record_bytes);
  if (record != nullptr) XXH3_64bits_update(state.get(), record, record_bytes);
  for (const memory::AttributeMap& map : attrs) {
    Update64(state.get(), map.npages());
    map.ForEachRun([&](const memory::AttrRun& run) {
      Update64(state.get(), run.first);
      Update64(state.get(), run.count);
      Update64(state.get(), static_cast<uint64_t>(run.attr));
    });
  }
  return XXH3_64bits_digest(state.get());
}

uint64_t FinalChecksum(std::span<const VcpuResult> vcpus, uint64_t memory_digest) {
  HashState state(XXH3_createState());
  XXH3_64bits_reset(state.get());
  static constexpr char kTag[] = "gmemkit-checksum-v1";
  XXH3_64bits_update(state.get(), kTag, sizeof(kTag) - 1);
  Update64(state.get(), vcpus.size());
  for (const VcpuResult& v : vcpus) {
    Update64(state.get(), v.step);
    Update64(state.get(), v.digest);
  }
  Update64(state.get(), memory_digest);
  return XXH3_64bits_digest(state.get());
}

std::string DigestHex(uint64_t digest) {
  char buf[20];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(digest));
  return buf;
}

}  // namespace gmem::vmm
