#pragma once
// MigrationTarget: the target side of a live migration (docs/migration.md). Accepts the stream,
// verifies every record (the reader checks seals, grammar and END), builds the incoming VM through
// its VMM's control socket or a VmmControl (TargetOptions::vmm) — layout first, shared pages
// written in place through the guest_memfd mappings, newest generation winning, then attributes and
// vCPU state — checks that the VMM's digest equals the source's at pause, and runs the two-phase
// switchover: READY, then resume only on COMMIT.
//
// The target VM never resumes on an incomplete or unverified stream: any failure before READY sends
// ABORT (when a peer can hear it) and tells the incoming VMM to quit (the copy is discarded). A
// connection lost after READY leaves the target paused, "in doubt".
// Thread-safety: one Run() per object, on one thread.

#include <array>
#include <mutex>
#include <optional>
#include <vector>

#include "base/expected.h"
#include "format/image_reader.h"
#include "memory/attribute_map.h"
#include "memory/deferred_release.h"
#include "memory/guest_memfd_mapping.h"
#include "migrate/endpoint.h"
#include "agent/agent_exporter.h"
#include "migrate/migration_types.h"
#include "migrate/page_versions.h"
#include "migrate/private_pages.h"
#include "migrate/vmm_client.h"

namespace gmem::migrate {

class MigrationTarget {
 public:
  MigrationTarget(TargetOptions options, MigrationKey key);
  ~MigrationTarget();

  Expected<TargetResult> Run();

 private:
  Status AttachVmm();
  // Opens `uri` and its reader; `last`: the final image (a parent must be a file: or fd: stream).
  Status Accept(const std::string& uri, bool last);
  Status Receive();
  // Reads channel `channel` (> 0) to its END, applying what it carries.
  Status ReceiveChannel(size_t channel);
  Status Dispatch(const format::Record& record);
  // Unblocks every channel's reader after a failure on one of them.
  void ShutdownChannels();
  Status OnLayout(const format::LayoutRecord& layout);
  Status OnAttrs(const format::AttrsRecord& record);
  Status OnPages(const format::PagesRecord& record);
  Status OnState(const format::StateRecord& record);
  Status OnPrivate(const format::PrivateRecord& record);
  // The source's agent share arrived (STATE "agent-share"): starts this VM's import session and
  // sends the answer back.
  Status AgreeAgentKey(const Bytes& source_share);
  // A sealed export's descriptor arrived (STATE "agent-seal"): kept until the first PRIVATE
  // record, which opens the import session (a stream without private pages never needs the agent).
  Status OnSealDescriptor(const Bytes& descriptor);
  Status OpenSealedImport();
  // Before the VM may resume: this VM's agent checks the source agent's manifest against the
  // private pages it imported (REQUIRES: the final attributes applied).
  Status CheckAgentManifest();
  Status ConnectOwnAgent();
  Status Apply();
  Status Switchover();
  // Resumes the VM unless TargetOptions::resume says to leave it paused.
  Status ResumeIfAsked();
  size_t RegionIndex(uint32_t region_id) const;

  TargetOptions options_;
  MigrationKey key_;
  std::unique_ptr<VmmClient> own_vmm_;  // when connected through options_.vmm_socket
  VmmControl* vmm_ = nullptr;
  std::vector<Endpoint> endpoints_;  // channel order
  transport::SessionId session_{};
  std::optional<format::ImageReader> reader_;  // channel 0
  format::ReaderOptions reader_options_;
  // Serialises what the channels' threads apply (attributes, state, counters); the readers
  // authenticate and decompress in parallel outside it. Pages are copied under page_locks_, one
  // per stripe of kStripePages pages, so channels write guest memory in parallel.
  std::mutex apply_mu_;
  static constexpr uint64_t kStripePages = 512;
  std::array<std::mutex, 64> page_locks_;
  // The lock of the stripe holding page `page` of the region with layout index `region`.
  std::mutex& PageLock(size_t region, uint64_t page) {
    return page_locks_[(region * 31 + page / kStripePages) % page_locks_.size()];
  }
  format::LayoutRecord layout_;
  std::vector<memory::GuestMemfdMapping> mappings_;
  // Pages written through mappings_, dropped from this process's page tables in large ranges
  // (flushed at the end of each image; declared after mappings_ so it never outlives them).
  memory::DeferredRelease release_;
  std::vector<memory::AttributeMap> attrs_;
  std::vector<uint64_t> attrs_generation_;
  std::vector<PageVersions> versions_;  // per region: which update of each page is applied
  std::string state_;
  std::optional<VmmDigest> source_digest_;
  bool memory_check_ = false;
  AgentConnection agent_;
  std::unique_ptr<agent::AgentImporter> importer_;  // this image's import session, once keyed
  std::optional<Bytes> seal_descriptor_;             // this image's "agent-seal", until imported
  agent::SessionId seal_session_{};                  // ... and the agents' session id for it
  std::optional<Bytes> finish_manifest_;             // this image's "agent-finish"
  // Set by the first agent session: from then on PAGES never overwrite the agent's mailbox.
  bool agent_area_reserved_ = false;
  // The chain of images received so far (an incremental restore): their count, and the stream id
  // and channel-0 END digest of the last one, which the next must name as its parent.
  size_t images_ = 0;
  format::StreamId previous_stream_id_{};
  format::Digest previous_end_digest_{};  // STATE asked for the digest comparison (live streams)
  TargetResult result_;
  bool ready_ = false;
  bool incoming_ = false;  // the VMM was checked to be an incoming one (never quit another)
};

}  // namespace gmem::migrate
