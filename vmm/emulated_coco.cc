#include "vmm/emulated_coco.h"

#include <cstring>
#include <string>

#include "vmm/guest/guest_abi.h"

namespace gmem::vmm {

using memory::AttributeMap;
using memory::ConversionContent;
using memory::PageAttr;

Expected<std::unique_ptr<EmulatedCoco>> EmulatedCoco::Create(const GuestMemory& memory, CocoMode mode,
                                                             ConversionContent contents, uint64_t scramble_seed) {
  std::vector<memory::EmulatedAttributeSource> sources;
  for (const memory::Region& r : memory.layout().regions()) {
    // The memory layer's source keeps the table and the conversion log; it gets no mapping (the
    // VMM's mapping is the guest's and must stay accessible) and always "preserve": the contents
    // policy is applied here, so that a restore (Restore) never changes contents.
    GMEM_ASSIGN_OR_RETURN(memory::EmulatedAttributeSource source,
                          memory::EmulatedAttributeSource::Create(r.npages(), PageAttr::kShared, nullptr, 0));
    sources.push_back(std::move(source));
  }
  return std::unique_ptr<EmulatedCoco>(new EmulatedCoco(memory, mode, contents, scramble_seed, std::move(sources)));
}

Status EmulatedCoco::ApplyContents(size_t index, uint64_t first, uint64_t count) {
  const memory::Region& region = memory_.layout().regions()[index];
  switch (contents_) {
    case ConversionContent::kPreserve:
      return Status::Ok();
    case ConversionContent::kZero:
      return memory_.gmem(index).PunchHole(region.gmem_offset + first * GMEM_GUEST_PAGE, count * GMEM_GUEST_PAGE);
    case ConversionContent::kScramble: {
      for (uint64_t p = first; p < first + count; ++p) {
        uint64_t gpa = region.gpa_base + p * GMEM_GUEST_PAGE;
        std::byte* page = memory_.HostAddress(gpa, GMEM_GUEST_PAGE);
        uint64_t state = seed_ ^ (gpa * 0x9fb21c651e98df25ULL) ^ (conversions_ * 0xd6e8feb86659fd93ULL);
        for (uint64_t off = 0; off < GMEM_GUEST_PAGE; off += 8) {
          uint64_t v = gmem_guest_splitmix(&state);
          // SAFETY: HostAddress returned a whole page inside the region's mapping.
          std::memcpy(page + off, &v, sizeof(v));
        }
      }
      return Status::Ok();
    }
  }
  return InvalidArgument("invalid conversion contents policy");
}

Status EmulatedCoco::ConvertInRegion(size_t index, uint64_t first, uint64_t count, PageAttr attr,
                                     bool apply_contents) {
  // Only the pages whose attribute really changes see the contents policy.
  std::vector<memory::PageRange> changing;
  sources_[index].attributes().ForEachRunIn(first, count, [&](const memory::AttrRun& run) {
    if (run.attr != attr) changing.push_back(memory::PageRange{run.first, run.count});
  });
  for (const memory::PageRange& run : changing) {
    if (apply_contents) GMEM_RETURN_IF_ERROR(ApplyContents(index, run.first, run.count));
    GMEM_RETURN_IF_ERROR(sources_[index].Convert(run.first, run.count, attr));
  }
  return Status::Ok();
}

Status EmulatedCoco::Apply(const ConversionRequest& request) {
  if (mode_ == CocoMode::kNone) return Unsupported("no private memory (--coco none): every page stays shared");
  uint64_t end = request.gpa + request.size_bytes;
  if (request.size_bytes == 0 || end < request.gpa || end > memory_.total_bytes()) {
    return InvalidArgument("conversion of [" + std::to_string(request.gpa) + ", " + std::to_string(end) +
                           ") leaves guest RAM");
  }
  std::lock_guard<std::mutex> lock(mu_);
  GMEM_RETURN_IF_ERROR(ConvertGpaRange(request.gpa, end, request.attr, /*apply_contents=*/true));
  ++conversions_;
  return Status::Ok();
}

Status EmulatedCoco::ConvertGpaRange(uint64_t gpa, uint64_t end, PageAttr attr, bool apply_contents) {
  // The range may span regions (they tile guest RAM): each converts its part.
  const memory::Layout& layout = memory_.layout();
  for (size_t i = 0; i < layout.regions().size(); ++i) {
    const memory::Region& r = layout.regions()[i];
    uint64_t a = gpa > r.gpa_base ? gpa : r.gpa_base;
    uint64_t b = end < r.gpa_end() ? end : r.gpa_end();
    if (a >= b) continue;
    GMEM_RETURN_IF_ERROR(
        ConvertInRegion(i, (a - r.gpa_base) / GMEM_GUEST_PAGE, (b - a) / GMEM_GUEST_PAGE, attr, apply_contents));
  }
  return Status::Ok();
}

std::vector<AttributeMap> EmulatedCoco::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AttributeMap> out;
  for (const auto& s : sources_) out.push_back(s.attributes());
  return out;
}

Status EmulatedCoco::Restore(size_t index, const AttributeMap& map) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= sources_.size()) return InvalidArgument("attributes for unknown region index " + std::to_string(index));
  if (map.npages() != sources_[index].attributes().npages()) {
    return InvalidArgument("attributes for region index " + std::to_string(index) + " cover " +
                           std::to_string(map.npages()) + " pages, the region has " +
                           std::to_string(sources_[index].attributes().npages()));
  }
  if (mode_ == CocoMode::kNone && map.CountPrivate() != 0) {
    return Unsupported("private pages in a VM without private memory (--coco none)");
  }
  Status status;
  map.ForEachRun([&](const memory::AttrRun& run) {
    if (status.ok()) status = sources_[index].Convert(run.first, run.count, run.attr);
  });
  return status;
}

std::optional<PageAttr> EmulatedCoco::AttributeAt(uint64_t gpa) const {
  const memory::Layout& layout = memory_.layout();
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < layout.regions().size(); ++i) {
    const memory::Region& r = layout.regions()[i];
    if (r.ContainsGpa(gpa)) return sources_[i].attributes().Get((gpa - r.gpa_base) / GMEM_GUEST_PAGE);
  }
  return std::nullopt;
}

Status EmulatedCoco::AcceptPrivate(uint64_t gpa, uint64_t npages) {
  if (mode_ == CocoMode::kNone) return Unsupported("no private memory (--coco none)");
  const memory::Layout& layout = memory_.layout();
  const uint64_t end = gpa + npages * GMEM_GUEST_PAGE;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < layout.regions().size(); ++i) {
    const memory::Region& r = layout.regions()[i];
    if (r.ContainsGpa(gpa) && end <= r.gpa_end() && end > gpa) {
      return sources_[i].Convert((gpa - r.gpa_base) / GMEM_GUEST_PAGE, npages, PageAttr::kPrivate);
    }
  }
  return InvalidArgument("accepting [" + std::to_string(gpa) + ", " + std::to_string(end) + ") leaves a region of guest RAM");
}

Status EmulatedCoco::MakePrivateAtBoot(std::span<const memory::PageRange> runs) {
  if (mode_ == CocoMode::kNone) return Unsupported("no private memory (--coco none): every page stays shared");
  const uint64_t npages = memory_.total_bytes() / GMEM_GUEST_PAGE;
  std::lock_guard<std::mutex> lock(mu_);
  for (const memory::PageRange& run : runs) {
    if (run.count == 0 || run.first >= npages || run.count > npages - run.first) {
      return InvalidArgument("private at boot: pages [" + std::to_string(run.first) + ", +" + std::to_string(run.count) +
                             ") leave guest RAM");
    }
    GMEM_RETURN_IF_ERROR(ConvertGpaRange(run.first * GMEM_GUEST_PAGE, run.end() * GMEM_GUEST_PAGE, PageAttr::kPrivate,
                                         /*apply_contents=*/false));
  }
  // The initial state, not a change to it: nothing for dirty tracking to see.
  for (auto& s : sources_) s.TakeConversions();
  return Status::Ok();
}

std::vector<std::vector<memory::PageRange>> EmulatedCoco::TakeConversions() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::vector<memory::PageRange>> out;
  for (auto& s : sources_) out.push_back(s.TakeConversions());
  return out;
}

uint64_t EmulatedCoco::conversions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return conversions_;
}

}  // namespace gmem::vmm
