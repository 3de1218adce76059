#pragma once
// MigrationSource: the source side of a live migration (docs/migration.md). Attaches to the VMM
// through its control socket or a VmmControl (SourceOptions::vmm), streams layout and attributes,
// runs precopy passes driven by the per-attribute dirty tracker until the convergence policy stops
// them, pauses the vCPUs, sends the rest with the vCPU/device state and END, and runs the two-phase
// switchover.
//
// Outcomes: success — the target runs and the source VMM was told to quit (sockets), or the stream
// is complete and the source VM is left paused (file:/fd: streams). Any failure or cancel before
// the target's READY leaves the source VM running (resumed if this engine paused it). A connection
// lost after READY leaves the source paused and the error says "in doubt".
// Thread-safety: one Run() per object, on one thread.

#include <memory>
#include <optional>
#include <vector>

#include "base/expected.h"
#include "format/image_writer.h"
#include "migrate/channel_pool.h"
#include "migrate/convergence.h"
#include "migrate/endpoint.h"
#include "migrate/migration_types.h"
#include "agent/agent_exporter.h"
#include "migrate/page_sender.h"
#include "migrate/private_pages.h"
#include "migrate/source_region.h"
#include "migrate/switchover.h"
#include "migrate/throttled_sink.h"
#include "migrate/vmm_client.h"

namespace gmem::migrate {

class MigrationSource {
 public:
  MigrationSource(SourceOptions options, MigrationKey key);
  ~MigrationSource();

  // Runs the whole migration. On error, the status says what happened and in which phase.
  Expected<MigrationStats> Run();

 private:
  Status Attach();
  Status Connect();
  Status StartWriters();
  Status Precopy();
  Status StopAndCopy();
  Status Switchover();
  // One pass: asks every tracker (after fetching the dirty log), then the policy (unless
  // `final`), then sends. Sets `stopped` when the policy ends precopy before sending.
  Status RunPass(uint32_t pass, bool final, bool& stopped);
  Expected<std::vector<memory::DirtyReport>> BeginPass(bool final);
  // Private pages (migrate/private_pages.h), set up once before pass 1: to a live peer, the
  // agents' key agreement; into a file stream, the agent's sealed export (its descriptor goes into
  // the stream). Then one pass's export of what the agent reports dirty into PRIVATE records on
  // channel 0.
  Status AgreeAgentKey(format::ImageWriter& channel0);
  Status OpenSealedExport(format::ImageWriter& channel0);
  Status ConnectOwnAgent();
  // Hands the agent's DIRTY answer to each region's tracker (the private pages' dirty source).
  Status ReportAgentDirty(const std::vector<RegionAttributes>& attrs);
  // Exports the private pages of `reports` (dirty or not yet on the target as private).
  Status SendPrivatePages(uint32_t pass, const std::vector<memory::DirtyReport>& reports, PassStats& stats);
  // After the final pass: ends the export session with the agent's manifest (STATE "agent-finish").
  Status FinishAgentExport();
  // The export session is open: the agent becomes the trackers' source for private pages.
  void WatchPrivatePagesThroughAgent();
  Status CheckCancel() const;
  // Restores the source after a failure that happened before READY.
  void Recover();

  SourceOptions options_;
  MigrationKey key_;
  std::unique_ptr<VmmClient> own_vmm_;  // when connected through options_.vmm_socket
  VmmControl* vmm_ = nullptr;
  DirtyMode mode_ = DirtyMode::kContentHash;
  format::LayoutRecord layout_;
  std::vector<SourceRegion> regions_;
  // Per region, the hash of each page as it last went out: a file stream's table for later
  // incremental saves (empty when not recorded).
  std::vector<std::vector<memory::PageHash>> page_hashes_;
  std::vector<Endpoint> endpoints_;  // channel order
  std::vector<std::unique_ptr<ThrottledSink>> sinks_;
  transport::SessionId session_{};
  std::unique_ptr<ChannelPool> pool_;
  std::unique_ptr<PageSender> sender_;
  ConvergencePolicy policy_;
  MigrationStats stats_;
  uint32_t passes_ = 0;
  bool was_running_ = false; // the VM ran when the engine attached
  bool agent_capable_ = false;  // the VMM reports a provisioned agent
  AgentConnection agent_;
  std::unique_ptr<agent::AgentExporter> exporter_;  // set once the export session has its key
  class VmmConversionFence;
  std::unique_ptr<VmmConversionFence> fence_;  // with exporter_: vets batches for conversions
  bool paused_ = false;      // this engine paused the source VM
  bool committed_ = false;       // COMMIT is being sent: never resume from here on
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point paused_at_;
};

}  // namespace gmem::migrate
