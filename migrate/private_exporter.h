#pragma once
// PrivatePageExporter: the seam through which private pages leave the source and enter the
// target (DESIGN.md, "Private pages: guest-assisted export"). Private pages are never read or
// written through the toolkit's mapping: the source hands their indices to an exporter (the
// guest's agent), which returns opaque sealed blobs for PRIVATE records; the target hands the
// blobs to its importer. Until an agent is wired in (the private-page issue), the engines take
// no exporter and refuse a VM that has private pages.

#include <cstdint>
#include <span>
#include <vector>

#include "base/expected.h"
#include "format/records.h"

namespace gmem::migrate {

class PrivatePageExporter {
 public:
  virtual ~PrivatePageExporter() = default;
  // Seals region `region_id`'s private pages `pages` (region-relative) for the target's agent.
  virtual Expected<format::PrivateRecord> Export(uint32_t region_id, std::span<const uint64_t> pages) = 0;
};

class PrivatePageImporter {
 public:
  virtual ~PrivatePageImporter() = default;
  // Opens the blobs and writes the pages in place, private. Any failure aborts the migration.
  virtual Status Import(const format::PrivateRecord& record) = 0;
};

}  // namespace gmem::migrate
