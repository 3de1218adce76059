#include "migrate/source_region.h"

#include <algorithm>
#include <thread>

namespace gmem::migrate {

Expected<std::vector<memory::GuestMemfdMapping>> MapRegions(const format::LayoutRecord& layout,
                                                            std::vector<UniqueFd>& fds) {
  if (fds.size() != layout.regions.size()) return InvalidArgument("one guest_memfd per region expected");
  std::vector<memory::GuestMemfdMapping> out;
  for (size_t i = 0; i < fds.size(); ++i) {
    const format::Region& r = layout.regions[i];
    std::string what = "region " + std::to_string(r.id);
    if (r.page_size != memory::kPageSize) return Unsupported(what + ": page size other than 4 KiB");
    GMEM_ASSIGN_OR_RETURN(memory::GuestMemfd gmem,
                          memory::GuestMemfd::Adopt(std::move(fds[i]), r.gmem_offset + r.size_bytes, r.gmem_flags));
    auto mapping = memory::GuestMemfdMapping::Map(gmem);
    if (!mapping.ok()) return std::move(mapping).status().WithContext(what);
    out.push_back(std::move(mapping).value());
  }
  return out;
}

Expected<std::vector<SourceRegion>> MakeSourceRegions(const format::LayoutRecord& layout,
                                                      std::vector<UniqueFd>& fds,
                                                      const std::vector<memory::AttributeMap>& initial,
                                                      DirtyMode mode) {
  GMEM_ASSIGN_OR_RETURN(auto mappings, MapRegions(layout, fds));
  if (initial.size() != mappings.size()) return InvalidArgument("one attribute map per region expected");
  std::vector<SourceRegion> out;
  for (size_t i = 0; i < mappings.size(); ++i) {
    SourceRegion r;
    r.region = layout.regions[i];
    r.mapping = std::make_unique<memory::GuestMemfdMapping>(std::move(mappings[i]));
    r.tracker = std::make_unique<memory::DirtyTracker>(initial[i]);
    uint64_t npages = r.region.npages();
    if (mode == DirtyMode::kContentHash) {
      // Every pass rehashes the region (the final one while the guest is paused): use the cores.
      memory::ContentHashOptions options;
      options.threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
      options.hash_unsent = false;  // PageSender copies every page through CopyForSend / NoteHoleForSend
      auto hash = std::make_unique<memory::ContentHashSource>(*r.mapping, r.first_gmem_page(), npages, options);
      r.hash = hash.get();
      r.tracker->AddSource(std::move(hash));
    } else {
      auto log = std::make_unique<VmmDirtyLogSource>(npages);
      r.log = log.get();
      r.tracker->AddSource(std::move(log));
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace gmem::migrate
