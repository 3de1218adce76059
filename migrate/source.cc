#include "migrate/source.h"

#include <algorithm>
#include <chrono>

#include <sys/socket.h>

#include "format/keys.h"
#include "format/stream_keys.h"
#include "migrate/incremental.h"
#include "migrate/page_sender.h"

namespace gmem::migrate {

namespace {

using Clock = std::chrono::steady_clock;

// The VMM writes the vCPU control pages of the boot area itself (docs/control-protocol.md,
// "dirty-log"): no dirty source sees that, so the final pass resends the whole boot area.
constexpr uint64_t kBootAreaBytes = uint64_t{2} << 20;

// Writes the region's attributes as the tracker knows them as ATTRS records of `generation`:
// together they cover the region, each holds at most kMaxAttrRuns runs (a fragmented map takes
// several; FORMAT.md §5.2: the pages a record does not cover keep their attribute).
Status WriteAttrsOf(format::ImageWriter& writer, const SourceRegion& r, uint64_t generation) {
  format::AttrsRecord attrs;
  attrs.region_id = r.region.id;
  attrs.generation = generation;
  Status st;
  r.tracker->attributes().ForEachRun([&](const memory::AttrRun& run) {
    if (attrs.runs.size() == format::kMaxAttrRuns) {
      if (st.ok()) st = writer.WriteAttrs(attrs);
      attrs.runs.clear();
    }
    attrs.runs.push_back({run.first, run.count, static_cast<format::PageAttr>(run.attr)});
  });
  GMEM_RETURN_IF_ERROR(st);
  return writer.WriteAttrs(attrs);
}

// The page sender's windows that hold a page of `dirty`: it reads the residency of each.
uint64_t CountWindows(const memory::PageBitmap& dirty) {
  uint64_t windows = 0;
  for (uint64_t page = dirty.NextSet(0); page < dirty.npages(); ++windows) {
    page = dirty.NextSet((page / kWindowPages + 1) * kWindowPages);
  }
  return windows;
}

uint64_t MicrosSince(Clock::time_point t) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}

Bytes ToBytes(const std::string& s) {
  Bytes out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}


}  // namespace

// The VMM's view: its conversion count (`query`) and attributes (`get-attributes`).
class MigrationSource::VmmConversionFence final : public ConversionFence {
 public:
  VmmConversionFence(VmmControl& vmm, const format::LayoutRecord& layout) : vmm_(vmm), layout_(layout) {}
  Expected<uint64_t> Conversions() override {
    GMEM_ASSIGN_OR_RETURN(VmmInfo info, vmm_.Query());
    latest_ = info.conversions;
    return latest_;
  }
  Expected<bool> IsPrivateNow(size_t region_index, uint64_t page) override {
    if (!view_.has_value() || view_conversions_ != latest_) {
      // Count first, then the table: the table is at least as new as the count.
      GMEM_ASSIGN_OR_RETURN(uint64_t count, Conversions());
      GMEM_ASSIGN_OR_RETURN(view_, vmm_.GetAttributes(layout_));
      view_conversions_ = count;
    }
    return (*view_)[region_index].map.Get(page) != memory::PageAttr::kShared;
  }

 private:
  VmmControl& vmm_;
  const format::LayoutRecord& layout_;
  uint64_t latest_ = 0;
  uint64_t view_conversions_ = 0;
  std::optional<std::vector<RegionAttributes>> view_;
};

MigrationSource::MigrationSource(SourceOptions options, MigrationKey key)
    : options_(std::move(options)), key_(std::move(key)), policy_(options_.convergence) {}

MigrationSource::~MigrationSource() = default;

Status MigrationSource::CheckCancel() const {
  if (options_.cancel != nullptr && options_.cancel->load()) return Status(Code::kCancelled, "cancelled");
  return Status::Ok();
}

Status MigrationSource::Attach() {
  GMEM_ASSIGN_OR_RETURN(vmm_, AttachVmmControl(options_.vmm, options_.vmm_socket, options_.vmm_connect_timeout_ms,
                                               own_vmm_));
  GMEM_ASSIGN_OR_RETURN(VmmInfo info, vmm_->Query());
  if (info.state != "running" && info.state != "paused") return InvalidArgument("the source VM is " + info.state);
  was_running_ = info.state == "running";
  agent_capable_ = info.agent_available && info.agent_provisioned;
  mode_ = info.kvm_dirty_log ? DirtyMode::kKvmDirtyLog : DirtyMode::kContentHash;
  std::vector<UniqueFd> fds;
  GMEM_ASSIGN_OR_RETURN(layout_, vmm_->GetMemfds(fds));
  GMEM_ASSIGN_OR_RETURN(auto attrs, vmm_->GetAttributes(layout_));
  std::vector<memory::AttributeMap> maps;
  for (RegionAttributes& r : attrs) {
    if (r.map.CountPrivate() != 0 && !agent_capable_) {
      return Unsupported("the VM has private pages (region " + std::to_string(r.region_id) +
                         ") and no provisioned agent to export them (gmem-vmm --coco emulated --platform-key)");
    }
    maps.push_back(std::move(r.map));
  }
  if (mode_ == DirtyMode::kKvmDirtyLog) {
    // Start the log now: pass 1 reads everything, later passes send what the guest wrote since.
    GMEM_RETURN_IF_ERROR(vmm_->DirtyLog(layout_).status());
  }
  if (options_.base != nullptr && !(options_.base->layout == layout_)) {
    return InvalidArgument("the parent image was saved from a VM with another memory layout");
  }
  GMEM_ASSIGN_OR_RETURN(regions_, MakeSourceRegions(layout_, fds, maps, mode_));
  return Status::Ok();
}

Status MigrationSource::Connect() {
  GMEM_ASSIGN_OR_RETURN(transport::Uri uri, transport::ParseUri(options_.to_uri));
  bool socket = uri.kind == transport::Uri::Kind::kTcp || uri.kind == transport::Uri::Kind::kUnix;
  uint16_t channels = socket ? options_.channels : 1;
  if (channels == 0 || channels > kMaxChannels) {
    return InvalidArgument("channels: expected 1.." + std::to_string(kMaxChannels));
  }
  for (uint16_t ch = 0; ch < channels; ++ch) {
    // Channel k + 1 connects only after channel k's handshake, so the target accepts them in order.
    GMEM_ASSIGN_OR_RETURN(Endpoint endpoint, OpenSourceEndpoint(uri, options_.connect_timeout_ms));
    if (!options_.stream_name.empty()) endpoint.channel->set_name(options_.stream_name);
    GMEM_ASSIGN_OR_RETURN(transport::SessionId session,
                          EstablishSession(endpoint, key_.key, key_.insecure,
                                           transport::HandshakeOptions::Role::kInitiator, ch, channels, session_));
    if (ch == 0) session_ = session;
    endpoints_.push_back(std::move(endpoint));
  }
  stats_.channels = channels;
  return StartWriters();
}

Status MigrationSource::StartWriters() {
  uint16_t channels = static_cast<uint16_t>(endpoints_.size());
  format::StreamParams params;
  params.compression = options_.compression;
  params.channel_count = channels;
  params.stream_id = session_;  // the target checks it: a recorded stream cannot be replayed
  if (options_.base != nullptr) {
    if (endpoints_[0].interactive) return InvalidArgument("an incremental stream goes to a file or fd, not a peer");
    params.parent = std::make_pair(options_.base->parent_stream_id, options_.base->parent_digest);
  }
  if (!key_.passphrase.empty() && endpoints_[0].interactive) {
    return InvalidArgument("a passphrase protects file streams only: a live migration needs a key file");
  }
  GMEM_ASSIGN_OR_RETURN(format::StreamKeys stream_keys, format::CreateStream(params, StreamKeySource(key_)));
  auto keys = std::make_shared<const format::StreamKeys>(std::move(stream_keys));
  std::vector<format::ImageWriter> writers;
  for (uint16_t ch = 0; ch < channels; ++ch) {
    sinks_.push_back(std::make_unique<ThrottledSink>(endpoints_[ch].sink(),
                                                     options_.bandwidth_bytes_per_second / channels));
    format::WriterOptions writer_options;
    writer_options.channel = ch;
    writer_options.zstd_level = options_.zstd_level;
    GMEM_ASSIGN_OR_RETURN(format::ImageWriter writer, format::ImageWriter::Create(*sinks_.back(), keys, writer_options));
    GMEM_RETURN_IF_ERROR(ch == 0 ? writer.Begin() : writer.Begin(&layout_));
    writers.push_back(std::move(writer));
  }
  if (options_.record_page_hashes && !endpoints_[0].interactive) {
    for (const SourceRegion& r : regions_) page_hashes_.emplace_back(r.tracker->attributes().npages());
  }
  GMEM_RETURN_IF_ERROR(writers[0].WriteLayout(layout_));
  for (const SourceRegion& r : regions_) {
    GMEM_RETURN_IF_ERROR(WriteAttrsOf(writers[0], r, 1));
  }
  if (agent_capable_) {
    GMEM_RETURN_IF_ERROR(endpoints_[0].interactive ? AgreeAgentKey(writers[0]) : OpenSealedExport(writers[0]));
  }
  pool_ = std::make_unique<ChannelPool>(std::move(writers), kBatchPages,
                                        options_.adaptive_compression && options_.compression == format::Compression::kZstd);
  pool_->SyncWireBytes();
  sender_ = std::make_unique<PageSender>(*pool_, options_.cancel, options_.events);
  if (exporter_ != nullptr) {
    WatchPrivatePagesThroughAgent();
    fence_ = std::make_unique<VmmConversionFence>(*vmm_, layout_);
    sender_->set_conversion_fence(fence_.get());
  }
  return Status::Ok();
}

Status MigrationSource::ConnectOwnAgent() {
  std::vector<const memory::GuestMemfdMapping*> mappings;
  for (const SourceRegion& r : regions_) mappings.push_back(r.mapping.get());
  GMEM_ASSIGN_OR_RETURN(agent_, ConnectAgent(*vmm_, layout_, mappings));
  return Status::Ok();
}

Status MigrationSource::OpenSealedExport(format::ImageWriter& channel0) {
  // No agent reads the stream now: the agent seals under a key only this guest identity on this
  // platform derives again, bound to the stream id; the restore hands the descriptor back to it.
  GMEM_RETURN_IF_ERROR(ConnectOwnAgent());
  GMEM_ASSIGN_OR_RETURN(agent::HelloResponse hello,
                        agent_.client->Hello(agent::Role::kExport, agent::Mode::kSealed, AgentSessionId(session_)));
  format::StateRecord record;
  record.entries.push_back({kAgentSealEntry, hello.share});
  GMEM_RETURN_IF_ERROR(channel0.WriteState(record));
  exporter_ = std::make_unique<agent::AgentExporter>(*agent_.client, layout_, hello.epoch);
  return Status::Ok();
}

Status MigrationSource::AgreeAgentKey(format::ImageWriter& channel0) {
  GMEM_RETURN_IF_ERROR(ConnectOwnAgent());
  GMEM_ASSIGN_OR_RETURN(agent::HelloResponse hello,
                        agent_.client->Hello(agent::Role::kExport, agent::Mode::kTransport, AgentSessionId(session_)));
  // The share travels sealed in the stream; the target's agent answers with its own.
  format::StateRecord record;
  record.entries.push_back({kAgentShareEntry, hello.share});
  GMEM_RETURN_IF_ERROR(channel0.WriteState(record));
  SwitchoverLink link(*endpoints_[0].channel, *endpoints_[0].channel, key_.key, session_);
  GMEM_ASSIGN_OR_RETURN(SwitchoverMessage answer, link.Receive());
  if (answer.type == SwitchoverType::kAbort) return Status(Code::kPeerAborted, "the target aborted: " + answer.reason);
  if (answer.type != SwitchoverType::kAgentShare) {
    return ProtocolError("expected AGENT_SHARE, got " + std::string(SwitchoverTypeName(answer.type)));
  }
  Bytes share;
  uint64_t target_key_id = 0;
  GMEM_RETURN_IF_ERROR(DecodeAgentShare(answer.reason, share, target_key_id));
  GMEM_ASSIGN_OR_RETURN(agent::PeerResponse peer, agent_.client->Peer(share));
  if (peer.key_id != target_key_id) {
    return AuthError("the two agents derived different transport keys (a host in between changed a key share?)");
  }
  exporter_ = std::make_unique<agent::AgentExporter>(*agent_.client, layout_, hello.epoch);
  return Status::Ok();
}

void MigrationSource::WatchPrivatePagesThroughAgent() {
  for (SourceRegion& r : regions_) {
    memory::Coverage coverage;
    coverage.pages = {0, r.region.npages()};
    coverage.sees_private = true;
    coverage.complete = true;  // an agent that cannot track says ALL: then every private page
    auto source = std::make_unique<memory::GuestReportedSource>(r.region.npages(), coverage);
    r.agent = source.get();
    r.tracker->AddSource(std::move(source));
  }
}

Status MigrationSource::ReportAgentDirty(const std::vector<RegionAttributes>& attrs) {
  // Private pages whose contents differ from their last export in this session (asking does not
  // change the answer: pages not exported after all are reported again).
  GMEM_ASSIGN_OR_RETURN(agent::DirtyReport dirty, agent_.client->Dirty());
  for (size_t i = 0; i < regions_.size(); ++i) {
    SourceRegion& r = regions_[i];
    if (dirty.all) {
      Status st;
      attrs[i].map.ForEachRun([&](const memory::AttrRun& run) {
        if (run.attr == memory::PageAttr::kPrivate && st.ok()) st = r.agent->ReportRange({run.first, run.count});
      });
      GMEM_RETURN_IF_ERROR(st);
      continue;
    }
    const uint64_t first_gfn = r.region.gpa_base / memory::kPageSize;
    std::vector<uint64_t> pages;
    for (uint64_t gfn : dirty.gfns) {
      if (gfn >= first_gfn && gfn < first_gfn + r.region.npages()) pages.push_back(gfn - first_gfn);
    }
    GMEM_RETURN_IF_ERROR(r.agent->Report(pages));
  }
  return Status::Ok();
}

Status MigrationSource::SendPrivatePages(uint32_t pass, const std::vector<memory::DirtyReport>& reports,
                                         PassStats& stats) {
  for (size_t i = 0; i < regions_.size(); ++i) {
    SourceRegion& r = regions_[i];
    // Dirty private pages: the agent's report, conversions to private, and pages the target does
    // not have as private yet (the tracker's view as of this pass).
    std::vector<uint64_t> pages;
    r.tracker->attributes().ForEachRun([&](const memory::AttrRun& run) {
      if (run.attr != memory::PageAttr::kPrivate) return;
      for (uint64_t p = reports[i].dirty.NextSet(run.first); p < run.end(); p = reports[i].dirty.NextSet(p + 1)) {
        pages.push_back(p);
      }
    });
    for (size_t first = 0; first < pages.size(); first += format::kMaxBlobs) {
      GMEM_RETURN_IF_ERROR(CheckCancel());
      size_t count = std::min<size_t>(format::kMaxBlobs, pages.size() - first);
      GMEM_ASSIGN_OR_RETURN(format::PrivateRecord record,
                            exporter_->Export(r.region.id, std::span<const uint64_t>(pages).subspan(first, count)));
      // Pages converted back to shared meanwhile are left out: the tracker sees the conversion.
      if (record.blobs.empty()) continue;
      record.generation = pass;
      stats.private_pages += record.blobs.size();
      GMEM_RETURN_IF_ERROR(pool_->writer(0).WritePrivate(record));
      std::vector<uint64_t> sent;
      sent.reserve(record.blobs.size());
      for (const format::PrivateBlob& blob : record.blobs) sent.push_back(blob.page);
      GMEM_RETURN_IF_ERROR(r.tracker->MarkSent(sent));
    }
  }
  return Status::Ok();
}

Status MigrationSource::FinishAgentExport() {
  GMEM_ASSIGN_OR_RETURN(agent::FinishResult finish, agent_.client->Finish());
  format::StateRecord record;
  record.entries.push_back({kAgentFinishEntry, std::move(finish.manifest)});
  return pool_->writer(0).WriteState(record);
}

Expected<std::vector<memory::DirtyReport>> MigrationSource::BeginPass(bool final) {
  std::vector<std::vector<uint64_t>> logs;
  if (mode_ == DirtyMode::kKvmDirtyLog) {
    GMEM_ASSIGN_OR_RETURN(logs, vmm_->DirtyLog(layout_));
  }
  if (fence_ != nullptr) {
    GMEM_ASSIGN_OR_RETURN(uint64_t conversions, fence_->Conversions());
    sender_->set_attributes_conversions(conversions);
  }
  Clock::time_point asked = Clock::now();
  GMEM_ASSIGN_OR_RETURN(auto attrs, vmm_->GetAttributes(layout_));
  // A round trip to the VMM: the switchover is made of such (ConvergencePolicy::EstimateMs).
  policy_.RecordRoundTrip(MicrosSince(asked));
  if (exporter_ != nullptr) GMEM_RETURN_IF_ERROR(ReportAgentDirty(attrs));
  std::vector<memory::DirtyReport> reports;
  for (size_t i = 0; i < regions_.size(); ++i) {
    SourceRegion& r = regions_[i];
    if (attrs[i].map.CountPrivate() != 0 && exporter_ == nullptr) {
      return Unsupported("the guest has private pages in region " + std::to_string(r.region.id) +
                         " and no provisioned agent to export them");
    }
    if (r.log != nullptr) GMEM_RETURN_IF_ERROR(r.log->Add(logs[i]));
    if (final && r.region.gpa_base < kBootAreaBytes) {
      uint64_t boot_pages = std::min(r.region.npages(), (kBootAreaBytes - r.region.gpa_base) / memory::kPageSize);
      GMEM_RETURN_IF_ERROR(r.tracker->NoteHostChange({0, boot_pages}));
    }
    GMEM_ASSIGN_OR_RETURN(memory::DirtyReport report, r.tracker->BeginPass(attrs[i].map));
    reports.push_back(std::move(report));
  }
  return reports;
}

Status MigrationSource::RunPass(uint32_t pass, bool final, bool& stopped) {
  Clock::time_point start = Clock::now();
  uint64_t wire_before = pool_->wire_bytes();
  GMEM_ASSIGN_OR_RETURN(auto reports, BeginPass(final));
  uint64_t fixed_us = MicrosSince(start);
  PassStats stats;
  stats.pass = pass;
  stats.final = final;
  uint64_t dirty_windows = 0;
  for (const memory::DirtyReport& report : reports) {
    stats.dirty_pages += report.count();
    dirty_windows += CountWindows(report.dirty);
  }
  uint64_t dirty_bytes = stats.dirty_pages * memory::kPageSize;
  if (!final) {
    // The final pass repeats this fixed part with the guest paused: it belongs to the downtime.
    policy_.RecordFixedCost(fixed_us);
    StopReason reason = policy_.Decide(pass, dirty_bytes, dirty_windows);
    stats.estimated_downtime_ms = policy_.EstimateMs(dirty_bytes, dirty_windows);
    if (reason != StopReason::kContinue) {
      stats_.stop_reason = std::string(StopReasonName(reason));
      stats_.pass_limit_hit = reason == StopReason::kPassLimit;
      stats_.estimated_downtime_ms = policy_.EstimateMs(dirty_bytes, dirty_windows);
      if (options_.events != nullptr) {
        options_.events->OnSwitchover(stats.dirty_pages, stats_.estimated_downtime_ms, stats_.stop_reason);
      }
      stopped = true;
      return Status::Ok();
    }
  }
  Clock::time_point send_start = Clock::now();
  sender_->StartPass();
  // Pass 1 skips zero pages (the target's memory starts zeroed) — unless the stream is an
  // increment: then the target starts from the parent's memory, and pass 1 sends what differs.
  bool increment = pass == 1 && options_.base != nullptr;
  for (size_t i = 0; i < regions_.size(); ++i) {
    GMEM_RETURN_IF_ERROR(sender_->Send(regions_[i], reports[i].dirty, pass, /*skip_zero=*/pass == 1 && !increment,
                                       stats.dirty_pages, stats, increment ? &options_.base->hashes[i] : nullptr, i,
                                       page_hashes_.empty() ? nullptr : &page_hashes_[i]));
  }
  GMEM_RETURN_IF_ERROR(pool_->Drain(options_.cancel));
  if (exporter_ != nullptr) {
    // The attributes as of this pass (the target applies the newest), then the private pages.
    for (const SourceRegion& r : regions_) {
      GMEM_RETURN_IF_ERROR(WriteAttrsOf(pool_->writer(0), r, pass));
    }
    GMEM_RETURN_IF_ERROR(SendPrivatePages(pass, reports, stats));
  }
  stats.elapsed_us = MicrosSince(start);
  stats.wire_bytes = pool_->wire_bytes() - wire_before;
  format::PassRecord record;
  record.pass = pass;
  record.flags = final ? format::kPassFlagFinal : 0;
  record.data_pages = stats.data_pages;
  record.zero_pages = stats.zero_pages;
  record.wire_bytes = stats.wire_bytes;
  record.dirty_pages = stats.dirty_pages;
  record.elapsed_us = stats.elapsed_us;
  GMEM_RETURN_IF_ERROR(pool_->writer(0).WritePass(record));
  pool_->SyncWireBytes();
  // Page contents only: pass 1 skips zero pages almost for free, and counting them would make the
  // final pass (the guest's writes: pages with contents) look cheaper than it is.
  policy_.RecordWindows(stats.windows, stats.window_us);
  policy_.RecordPass((stats.data_pages + stats.private_pages) * memory::kPageSize,
                     MicrosSince(send_start) - stats.window_us);
  stats_.data_pages += stats.data_pages;
  stats_.zero_pages += stats.zero_pages;
  stats_.unchanged_pages += stats.unchanged_pages;
  stats_.private_pages += stats.private_pages;
  stats_.raw_bytes += stats.raw_bytes;
  stats_.passes.push_back(stats);
  if (options_.events != nullptr) options_.events->OnPass(stats);
  return Status::Ok();
}

Status MigrationSource::Precopy() {
  for (uint32_t pass = 1;; ++pass) {
    GMEM_RETURN_IF_ERROR(CheckCancel());
    bool stopped = false;
    GMEM_RETURN_IF_ERROR(RunPass(pass, /*final=*/false, stopped).WithContext("pass " + std::to_string(pass)));
    if (stopped) {
      passes_ = pass;
      return Status::Ok();
    }
  }
}

Status MigrationSource::StopAndCopy() {
  GMEM_RETURN_IF_ERROR(CheckCancel());
  GMEM_RETURN_IF_ERROR(vmm_->Pause());
  paused_ = was_running_;  // a VM that was paused before we came stays paused on failure
  paused_at_ = Clock::now();
  bool stopped = false;
  GMEM_RETURN_IF_ERROR(RunPass(passes_, /*final=*/true, stopped).WithContext("final pass"));
  if (exporter_ != nullptr) GMEM_RETURN_IF_ERROR(FinishAgentExport().WithContext("agent manifest"));
  if (!page_hashes_.empty()) {
    // The table a later incremental save compares against: the hash of every page as it last
    // went out (every shared page went out in pass 1, sent or skipped as zero), and none for the
    // pages that are private now: they left through the agent and are never read.
    for (size_t i = 0; i < regions_.size(); ++i) {
      std::vector<memory::PageHash>& hashes = page_hashes_[i];
      regions_[i].tracker->attributes().ForEachRun([&](const memory::AttrRun& run) {
        if (run.attr != memory::PageAttr::kShared) std::fill_n(hashes.begin() + run.first, run.count, memory::PageHash{});
      });
      for (const format::StateRecord& record : EncodePageHashes(regions_[i].region.id, hashes)) {
        GMEM_RETURN_IF_ERROR(pool_->writer(0).WriteState(record));
      }
    }
  }
  GMEM_ASSIGN_OR_RETURN(std::string state, vmm_->GetState());
  format::StateRecord record;
  record.entries.push_back({"vmm-state", ToBytes(state)});
  if (!endpoints_[0].interactive) {
    // No switchover follows: the digest travels in the stream. Over a socket it follows END, so
    // that hashing all of memory here overlaps with the target rebuilding (less downtime).
    GMEM_ASSIGN_OR_RETURN(stats_.source_digest, vmm_->Digest());
    record.entries.push_back({"vmm-digest", ToBytes(stats_.source_digest.digest + ":" + stats_.source_digest.checksum)});
  } else if (options_.verify_memory) {
    // Tells the target to hash its rebuilt memory while this side hashes the original.
    record.entries.push_back({kMemoryCheckEntry, ToBytes(kMemoryCheckDigest)});
  }
  GMEM_RETURN_IF_ERROR(pool_->writer(0).WriteState(record));
  for (size_t ch = 0; ch < pool_->channels(); ++ch) {
    GMEM_RETURN_IF_ERROR(pool_->writer(ch).Finish().status().WithContext("channel " + std::to_string(ch)));
    GMEM_RETURN_IF_ERROR(endpoints_[ch].Flush().WithContext("channel " + std::to_string(ch)));
  }
  pool_->SyncWireBytes();
  return CheckCancel();
}

Status MigrationSource::Switchover() {
  if (!endpoints_[0].interactive) {
    // No peer can answer: the stream is complete, the source stays paused (a snapshot's source).
    stats_.downtime_ms = MicrosSince(paused_at_) / 1000;
    return Status::Ok();
  }
  SwitchoverLink link(*endpoints_[0].channel, *endpoints_[0].channel, key_.key, session_);
  if (options_.verify_memory) {
    GMEM_ASSIGN_OR_RETURN(stats_.source_digest, vmm_->Digest());
    GMEM_RETURN_IF_ERROR(
        link.Send({SwitchoverType::kDigest, stats_.source_digest.digest + ":" + stats_.source_digest.checksum}));
  }
  if (Status waited = WaitReadable(endpoints_[0].channel->fd(), options_.cancel); !waited.ok()) {
    // Cancelled (or poll failed) before READY: the target discards its copy, the source resumes.
    link.Send({SwitchoverType::kAbort, "the source was cancelled"}).IgnoreError();
    return waited.WithContext("waiting for the target's READY");
  }
  GMEM_RETURN_IF_ERROR(link.Expect(SwitchoverType::kReady).WithContext("waiting for the target's READY"));
  if (Status cancelled = CheckCancel(); !cancelled.ok()) {
    // Not committed yet: tell the target to discard its copy; the source resumes (Recover).
    link.Send({SwitchoverType::kAbort, "the source was cancelled"}).IgnoreError();
    return cancelled;
  }
  // From here on the source never resumes: the target may run as soon as it reads COMMIT.
  committed_ = true;
  Status st = link.Send({SwitchoverType::kCommit, ""});
  if (st.ok()) st = link.Expect(SwitchoverType::kResumed);
  if (!st.ok()) {
    return Status(Code::kPeerAborted,
                  "in doubt: the target was READY but did not confirm COMMIT (" + st.ToString() +
                      "); the source VM stays paused: run 'gmem-migrate resolve' to resume exactly one of the two VMs "
                      "and discard the other");
  }
  stats_.downtime_ms = MicrosSince(paused_at_) / 1000;
  stats_.acknowledged = true;
  return vmm_->Quit().WithContext("the target runs; telling the source VMM to quit");
}

void MigrationSource::Recover() {
  if (!paused_ || committed_ || vmm_ == nullptr) return;
  vmm_->Resume().IgnoreError();  // best effort: the error that brought us here is what to report
  paused_ = false;
}

Expected<MigrationStats> MigrationSource::Run() {
  start_ = Clock::now();
  Status st = Attach().WithContext("attach to the source VMM");
  if (st.ok()) st = Connect().WithContext("connect to the target");
  if (st.ok() && options_.events != nullptr) {
    uint64_t total = 0;
    for (const SourceRegion& r : regions_) total += r.region.npages();
    options_.events->OnStart(total);
  }
  if (st.ok()) st = Precopy();
  if (st.ok()) st = StopAndCopy();
  if (st.ok()) st = Switchover();
  if (!st.ok()) {
    Recover();
    // Wakes the channel threads a peer that stopped reading left blocked in a write, so that the
    // pool can stop (the target sees the connection end and discards its copy).
    for (const Endpoint& e : endpoints_) {
      if (e.channel != nullptr) ::shutdown(e.channel->fd(), SHUT_RDWR);
    }
    return st;
  }
  stats_.wire_bytes = pool_->wire_bytes();
  stats_.pages_records = pool_->pages_records();
  stats_.zstd_records = pool_->zstd_records();
  if (agent_.client != nullptr) {
    stats_.agent_round_trips = agent_.client->stats().round_trips;
    stats_.agent_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(agent_.client->stats().agent_time).count());
  }
  stats_.total_ms = MicrosSince(start_) / 1000;
  return stats_;
}

}  // namespace gmem::migrate
