#include "vmm/emulated_agent.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <string>
#include <vector>

#include "agent/key_agreement.h"
#include "agent/wire.h"
#include "base/xxh3.h"
#include "vmm/guest/guest_abi.h"
#include "vmm/guest_image.h"

namespace gmem::vmm {
namespace {

static_assert(agent::kAreaGpa == GMEM_GUEST_AGENT_GPA && agent::kAreaBytes == GMEM_GUEST_AGENT_BYTES,
              "the agent area of the guest ABI and of the agent protocol must agree");
static_assert(GMEM_GUEST_AGENT_GPA + GMEM_GUEST_AGENT_BYTES == GMEM_GUEST_DATA_GPA);
static_assert(GMEM_GUEST_RECORD_GPA + GMEM_GUEST_RECORD_BYTES == GMEM_GUEST_AGENT_GPA);
static_assert((GMEM_GUEST_MAX_MEM_BYTES - GMEM_GUEST_DATA_GPA) / GMEM_GUEST_PAGE / 8 <= GMEM_GUEST_RECORD_BYTES,
              "the private-page record must hold one bit per data page");
static_assert(agent::kPageBytes == GMEM_GUEST_PAGE);

using Fingerprint = std::pair<uint64_t, uint64_t>;

Fingerprint FingerprintOf(const std::byte* page) {
  XXH128_hash_t h = XXH3_128bits(page, GMEM_GUEST_PAGE);
  return {h.low64, h.high64};
}

// The agent's view of the emulated platform: private pages through the VMM's mapping (the
// guest's own view, never protected) and the emulated CoCo's table.
class EmulatedPlatform final : public agent::GuestPlatform {
 public:
  EmulatedPlatform(const GuestMemory& memory, EmulatedCoco& coco, AgentDirtyMode dirty,
                   std::unordered_map<uint64_t, Fingerprint>& exported)
      : memory_(memory), coco_(coco), dirty_(dirty), exported_(exported) {}

  uint64_t gfn_limit() const override { return memory_.total_bytes() / GMEM_GUEST_PAGE; }

  bool IsPrivate(uint64_t gfn) const override {
    auto attr = coco_.AttributeAt(gfn * GMEM_GUEST_PAGE);
    return attr.has_value() && *attr == memory::PageAttr::kPrivate;
  }

  Status ReadPrivatePage(uint64_t gfn, MutableByteSpan out) override {
    const std::byte* page = memory_.HostAddress(gfn * GMEM_GUEST_PAGE, GMEM_GUEST_PAGE);
    if (page == nullptr || out.size() != GMEM_GUEST_PAGE) return InvalidArgument("no such guest page");
    // SAFETY: HostAddress returned a whole page inside a region's mapping.
    std::memcpy(out.data(), page, GMEM_GUEST_PAGE);
    return Status::Ok();
  }

  Status WritePrivatePage(uint64_t gfn, ByteSpan in) override {
    std::byte* page = memory_.HostAddress(gfn * GMEM_GUEST_PAGE, GMEM_GUEST_PAGE);
    if (page == nullptr || in.size() != GMEM_GUEST_PAGE) return InvalidArgument("no such guest page");
    // Private first, then the contents (on SNP: RMPUPDATE + PVALIDATE, then the write).
    GMEM_RETURN_IF_ERROR(coco_.AcceptPrivate(gfn * GMEM_GUEST_PAGE, 1));
    // SAFETY: HostAddress returned a whole page inside a region's mapping.
    std::memcpy(page, in.data(), GMEM_GUEST_PAGE);
    return Status::Ok();
  }

  bool tracks_private_writes() const override { return dirty_ == AgentDirtyMode::kHash; }
  void ResetExportBaseline() override { exported_.clear(); }
  void NoteExported(uint64_t gfn, ByteSpan page) override { exported_[gfn] = FingerprintOf(page.data()); }

  Expected<uint64_t> CollectDirty(uint64_t cursor, uint32_t max, std::vector<uint64_t>& out) override {
    // The private gfns from `cursor` on, ascending.
    std::vector<uint64_t> candidates;
    std::vector<memory::AttributeMap> maps = coco_.Snapshot();
    const auto& regions = memory_.layout().regions();
    for (size_t i = 0; i < regions.size() && i < maps.size(); ++i) {
      const uint64_t base = regions[i].gpa_base / GMEM_GUEST_PAGE;
      maps[i].ForEachRun([&](const memory::AttrRun& run) {
        if (run.attr != memory::PageAttr::kPrivate) return;
        for (uint64_t gfn = std::max(base + run.first, cursor); gfn < base + run.end(); ++gfn) candidates.push_back(gfn);
      });
    }
    // Fingerprinting every private page is the cost of this answer (the guest is often paused
    // meanwhile): chunks are hashed on two threads, and the scan stops at the chunk that fills `max`.
    constexpr size_t kChunk = 8192;
    std::vector<uint8_t> dirty(std::min(candidates.size(), kChunk));
    for (size_t first = 0; first < candidates.size(); first += kChunk) {
      const size_t count = std::min(kChunk, candidates.size() - first);
      auto scan = [&](size_t begin, size_t end) {
        for (size_t k = begin; k < end; ++k) {
          const uint64_t gfn = candidates[first + k];
          const std::byte* page = memory_.HostAddress(gfn * GMEM_GUEST_PAGE, GMEM_GUEST_PAGE);
          auto it = exported_.find(gfn);
          dirty[k] = page != nullptr && (it == exported_.end() || it->second != FingerprintOf(page));
        }
      };
      std::thread helper(scan, count / 2, count);
      scan(0, count / 2);
      helper.join();
      for (size_t k = 0; k < count; ++k) {
        if (!dirty[k]) continue;
        if (out.size() >= max) return candidates[first + k];
        out.push_back(candidates[first + k]);
      }
    }
    return gfn_limit();
  }

 private:
  const GuestMemory& memory_;
  EmulatedCoco& coco_;
  AgentDirtyMode dirty_;
  std::unordered_map<uint64_t, Fingerprint>& exported_;
};

}  // namespace

agent::Measurement EmulatedMeasurement(std::string_view guest_id) {
  std::byte abi[4];
  StoreLe<uint32_t>(abi, GMEM_GUEST_ABI_VERSION);
  return agent::MeasurementOf("gmemkit-emulated-measurement-v1", {ByteSpan(abi, 4), GuestImage(), AsBytes(guest_id)});
}

EmulatedAgent::EmulatedAgent(std::shared_ptr<const agent::PlatformKey> platform_key, std::string_view guest_id,
                             AgentDirtyMode dirty)
    : provisioned_(platform_key != nullptr), dirty_(dirty) {
  agent_ = std::make_unique<agent::Agent>(std::move(platform_key), EmulatedMeasurement(guest_id));
}

Status EmulatedAgent::Ring(const GuestMemory& memory, EmulatedCoco& coco) {
  if (coco.mode() == CocoMode::kNone) {
    return Unsupported("no guest agent: the VM has no private memory (--coco none)");
  }
  std::byte* area = memory.HostAddress(agent::kAreaGpa, agent::kAreaBytes);
  if (area == nullptr) return InvalidArgument("the agent area (GPA 0x140000..0x200000) is not in one region of RAM");
  for (uint64_t off = 0; off < agent::kAreaBytes; off += GMEM_GUEST_PAGE) {
    auto attr = coco.AttributeAt(agent::kAreaGpa + off);
    if (!attr.has_value() || *attr != memory::PageAttr::kShared) {
      return InvalidArgument("the agent area is not shared (the guest converted page " +
                             std::to_string((agent::kAreaGpa + off) / GMEM_GUEST_PAGE) + "): the agent cannot answer");
    }
  }
  EmulatedPlatform platform(memory, coco, dirty_, exported_);
  // SAFETY: [area, area + kAreaBytes) is guest RAM inside one region's mapping (checked above).
  agent::SharedArea shared{MutableByteSpan(area + agent::kRequestOffset, agent::kMailboxPageBytes),
                           MutableByteSpan(area + agent::kResponseOffset, agent::kMailboxPageBytes),
                           MutableByteSpan(area + agent::kBounceOffset, agent::kBounceBytes)};
  agent_->Serve(platform, shared);
  return Status::Ok();
}

AgentInfo EmulatedAgent::Info() const {
  AgentInfo info;
  info.provisioned = provisioned_;
  info.dirty = dirty_;
  info.measurement = agent_->measurement();
  info.epoch = agent_->epoch();
  info.counters = agent_->counters();
  return info;
}

}  // namespace gmem::vmm
