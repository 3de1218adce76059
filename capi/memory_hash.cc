#include "capi/memory_hash.h"

#include <array>
#include <cstring>
#include <memory>

#include "base/bytes.h"
#include "base/xxh3.h"
#include "migrate/private_pages.h"
#include "migrate/source_region.h"

namespace gmem::capi {

namespace {

// Pages whose residency one mincore call reads, and that are released from this process's page
// tables behind the hash (so hashing a large guest does not grow the resident set to its size).
constexpr uint64_t kWindowPages = 512;

std::string Hex(XXH128_hash_t h) {
  std::array<std::byte, 16> bytes{};
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, h);
  std::memcpy(bytes.data(), canonical.digest, bytes.size());
  return ToHex(bytes);
}

struct StateDeleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

}  // namespace

Expected<std::string> HashMemory(const format::LayoutRecord& layout, std::vector<UniqueFd> fds,
                                 const std::vector<migrate::RegionAttributes>& attrs, bool skip_agent_area) {
  GMEM_ASSIGN_OR_RETURN(std::vector<memory::GuestMemfdMapping> mappings, migrate::MapRegions(layout, fds));
  std::unique_ptr<XXH3_state_t, StateDeleter> state(XXH3_createState());
  if (state == nullptr || XXH3_128bits_reset(state.get()) != XXH_OK) return Status(Code::kIo, "out of memory for the digest");
  static const std::array<std::byte, 4096> kZeros{};
  std::array<unsigned char, kWindowPages> resident{};
  for (size_t i = 0; i < layout.regions.size(); ++i) {
    const format::Region& r = layout.regions[i];
    XXH3_128bits_update(state.get(), &r.id, sizeof(r.id));
    attrs[i].map.ForEachRun([&](const memory::AttrRun& run) {
      const uint64_t words[3] = {run.first, run.count, static_cast<uint64_t>(run.attr)};
      XXH3_128bits_update(state.get(), words, sizeof(words));
    });
    const uint64_t first_page = r.gmem_offset / r.page_size;
    for (uint64_t window = 0; window < r.npages(); window += kWindowPages) {
      uint64_t count = std::min(kWindowPages, r.npages() - window);
      GMEM_RETURN_IF_ERROR(mappings[i].Residency(first_page + window, count, resident));
      for (uint64_t p = 0; p < count; ++p) {
        if (attrs[i].map.Get(window + p) == memory::PageAttr::kPrivate) continue;  // never read
        if (skip_agent_area && migrate::InAgentArea(r, window + p)) continue;
        // SAFETY: first_page + window + p < the mapping's npages: the region lies inside its fd.
        const void* page = (resident[p] & 1) != 0 ? static_cast<const void*>(mappings[i].PageAddress(first_page + window + p))
                                                  : static_cast<const void*>(kZeros.data());
        XXH3_128bits_update(state.get(), page, kZeros.size());
      }
      mappings[i].Release(first_page + window, count).IgnoreError();  // only bounds this process's RSS
    }
  }
  return Hex(XXH3_128bits_digest(state.get()));
}

std::string HashState(const std::string& state) { return Hex(XXH3_128bits(state.data(), state.size())); }

}  // namespace gmem::capi
