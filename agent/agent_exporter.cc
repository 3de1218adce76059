#include "agent/agent_exporter.h"

#include <algorithm>
#include <string>

namespace gmem::agent {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

Expected<const format::Region*> FindRegion(const format::LayoutRecord& layout, uint32_t region_id) {
  const format::Region* r = layout.Find(region_id);
  if (r == nullptr) return InvalidArgument("no region " + Num(region_id) + " in the layout");
  if (r->page_size != kPageBytes) {
    return Unsupported("region " + Num(region_id) + " has " + Num(r->page_size) +
                       "-byte pages: agent protocol v1 moves 4 KiB pages only");
  }
  return r;
}

}  // namespace

Expected<format::PrivateRecord> AgentExporter::Export(uint32_t region_id, std::span<const uint64_t> pages) {
  not_private_.clear();
  GMEM_ASSIGN_OR_RETURN(const format::Region* region, FindRegion(layout_, region_id));
  std::vector<uint64_t> sorted(pages.begin(), pages.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (sorted.size() > format::kMaxBlobs) {
    return InvalidArgument("a PRIVATE record holds at most " + Num(format::kMaxBlobs) + " pages, asked for " +
                           Num(sorted.size()));
  }
  const uint64_t first_gfn = region->gpa_base >> kPageShift;
  std::vector<uint64_t> gfns;
  gfns.reserve(sorted.size());
  for (uint64_t page : sorted) {
    if (page >= region->npages()) return InvalidArgument("page " + Num(page) + " lies outside region " + Num(region_id));
    gfns.push_back(first_gfn + page);
  }
  GMEM_ASSIGN_OR_RETURN(ExportResult result, client_.Export(gfns));
  format::PrivateRecord record;
  record.region_id = region_id;
  record.epoch = epoch_;
  record.blobs.reserve(result.blobs.size());
  for (ExportedBlob& b : result.blobs) record.blobs.push_back(format::PrivateBlob{b.gfn - first_gfn, std::move(b.blob)});
  for (uint64_t gfn : result.not_private) not_private_.push_back(gfn - first_gfn);
  return record;
}

Status AgentImporter::Import(const format::PrivateRecord& record) {
  if (record.epoch != epoch_) {
    return AuthError("PRIVATE record of epoch " + Num(record.epoch) + ", the agent's session is of epoch " + Num(epoch_));
  }
  GMEM_ASSIGN_OR_RETURN(const format::Region* region, FindRegion(layout_, record.region_id));
  const uint64_t first_gfn = region->gpa_base >> kPageShift;
  std::vector<ImportBlob> blobs;
  blobs.reserve(record.blobs.size());
  for (const format::PrivateBlob& b : record.blobs) {
    if (b.page >= region->npages()) {
      return InvalidArgument("page " + Num(b.page) + " lies outside region " + Num(record.region_id));
    }
    blobs.push_back(ImportBlob{first_gfn + b.page, b.blob});
  }
  return client_.Import(blobs).WithContext("region " + Num(record.region_id));
}

}  // namespace gmem::agent
