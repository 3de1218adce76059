#include "snapshot/diff.h"


namespace gmem::snapshot {
namespace {

const RegionContents* FindRegion(const ImageContents& image, uint32_t id) {
  for (const RegionContents& rc : image.regions) {
    if (rc.region.id == id) return &rc;
  }
  return nullptr;
}

std::vector<std::string> ChangedFields(const format::Region& a, const format::Region& b) {
  std::vector<std::string> fields;
  if (a.size_bytes != b.size_bytes) fields.push_back("size");
  if (a.gpa_base != b.gpa_base) fields.push_back("gpa");
  if (a.gmem_offset != b.gmem_offset) fields.push_back("gmem_offset");
  if (a.page_size != b.page_size) fields.push_back("page_size");
  if (a.gmem_flags != b.gmem_flags) fields.push_back("flags");
  return fields;
}

RegionDiff ComparePages(const RegionContents& a, const RegionContents& b) {
  RegionDiff d;
  d.id = a.region.id;
  d.compared_pages = std::min(a.hashes.size(), b.hashes.size());
  for (uint64_t p = 0; p < d.compared_pages; ++p) {
    bool private_b = b.attrs[p] == format::PageAttr::kPrivate;
    if (a.attrs[p] != b.attrs[p]) ++(private_b ? d.to_private : d.to_shared);
    if (a.hashes[p] != b.hashes[p]) {
      ++d.differ;
      ++(private_b ? d.differ_private : d.differ_shared);
    }
  }
  return d;
}

}  // namespace

DiffReport Compare(const ImageContents& a, const ImageContents& b) {
  DiffReport report;
  for (const RegionContents& ra : a.regions) {
    const RegionContents* rb = FindRegion(b, ra.region.id);
    if (rb == nullptr) {
      report.layout_changes.push_back({RegionChange::Kind::kRemoved, ra.region.id, ra.region, std::nullopt, {}});
      continue;
    }
    std::vector<std::string> fields = ChangedFields(ra.region, rb->region);
    if (!fields.empty()) {
      report.layout_changes.push_back({RegionChange::Kind::kChanged, ra.region.id, ra.region, rb->region, fields});
    }
    // Page i of regions with different page sizes is not the same memory: nothing to compare.
    if (ra.region.page_size != rb->region.page_size) continue;
    RegionDiff d = ComparePages(ra, *rb);
    report.differ += d.differ;
    report.differ_shared += d.differ_shared;
    report.differ_private += d.differ_private;
    report.attr_changes += d.attr_changes();
    report.regions.push_back(d);
  }
  for (const RegionContents& rb : b.regions) {
    if (FindRegion(a, rb.region.id) == nullptr) {
      report.layout_changes.push_back({RegionChange::Kind::kAdded, rb.region.id, std::nullopt, rb.region, {}});
    }
  }
  report.state_differs = a.state_hash != b.state_hash;
  return report;
}

Expected<DiffInputs> DiffFiles(const std::string& path_a, const std::string& path_b, const std::string& parent_dir,
                               const format::KeySource& key, const ContentsOptions& options) {
  DiffInputs out;
  GMEM_ASSIGN_OR_RETURN(out.chain_a, FindChain(path_a, parent_dir));
  GMEM_ASSIGN_OR_RETURN(out.chain_b, FindChain(path_b, parent_dir));
  GMEM_ASSIGN_OR_RETURN(out.a, ReadChainContents(out.chain_a, key, options));
  GMEM_ASSIGN_OR_RETURN(out.b, ReadChainContents(out.chain_b, key, options));
  out.report = Compare(out.a, out.b);
  return out;
}

}  // namespace gmem::snapshot
