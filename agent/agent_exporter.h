#pragma once
// AgentExporter / AgentImporter: the migration and snapshot engines' private-page seam
// (migrate/private_exporter.h) served by the guest's agent through an AgentClient.
//
// migrate/private_exporter.h is header-only (it needs only base/ and format/), so this file
// implements it without linking gmemkit_migrate: migrate (or the tools) may link gmemkit_agent
// without a cycle. If the engines ever want these classes inside migrate/, the two files move
// as they are.
//
// Pages in PRIVATE records are region-relative 4 KiB page numbers (format/FORMAT.md §5.4); the
// agent speaks guest frame numbers: gfn = (region.gpa_base + page * 4096) >> 12.
//
// Thread-compatible: they share their AgentClient's one mailbox; callers on several threads (the
// target's channels) serialise Export/Import with a lock.

#include <cstdint>
#include <span>
#include <vector>

#include "agent/agent_client.h"
#include "format/records.h"
#include "migrate/private_exporter.h"

namespace gmem::agent {

class AgentExporter final : public migrate::PrivatePageExporter {
 public:
  // REQUIRES: `client` outlives the exporter and holds an export session whose key is ready
  // (HELLO/PEER done); `epoch` is that session's epoch.
  AgentExporter(AgentClient& client, format::LayoutRecord layout, uint32_t epoch)
      : client_(client), layout_(std::move(layout)), epoch_(epoch) {}

  // Seals region `region_id`'s pages (region-relative, any order; duplicates are dropped; at most
  // format::kMaxBlobs) into a record with the session's epoch and generation 0 (the engine sets
  // the generation). Pages the guest converted back to shared in the meantime are left out of
  // the record and listed in last_not_private(); the record may then hold no blob at all, and
  // an engine must not write an empty PRIVATE record. kUnsupported for a region whose page size
  // is not 4 KiB.
  Expected<format::PrivateRecord> Export(uint32_t region_id, std::span<const uint64_t> pages) override;

  // Region-relative pages the last Export found shared.
  const std::vector<uint64_t>& last_not_private() const { return not_private_; }

 private:
  AgentClient& client_;
  format::LayoutRecord layout_;
  uint32_t epoch_;
  std::vector<uint64_t> not_private_;
};

class AgentImporter final : public migrate::PrivatePageImporter {
 public:
  // REQUIRES: `client` outlives the importer and holds an import session whose key is ready;
  // `epoch` is that session's epoch (HELLO's answer).
  AgentImporter(AgentClient& client, format::LayoutRecord layout, uint32_t epoch)
      : client_(client), layout_(std::move(layout)), epoch_(epoch) {}

  // Hands the record's blobs to the agent, which opens them and writes the pages in place,
  // private. kAuth for a record of another epoch or a blob the agent rejects (wrong key, gfn,
  // epoch, a replay): the migration must abort and the target must never resume.
  Status Import(const format::PrivateRecord& record) override;

 private:
  AgentClient& client_;
  format::LayoutRecord layout_;
  uint32_t epoch_;
};

}  // namespace gmem::agent
