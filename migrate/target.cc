#include "migrate/target.h"

#include <emmintrin.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "format/keys.h"
#include "migrate/page_decode_pool.h"
#include "migrate/source_region.h"
#include "migrate/switchover.h"

namespace gmem::migrate {

namespace {

std::string ToString(const Bytes& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// Copies one page into guest memory with non-temporal stores: the target writes each page once
// and never reads it, so fetching the destination's cache lines first (what a plain copy does)
// only doubles the memory traffic. REQUIRES: dst page-aligned. Ordered by the sfence in OnPages.
void CopyPageStreaming(std::byte* dst, const std::byte* src) {
  auto* out = reinterpret_cast<__m128i*>(dst);
  const auto* in = reinterpret_cast<const __m128i*>(src);
  for (size_t i = 0; i < memory::kPageSize / sizeof(__m128i); i += 4) {
    __m128i a = _mm_loadu_si128(in + i);
    __m128i b = _mm_loadu_si128(in + i + 1);
    __m128i c = _mm_loadu_si128(in + i + 2);
    __m128i d = _mm_loadu_si128(in + i + 3);
    _mm_stream_si128(out + i, a);
    _mm_stream_si128(out + i + 1, b);
    _mm_stream_si128(out + i + 2, c);
    _mm_stream_si128(out + i + 3, d);
  }
}


Expected<VmmDigest> ParseDigest(const std::string& text) {
  size_t colon = text.find(':');
  if (colon == std::string::npos) return CorruptError("malformed source digest");
  return VmmDigest{text.substr(0, colon), text.substr(colon + 1)};
}

}  // namespace

MigrationTarget::MigrationTarget(TargetOptions options, MigrationKey key)
    : options_(std::move(options)), key_(std::move(key)) {}

MigrationTarget::~MigrationTarget() = default;

size_t MigrationTarget::RegionIndex(uint32_t region_id) const {
  for (size_t i = 0; i < layout_.regions.size(); ++i) {
    if (layout_.regions[i].id == region_id) return i;
  }
  return layout_.regions.size();
}

Status MigrationTarget::AttachVmm() {
  GMEM_ASSIGN_OR_RETURN(vmm_, AttachVmmControl(options_.vmm, options_.vmm_socket, options_.vmm_connect_timeout_ms,
                                               own_vmm_));
  GMEM_ASSIGN_OR_RETURN(std::string state, vmm_->State());
  if (state != "incoming" && options_.vmm != nullptr) {  // an embedding VMM (the C API)
    return InvalidArgument("the target VM is " + state + ", not incoming: restore and receive need fresh memory");
  }
  if (state != "incoming") {
    return InvalidArgument("the target VMM at '" + options_.vmm_socket + "' is " + state +
                           ", not incoming (start one with gmem-vmm run --incoming)");
  }
  incoming_ = true;  // from here on, a failure discards this VMM's copy
  return Status::Ok();
}

Status MigrationTarget::Accept(const std::string& uri_text, bool last) {
  GMEM_ASSIGN_OR_RETURN(transport::Uri uri, transport::ParseUri(uri_text));
  if (!last && uri.kind != transport::Uri::Kind::kFile && uri.kind != transport::Uri::Kind::kFd) {
    return InvalidArgument("a parent image is a file: or fd: stream");
  }
  GMEM_ASSIGN_OR_RETURN(TargetChannels channels,
                        AcceptTargetChannels(uri, options_.accept_timeout_ms, key_.key, key_.insecure));
  endpoints_ = std::move(channels.endpoints);
  session_ = channels.session;
  if (last && !options_.stream_name.empty()) endpoints_[0].channel->set_name(options_.stream_name);
  reader_options_.allow_insecure = key_.insecure;
  reader_options_.expect_eof_after_end = !endpoints_[0].interactive;
  // A single channel has one reader: it leaves zstd batches to a PageDecodePool (Receive).
  reader_options_.defer_zstd = endpoints_.size() == 1;
  GMEM_ASSIGN_OR_RETURN(format::ImageReader reader,
                        format::ImageReader::Open(endpoints_[0].source(), StreamKeySource(key_), reader_options_));
  if (endpoints_[0].interactive && reader.header().stream_id != session_) {
    return AuthError("the stream does not belong to this session (a replayed or spliced stream)");
  }
  if (reader.header().channel_count != endpoints_.size()) {
    return ProtocolError("the stream has " + std::to_string(reader.header().channel_count) + " channels, the session " +
                         std::to_string(endpoints_.size()));
  }
  // An incremental image applies on top of its parent only: the chain is checked link by link.
  const format::ImageHeader& header = reader.header();
  if (images_ == 0 && header.has_parent()) {
    return Status(Code::kIncompatible, "the image is an increment of parent " + ToHex(header.parent_stream_id) +
                                           ": restore it together with its parent chain");
  }
  if (images_ > 0 && (!header.has_parent() || header.parent_stream_id != previous_stream_id_ ||
                      header.parent_digest != previous_end_digest_)) {
    return CorruptError("the image is not the increment of the one before it in the chain (stream " +
                        ToHex(previous_stream_id_) + ")");
  }
  previous_stream_id_ = header.stream_id;
  if (images_ > 0) {
    // Each image orders its own passes from 1: the newest image wins as a whole. Each image was
    // sealed in its own agent session.
    for (PageVersions& v : versions_) v.Reset();
    std::fill(attrs_generation_.begin(), attrs_generation_.end(), 0);
    importer_.reset();
    seal_descriptor_.reset();
    finish_manifest_.reset();
  }
  reader_.emplace(std::move(reader));
  result_.channels = static_cast<uint16_t>(endpoints_.size());
  return Status::Ok();
}

Status MigrationTarget::OnLayout(const format::LayoutRecord& layout) {
  if (images_ > 0) {
    if (!(layout == layout_)) return CorruptError("the increment's memory layout differs from its parent's");
    return Status::Ok();
  }
  layout_ = layout;
  std::vector<UniqueFd> fds;
  GMEM_RETURN_IF_ERROR(vmm_->PrepareIncoming(layout_, fds));
  GMEM_ASSIGN_OR_RETURN(mappings_, MapRegions(layout_, fds));
  for (const format::Region& r : layout_.regions) {
    attrs_.emplace_back(r.npages(), memory::PageAttr::kShared);
    attrs_generation_.push_back(0);
    versions_.emplace_back(r.npages());
  }
  return Status::Ok();
}

Status MigrationTarget::OnAttrs(const format::AttrsRecord& record) {
  size_t i = RegionIndex(record.region_id);
  if (i == layout_.regions.size()) return ProtocolError("ATTRS for an unknown region");
  if (record.generation < attrs_generation_[i]) return Status::Ok();
  // A record may cover part of the region (a fragmented map takes several): the pages it does
  // not cover keep their attribute (FORMAT.md §5.2). The reader checked the runs.
  for (const format::AttrRun& run : record.runs) {
    GMEM_RETURN_IF_ERROR(attrs_[i].SetRange(run.first_page, run.npages, static_cast<memory::PageAttr>(run.attr)));
  }
  attrs_generation_[i] = record.generation;
  return Status::Ok();
}

Status MigrationTarget::OnPages(const format::PagesRecord& record) {
  size_t i = RegionIndex(record.region_id);
  if (i == layout_.regions.size()) return ProtocolError("PAGES for an unknown region");
  const memory::GuestMemfdMapping& mapping = mappings_[i];
  uint64_t first_gmem_page = layout_.regions[i].gmem_offset / memory::kPageSize;
  PageVersions& versions = versions_[i];
  const std::byte* data = record.data.data();
  for (const format::PageRun& run : record.runs) {
    if (run.kind == format::RunKind::kData) {
      // One call maps the run's pages for writing instead of a fault per page; best effort.
      mapping.PopulateWrite(first_gmem_page + run.first_page, run.npages).IgnoreError();
    }
    uint64_t end = run.first_page + run.npages;
    for (uint64_t p = run.first_page; p < end;) {
      // Pages are applied under the lock of their stripe, so that two channels carrying the same
      // page (different passes) cannot interleave the generation check and the copy.
      uint64_t stripe_end = std::min(end, (p / kStripePages + 1) * kStripePages);
      std::lock_guard<std::mutex> lock(PageLock(i, p));
      for (; p < stripe_end; ++p) {
        // The agent area belongs to this VM's agent while it imports: never overwrite its mailbox.
        bool agent_area = agent_area_reserved_ && InAgentArea(layout_.regions[i], p);
        if (!agent_area && versions.Claim(p, record.generation, /*is_private=*/false)) {
          // SAFETY: the reader checked the run against the region (§5.3), so p < npages, and every
          // page of an incoming VM is shared in the toolkit's mapping until attributes are applied.
          std::byte* dst = mapping.PageAddress(first_gmem_page + p);
          if (run.kind == format::RunKind::kData) {
            CopyPageStreaming(dst, data);
          } else {
            std::memset(dst, 0, memory::kPageSize);
          }
        }
        if (run.kind == format::RunKind::kData) data += memory::kPageSize;
      }
    }
  }
  _mm_sfence();  // the streaming stores above are visible before anyone learns the batch is applied
  // Written: drop the record's pages from this process's page tables (they stay in the guest_memfd),
  // so that receiving a whole guest does not map all of it.
  if (!record.runs.empty()) {
    const format::PageRun& last = record.runs.back();
    release_.Add(mapping, first_gmem_page + record.runs.front().first_page,
                 last.first_page + last.npages - record.runs.front().first_page);
  }
  std::lock_guard<std::mutex> lock(apply_mu_);
  result_.data_pages += record.data_pages;
  result_.zero_pages += record.zero_pages;
  return Status::Ok();
}

Status MigrationTarget::ConnectOwnAgent() {
  if (agent_.client != nullptr) return Status::Ok();  // an earlier image of the chain connected
  std::vector<const memory::GuestMemfdMapping*> mappings;
  for (const memory::GuestMemfdMapping& m : mappings_) mappings.push_back(&m);
  GMEM_ASSIGN_OR_RETURN(agent_, ConnectAgent(*vmm_, layout_, mappings));
  return Status::Ok();
}

Status MigrationTarget::AgreeAgentKey(const Bytes& source_share) {
  if (importer_ != nullptr || seal_descriptor_.has_value()) return ProtocolError("a second agent session in one stream");
  if (!endpoints_[0].interactive) return Unsupported("a file stream with a live agent session");
  agent_area_reserved_ = true;
  GMEM_RETURN_IF_ERROR(ConnectOwnAgent());
  GMEM_ASSIGN_OR_RETURN(agent::HelloResponse hello, agent_.client->Hello(agent::Role::kImport, agent::Mode::kTransport,
                                                                         AgentSessionId(session_), source_share));
  SwitchoverLink link(*endpoints_[0].channel, *endpoints_[0].channel, key_.key, session_);
  GMEM_RETURN_IF_ERROR(link.Send({SwitchoverType::kAgentShare, EncodeAgentShare(hello.share, hello.key_id)}));
  importer_ = std::make_unique<agent::AgentImporter>(*agent_.client, layout_, hello.epoch);
  return Status::Ok();
}

Status MigrationTarget::OnSealDescriptor(const Bytes& descriptor) {
  if (importer_ != nullptr || seal_descriptor_.has_value()) return ProtocolError("a second agent session in one stream");
  if (descriptor.size() != agent::kShareBytes) return CorruptError("malformed agent-seal descriptor");
  agent_area_reserved_ = true;
  seal_descriptor_ = descriptor;
  // The stream id is authenticated by every record's tag: a descriptor spliced in from another
  // image names another session, and the agent refuses it.
  seal_session_ = AgentSessionId(reader_->header().stream_id);
  return Status::Ok();
}

Status MigrationTarget::OpenSealedImport() {
  GMEM_RETURN_IF_ERROR(ConnectOwnAgent());
  auto hello = agent_.client->Hello(agent::Role::kImport, agent::Mode::kSealed, seal_session_, *seal_descriptor_);
  if (!hello.ok()) return hello.status().WithContext("this VM's agent cannot open the image's private pages");
  importer_ = std::make_unique<agent::AgentImporter>(*agent_.client, layout_, hello->epoch);
  seal_descriptor_.reset();
  return Status::Ok();
}

Status MigrationTarget::CheckAgentManifest() {
  if (importer_ == nullptr) return Status::Ok();  // no private page came, and none is private
  if (!finish_manifest_.has_value()) {
    return CorruptError("the stream carries private pages but not the source agent's manifest (agent-finish)");
  }
  auto checked = agent_.client->FinishImport(*finish_manifest_);
  if (!checked.ok()) return checked.status().WithContext("this VM's agent refused the source agent's manifest");
  return Status::Ok();
}

Status MigrationTarget::OnPrivate(const format::PrivateRecord& record) {
  if (importer_ == nullptr && seal_descriptor_.has_value()) GMEM_RETURN_IF_ERROR(OpenSealedImport());
  if (importer_ == nullptr) return Unsupported("the stream carries private pages but no agent session");
  size_t i = RegionIndex(record.region_id);
  if (i == layout_.regions.size()) return ProtocolError("PRIVATE for an unknown region");
  // The newest generation of a page wins, as for PAGES: drop blobs of pages sent again since.
  PageVersions& versions = versions_[i];
  format::PrivateRecord newest = record;
  newest.blobs.clear();
  for (const format::PrivateBlob& blob : record.blobs) {
    std::lock_guard<std::mutex> lock(PageLock(i, blob.page));
    if (!versions.Claim(blob.page, record.generation, /*is_private=*/true)) continue;
    newest.blobs.push_back(blob);
  }
  if (newest.blobs.empty()) return Status::Ok();
  // The agent opens every blob (a forged, replayed or misplaced one fails the migration) and
  // writes the pages in place, private.
  GMEM_RETURN_IF_ERROR(importer_->Import(newest));
  result_.private_pages += newest.blobs.size();
  return Status::Ok();
}

Status MigrationTarget::OnState(const format::StateRecord& record) {
  for (const format::StateEntry& entry : record.entries) {
    if (entry.name == "vmm-state") state_ = ToString(entry.blob);
    if (entry.name == kAgentShareEntry) GMEM_RETURN_IF_ERROR(AgreeAgentKey(entry.blob));
    if (entry.name == kAgentSealEntry) GMEM_RETURN_IF_ERROR(OnSealDescriptor(entry.blob));
    if (entry.name == kAgentFinishEntry) {
      if (finish_manifest_.has_value()) return ProtocolError("a second agent manifest in one stream");
      finish_manifest_ = entry.blob;
    }
    if (entry.name == kMemoryCheckEntry) {
      if (ToString(entry.blob) != kMemoryCheckDigest) return CorruptError("unknown memory check '" + ToString(entry.blob) + "'");
      memory_check_ = true;
    }
    if (entry.name == "vmm-digest") {
      GMEM_ASSIGN_OR_RETURN(source_digest_, ParseDigest(ToString(entry.blob)));
    }
  }
  return Status::Ok();
}

Status MigrationTarget::Dispatch(const format::Record& record) {
  if (options_.cancel != nullptr && options_.cancel->load()) return Status(Code::kCancelled, "cancelled");
  Status st;
  if (auto* pages = std::get_if<format::PagesRecord>(&record.body)) {
    st = OnPages(*pages);  // locks per page stripe: channels copy pages in parallel
  } else {
    std::lock_guard<std::mutex> lock(apply_mu_);
    if (auto* attrs = std::get_if<format::AttrsRecord>(&record.body)) st = OnAttrs(*attrs);
    else if (auto* state = std::get_if<format::StateRecord>(&record.body)) st = OnState(*state);
    else if (auto* blobs = std::get_if<format::PrivateRecord>(&record.body)) st = OnPrivate(*blobs);
  }
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    ++result_.records;
  }
  if (options_.records_seen != nullptr) options_.records_seen->fetch_add(1);
  return st.WithContext("record " + std::to_string(record.index));
}

void MigrationTarget::ShutdownChannels() {
  for (const Endpoint& e : endpoints_) ::shutdown(e.channel->fd(), SHUT_RDWR);
}

Status MigrationTarget::ReceiveChannel(size_t channel) {
  format::ReaderOptions options = reader_options_;
  options.channel = static_cast<uint16_t>(channel);
  GMEM_ASSIGN_OR_RETURN(format::ImageReader reader,
                        format::ImageReader::OpenChannel(endpoints_[channel].source(), reader_->keys(), layout_, options));
  for (;;) {
    GMEM_ASSIGN_OR_RETURN(const format::Record* record, reader.Next());
    if (std::holds_alternative<format::EndRecord>(record->body)) {
      std::lock_guard<std::mutex> lock(apply_mu_);
      result_.wire_bytes += reader.offset();
      return Status::Ok();
    }
    GMEM_RETURN_IF_ERROR(Dispatch(*record));
  }
}

Status MigrationTarget::Receive() {
  // Channel 0 starts with LAYOUT (FORMAT.md grammar); the other channels need it to open.
  GMEM_ASSIGN_OR_RETURN(const format::Record* first, reader_->Next());
  const auto* layout = std::get_if<format::LayoutRecord>(&first->body);
  if (layout == nullptr) return ProtocolError("channel 0 does not start with LAYOUT");
  ++result_.records;
  GMEM_RETURN_IF_ERROR(OnLayout(*layout));
  // One channel: its zstd batches are decompressed and applied by two workers meanwhile.
  std::optional<PageDecodePool> decode_pool;
  if (reader_options_.defer_zstd) {
    decode_pool.emplace(2, [this](const format::PagesRecord& pages) { return OnPages(pages); });
  }
  std::vector<Status> statuses(endpoints_.size());
  std::vector<std::thread> threads;
  for (size_t ch = 1; ch < endpoints_.size(); ++ch) {
    threads.emplace_back([this, ch, &statuses] {
      statuses[ch] = ReceiveChannel(ch).WithContext("channel " + std::to_string(ch));
      if (!statuses[ch].ok()) ShutdownChannels();
    });
  }
  statuses[0] = [&]() -> Status {
    for (;;) {
      GMEM_ASSIGN_OR_RETURN(const format::Record* record, reader_->Next());
      if (const auto* end = std::get_if<format::EndRecord>(&record->body)) {
        if (decode_pool) GMEM_RETURN_IF_ERROR(decode_pool->Drain());
        std::lock_guard<std::mutex> lock(apply_mu_);
        result_.wire_bytes += reader_->offset();
        previous_end_digest_ = end->digest;
        return Status::Ok();
      }
      const auto* pages = std::get_if<format::PagesRecord>(&record->body);
      if (pages != nullptr && !pages->zstd_frame.empty()) {
        if (options_.cancel != nullptr && options_.cancel->load()) return Status(Code::kCancelled, "cancelled");
        // The pool takes the reader's buffer (the frame is in it) and gives a spare back.
        auto exchange = [this](Bytes& spare) { reader_->ExchangeBuffer(spare); };
        GMEM_RETURN_IF_ERROR(
            decode_pool->Submit(*pages, exchange).WithContext("record " + std::to_string(record->index)));
        if (options_.records_seen != nullptr) options_.records_seen->fetch_add(1);
        std::lock_guard<std::mutex> lock(apply_mu_);
        ++result_.records;
        continue;
      }
      GMEM_RETURN_IF_ERROR(Dispatch(*record));
    }
  }();
  if (!statuses[0].ok()) ShutdownChannels();
  for (std::thread& t : threads) t.join();
  // The first failure in time is usually the cause; the others are its echo (shut down).
  for (const Status& st : statuses) {
    if (!st.ok() && st.code() != Code::kIo && st.code() != Code::kCorrupt) return st;
  }
  release_.Flush();
  for (const Status& st : statuses) GMEM_RETURN_IF_ERROR(st);
  ++images_;
  return Status::Ok();
}

Status MigrationTarget::Apply() {
  if (state_.empty()) return CorruptError("the stream has no VM state");
  if (!source_digest_.has_value() && !endpoints_[0].interactive) return CorruptError("the stream has no VM digest");
  bool any_private = std::any_of(attrs_.begin(), attrs_.end(), [](const auto& a) { return a.CountPrivate() != 0; });
  // Private pages but not one PRIVATE record: the agent still judges (its manifest lists them).
  if (any_private && importer_ == nullptr && seal_descriptor_.has_value()) GMEM_RETURN_IF_ERROR(OpenSealedImport());
  std::vector<RegionAttributes> regions;
  for (size_t i = 0; i < attrs_.size(); ++i) {
    if (attrs_[i].CountPrivate() != 0 && importer_ == nullptr) {
      return Unsupported("the stream marks private pages but carried no agent session to import them");
    }
    regions.push_back({layout_.regions[i].id, attrs_[i]});
  }
  GMEM_RETURN_IF_ERROR(vmm_->SetAttributes(regions));
  GMEM_RETURN_IF_ERROR(CheckAgentManifest());
  GMEM_RETURN_IF_ERROR(vmm_->SetState(state_));
  bool live = endpoints_[0].interactive;
  if (live && !memory_check_) {
    if (options_.require_memory_check) {
      return Status(Code::kIncompatible,
                    "the source does not offer the memory digest check this target requires (send --verify-memory)");
    }
    return Status::Ok();  // every record authenticated, END's totals and digest checked
  }
  GMEM_ASSIGN_OR_RETURN(result_.digest, vmm_->Digest());
  if (live) {
    SwitchoverLink link(*endpoints_[0].channel, *endpoints_[0].channel, key_.key, session_);
    GMEM_ASSIGN_OR_RETURN(SwitchoverMessage message, link.Receive());
    if (message.type == SwitchoverType::kAbort) return Status(Code::kPeerAborted, "the source aborted: " + message.reason);
    if (message.type != SwitchoverType::kDigest) {
      return ProtocolError("expected DIGEST, got " + std::string(SwitchoverTypeName(message.type)));
    }
    GMEM_ASSIGN_OR_RETURN(source_digest_, ParseDigest(message.reason));
  }
  if (!(result_.digest == *source_digest_)) {
    return CorruptError("the rebuilt VM's digest " + result_.digest.digest + "/" + result_.digest.checksum +
                        " differs from the source's " + source_digest_->digest + "/" + source_digest_->checksum);
  }
  return Status::Ok();
}

Status MigrationTarget::ResumeIfAsked() {
  if (!options_.resume) return Status::Ok();
  GMEM_RETURN_IF_ERROR(vmm_->Resume());
  result_.resumed = true;
  return Status::Ok();
}

Status MigrationTarget::Switchover() {
  if (options_.cancel != nullptr && options_.cancel->load()) return Status(Code::kCancelled, "cancelled");
  if (!endpoints_[0].interactive) return ResumeIfAsked();
  SwitchoverLink link(*endpoints_[0].channel, *endpoints_[0].channel, key_.key, session_);
  GMEM_RETURN_IF_ERROR(link.Send({SwitchoverType::kReady, ""}));
  ready_ = true;
  Expected<SwitchoverMessage> answer = link.Receive();
  if (answer.ok() && answer->type == SwitchoverType::kAbort) {
    // The source aborted before committing and runs on: discard this copy.
    ready_ = false;
    return Status(Code::kPeerAborted, "the source aborted: " + answer->reason);
  }
  Status st = answer.status();
  if (st.ok() && answer->type != SwitchoverType::kCommit) {
    st = ProtocolError("expected COMMIT, got " + std::string(SwitchoverTypeName(answer->type)));
  }
  if (!st.ok()) {
    return Status(Code::kPeerAborted, "in doubt: READY was sent but no COMMIT came (" + st.ToString() +
                                          "); the target VM stays paused: run 'gmem-migrate resolve' to resume "
                                          "exactly one of the two VMs and discard the other");
  }
  GMEM_RETURN_IF_ERROR(ResumeIfAsked());
  // The source has committed and quits regardless; a lost confirmation changes nothing here.
  link.Send({SwitchoverType::kResumed, ""}).IgnoreError();
  return Status::Ok();
}

Expected<TargetResult> MigrationTarget::Run() {
  Status st = AttachVmm();
  for (const std::string& parent : options_.parents) {
    if (st.ok()) st = Accept(parent, /*last=*/false).WithContext(parent);
    if (st.ok()) st = Receive().WithContext(parent + ": receive");
  }
  if (st.ok()) st = Accept(options_.from_uri, /*last=*/true);
  if (st.ok()) st = Receive().WithContext("receive");
  if (st.ok()) st = Apply().WithContext("rebuild");
  if (st.ok()) st = Switchover();
  if (st.ok()) {
    if (agent_.client != nullptr) {
      result_.agent_round_trips = agent_.client->stats().round_trips;
      result_.agent_ms = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(agent_.client->stats().agent_time).count());
    }
    return result_;
  }
  if (!ready_ && incoming_) {
    if (!endpoints_.empty() && endpoints_[0].interactive) {
      SwitchoverLink link(*endpoints_[0].channel, *endpoints_[0].channel, key_.key, session_);
      link.Send({SwitchoverType::kAbort, st.ToString()}).IgnoreError();
    }
    // Discard the incomplete copy: the target VM never ran and never will.
    vmm_->Quit().IgnoreError();
  }
  return st;
}

}  // namespace gmem::migrate
