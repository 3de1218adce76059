#include "capi/callback_vmm.h"

#include <fcntl.h>

#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>

#include "capi/buffer.h"
#include "capi/memory_hash.h"
#include "memory/guest_memfd.h"
#include "migrate/source_region.h"

namespace gmem::capi {

namespace {

constexpr size_t kCallbacksMinSize = offsetof(gmemkit_vmm_callbacks, run_state) + sizeof(void*);

std::string RegionName(uint32_t id) { return "region " + std::to_string(id); }

std::string HexAddress(uint64_t gpa) {
  char text[24];
  std::snprintf(text, sizeof(text), "%#" PRIx64, gpa);
  return text;
}

// The agent_doorbell callback as the agent client's doorbell: synchronous by contract.
class CallbackDoorbell final : public agent::Doorbell {
 public:
  explicit CallbackDoorbell(std::function<Status()> ring) : ring_(std::move(ring)) {}
  Status Ring() override { return ring_(); }
  bool synchronous() const override { return true; }

 private:
  std::function<Status()> ring_;
};

Expected<UniqueFd> Dup(int fd, const std::string& what) {
  UniqueFd out(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!out.valid()) return ErrnoStatus(Code::kInvalidArgument, what + ": fd " + std::to_string(fd) + " is not open");
  return out;
}

// The attribute bytes of a region as an AttributeMap: 0 shared, 1 private, nothing else.
Expected<memory::AttributeMap> MapFromBytes(uint32_t region_id, const std::vector<uint8_t>& bytes) {
  std::vector<memory::AttrRun> runs;
  for (uint64_t page = 0; page < bytes.size();) {
    uint8_t value = bytes[page];
    if (value != GMEMKIT_PAGE_SHARED && value != GMEMKIT_PAGE_PRIVATE) {
      return ProtocolError("get_attributes: " + RegionName(region_id) + " page " + std::to_string(page) +
                           " has attribute " + std::to_string(value) + " (expected 0 shared or 1 private)");
    }
    uint64_t end = page;
    while (end < bytes.size() && bytes[end] == value) ++end;
    runs.push_back({page, end - page, value == GMEMKIT_PAGE_PRIVATE ? memory::PageAttr::kPrivate
                                                                    : memory::PageAttr::kShared});
    page = end;
  }
  return memory::AttributeMap::FromRuns(bytes.size(), runs);
}

}  // namespace

Status ValidCallbacks(const gmemkit_vmm_callbacks* callbacks) {
  if (callbacks == nullptr) return InvalidArgument("callbacks is NULL");
  if (callbacks->struct_size < kCallbacksMinSize) {
    return InvalidArgument("callbacks->struct_size is " + std::to_string(callbacks->struct_size) +
                           ": set it to sizeof(gmemkit_vmm_callbacks)");
  }
  if (callbacks->run_state == nullptr) return InvalidArgument("the run_state callback is required");
  gmemkit_vmm_callbacks given{};
  std::memcpy(&given, callbacks, std::min(callbacks->struct_size, sizeof(given)));
  if (given.agent_doorbell != nullptr && given.agent_query == nullptr) {
    return InvalidArgument("the agent_doorbell callback needs an agent_query callback");
  }
  return Status::Ok();
}

CallbackVmm::CallbackVmm(const gmemkit_vmm_callbacks& callbacks) {
  std::memcpy(&callbacks_, &callbacks, std::min(callbacks.struct_size, sizeof(callbacks_)));
}

Status CallbackVmm::Check(const char* name, int rc) {
  if (rc == 0) return Status::Ok();
  Status st(Code::kIo, std::string("VMM callback '") + name + "' failed", rc > 0 ? rc : 0);
  callback_failures_.push_back(st.ToString());
  return st;
}

bool CallbackVmm::FailedInCallback(const Status& status) const {
  std::string text = status.ToString();
  for (const std::string& failure : callback_failures_) {
    if (text.find(failure) != std::string::npos) return true;
  }
  return false;
}

Status CallbackVmm::SetMemory(std::span<const gmemkit_region> regions) {
  format::LayoutRecord layout;
  std::vector<UniqueFd> fds;
  for (const gmemkit_region& r : regions) {
    format::Region region;
    region.id = r.id;
    region.page_size = r.page_size == 0 ? 4096 : r.page_size;
    region.gpa_base = r.gpa;
    region.size_bytes = r.size_bytes;
    region.gmem_offset = r.fd_offset;
    region.gmem_flags = r.gmem_flags;
    layout.regions.push_back(region);
    GMEM_ASSIGN_OR_RETURN(UniqueFd fd, Dup(r.fd, RegionName(r.id)));
    // The engines adopt each fd as a guest_memfd that ends where its region ends: check it now,
    // on a second dup, so that a wrong fd fails here and not in the middle of a save.
    GMEM_ASSIGN_OR_RETURN(UniqueFd probe, Dup(fd.get(), RegionName(r.id)));
    GMEM_RETURN_IF_ERROR(memory::GuestMemfd::Adopt(std::move(probe), r.fd_offset + r.size_bytes, r.gmem_flags)
                             .status()
                             .WithContext(RegionName(r.id)));
    fds.push_back(std::move(fd));
  }
  // The image format's layout rules, reported as what they are here: the caller's mistake.
  if (Status st = format::ValidateLayout(layout); !st.ok()) return InvalidArgument("memory layout: " + st.message());
  layout_ = std::move(layout);
  fds_ = std::move(fds);
  has_memory_ = true;
  return Status::Ok();
}

Expected<std::vector<UniqueFd>> CallbackVmm::DupMemory() const {
  std::vector<UniqueFd> out;
  for (size_t i = 0; i < fds_.size(); ++i) {
    GMEM_ASSIGN_OR_RETURN(UniqueFd fd, Dup(fds_[i].get(), RegionName(layout_.regions[i].id)));
    out.push_back(std::move(fd));
  }
  return out;
}

Expected<migrate::VmmInfo> CallbackVmm::Query() {
  int state = 0;
  GMEM_RETURN_IF_ERROR(Check("run_state", callbacks_.run_state(callbacks_.ctx, &state)));
  migrate::VmmInfo info;
  switch (state) {
    case GMEMKIT_RUN_INCOMING: info.state = "incoming"; break;
    case GMEMKIT_RUN_RUNNING: info.state = "running"; break;
    case GMEMKIT_RUN_PAUSED: info.state = "paused"; break;
    case GMEMKIT_RUN_FINISHED: info.state = "finished"; break;
    default: return ProtocolError("run_state: unknown run state " + std::to_string(state));
  }
  info.kvm_dirty_log = callbacks_.dirty_log != nullptr;
  if (callbacks_.agent_query == nullptr) return info;
  GMEM_ASSIGN_OR_RETURN(gmemkit_agent_info agent, QueryAgent());
  info.agent_available = agent.available != 0 && callbacks_.agent_doorbell != nullptr;
  info.agent_provisioned = agent.provisioned != 0;
  info.conversions = agent.conversions;
  return info;
}

Expected<gmemkit_agent_info> CallbackVmm::QueryAgent() {
  gmemkit_agent_info agent{};
  agent.struct_size = sizeof(agent);
  GMEM_RETURN_IF_ERROR(Check("agent_query", callbacks_.agent_query(callbacks_.ctx, &agent)));
  if (agent.available != 0 && agent.area_gpa != 0 && agent.area_gpa != GMEMKIT_AGENT_AREA_GPA) {
    return Unsupported("agent_query: the agent area is at GPA " + HexAddress(agent.area_gpa) +
                       "; this library reaches an agent only at " + HexAddress(GMEMKIT_AGENT_AREA_GPA));
  }
  return agent;
}

Status CallbackVmm::Pause() {
  if (callbacks_.pause == nullptr) return InvalidArgument("the VM runs and there is no pause callback");
  return Check("pause", callbacks_.pause(callbacks_.ctx));
}

Status CallbackVmm::Resume() {
  if (callbacks_.resume == nullptr) return InvalidArgument("there is no resume callback");
  return Check("resume", callbacks_.resume(callbacks_.ctx));
}

Status CallbackVmm::Quit() {
  if (callbacks_.discard == nullptr) return Status::Ok();
  return Check("discard", callbacks_.discard(callbacks_.ctx));
}

Expected<format::LayoutRecord> CallbackVmm::GetMemfds(std::vector<UniqueFd>& fds) {
  if (!has_memory_) return InvalidArgument("the VM has no memory: call gmemkit_vm_set_memory first");
  GMEM_ASSIGN_OR_RETURN(fds, DupMemory());
  return layout_;
}

Expected<std::vector<migrate::RegionAttributes>> CallbackVmm::GetAttributes(const format::LayoutRecord& layout) {
  std::vector<migrate::RegionAttributes> out;
  for (const format::Region& r : layout.regions) {
    if (callbacks_.get_attributes == nullptr) {
      out.push_back({r.id, memory::AttributeMap(r.npages(), memory::PageAttr::kShared)});
      continue;
    }
    std::vector<uint8_t> bytes(r.npages(), GMEMKIT_PAGE_SHARED);
    GMEM_RETURN_IF_ERROR(Check("get_attributes", callbacks_.get_attributes(callbacks_.ctx, r.id, bytes.data(), r.npages())));
    GMEM_ASSIGN_OR_RETURN(memory::AttributeMap map, MapFromBytes(r.id, bytes));
    out.push_back({r.id, std::move(map)});
  }
  return out;
}

Status CallbackVmm::SetAttributes(const std::vector<migrate::RegionAttributes>& regions) {
  for (const migrate::RegionAttributes& r : regions) {
    if (callbacks_.set_attributes == nullptr) {
      if (r.map.CountPrivate() != 0) {
        return Unsupported(RegionName(r.region_id) + " has private pages and the VMM has no set_attributes callback");
      }
      continue;
    }
    std::vector<uint8_t> bytes(r.map.npages(), GMEMKIT_PAGE_SHARED);
    r.map.ForEachRun([&](const memory::AttrRun& run) {
      if (run.attr == memory::PageAttr::kPrivate) {
        std::fill_n(bytes.begin() + static_cast<ptrdiff_t>(run.first), run.count, uint8_t{GMEMKIT_PAGE_PRIVATE});
      }
    });
    GMEM_RETURN_IF_ERROR(
        Check("set_attributes", callbacks_.set_attributes(callbacks_.ctx, r.region_id, bytes.data(), bytes.size())));
  }
  return Status::Ok();
}

Expected<std::vector<std::vector<uint64_t>>> CallbackVmm::DirtyLog(const format::LayoutRecord& layout) {
  if (callbacks_.dirty_log == nullptr) return InvalidArgument("there is no dirty_log callback");
  std::vector<std::vector<uint64_t>> out;
  for (const format::Region& r : layout.regions) {
    std::vector<uint64_t> words((r.npages() + 63) / 64, 0);
    GMEM_RETURN_IF_ERROR(Check("dirty_log", callbacks_.dirty_log(callbacks_.ctx, r.id, words.data(), words.size())));
    out.push_back(std::move(words));
  }
  return out;
}

Expected<std::string> CallbackVmm::GetState() {
  if (callbacks_.get_state == nullptr) return InvalidArgument("there is no get_state callback");
  gmemkit_buffer buffer;
  GMEM_RETURN_IF_ERROR(Check("get_state", callbacks_.get_state(callbacks_.ctx, &buffer)));
  if (buffer.bytes.empty()) return ProtocolError("get_state: the VM state is empty (a non-empty blob is required)");
  last_state_ = buffer.bytes;
  return std::move(buffer.bytes);
}

Status CallbackVmm::SetState(const std::string& state) {
  if (callbacks_.set_state == nullptr) return InvalidArgument("there is no set_state callback");
  GMEM_RETURN_IF_ERROR(Check("set_state", callbacks_.set_state(callbacks_.ctx, state.data(), state.size())));
  last_state_ = state;
  return Status::Ok();
}

Expected<migrate::VmmDigest> CallbackVmm::Digest() {
  if (callbacks_.digest != nullptr) {
    gmemkit_buffer buffer;
    GMEM_RETURN_IF_ERROR(Check("digest", callbacks_.digest(callbacks_.ctx, &buffer)));
    if (buffer.bytes.empty()) return ProtocolError("digest: the VMM's digest is empty");
    return migrate::VmmDigest{std::move(buffer.bytes), "vmm"};
  }
  if (!has_memory_) return InvalidArgument("the VM has no memory: call gmemkit_vm_set_memory first");
  GMEM_ASSIGN_OR_RETURN(std::vector<migrate::RegionAttributes> attrs, GetAttributes(layout_));
  GMEM_ASSIGN_OR_RETURN(std::vector<UniqueFd> fds, DupMemory());
  bool has_agent = false;
  if (callbacks_.agent_query != nullptr) {
    GMEM_ASSIGN_OR_RETURN(gmemkit_agent_info agent, QueryAgent());
    has_agent = agent.available != 0;
  }
  GMEM_ASSIGN_OR_RETURN(std::string memory, HashMemory(layout_, std::move(fds), attrs, has_agent));
  return migrate::VmmDigest{std::move(memory), HashState(last_state_)};
}

Status CallbackVmm::ZeroMemory() {
  GMEM_ASSIGN_OR_RETURN(std::vector<UniqueFd> fds, DupMemory());
  GMEM_ASSIGN_OR_RETURN(std::vector<memory::GuestMemfdMapping> mappings, migrate::MapRegions(layout_, fds));
  for (size_t i = 0; i < mappings.size(); ++i) {
    const format::Region& r = layout_.regions[i];
    GMEM_RETURN_IF_ERROR(mappings[i].PunchHole(r.gmem_offset / r.page_size, r.npages()).WithContext(RegionName(r.id)));
  }
  return Status::Ok();
}

Status CallbackVmm::PrepareIncoming(const format::LayoutRecord& layout, std::vector<UniqueFd>& fds) {
  if (callbacks_.prepare_incoming == nullptr) {
    if (!has_memory_) return InvalidArgument("the VM has no memory and no prepare_incoming callback");
    if (!(layout == layout_)) {
      return Status(Code::kIncompatible, "the image's memory layout differs from the VM's registered memory");
    }
    GMEM_RETURN_IF_ERROR(ZeroMemory().WithContext("clear the VM's memory"));
    GMEM_ASSIGN_OR_RETURN(fds, DupMemory());
    return Status::Ok();
  }
  std::vector<gmemkit_region> regions;
  for (const format::Region& r : layout.regions) {
    regions.push_back({r.id, r.page_size, r.gpa_base, r.size_bytes, r.gmem_offset, r.gmem_flags, -1});
  }
  std::vector<int> given(regions.size(), -1);
  GMEM_RETURN_IF_ERROR(
      Check("prepare_incoming", callbacks_.prepare_incoming(callbacks_.ctx, regions.data(), regions.size(), given.data())));
  for (size_t i = 0; i < regions.size(); ++i) regions[i].fd = given[i];
  GMEM_RETURN_IF_ERROR(SetMemory(regions).WithContext("prepare_incoming"));
  GMEM_ASSIGN_OR_RETURN(fds, DupMemory());
  return Status::Ok();
}

Expected<std::unique_ptr<agent::Doorbell>> CallbackVmm::ConnectAgentDoorbell() {
  if (callbacks_.agent_doorbell == nullptr) {
    return Unsupported("the VM has private pages and the VMM has no agent_doorbell callback");
  }
  GMEM_ASSIGN_OR_RETURN(gmemkit_agent_info agent, QueryAgent());
  if (agent.available == 0) return Unsupported("agent_query: the VM has no guest agent");
  return std::unique_ptr<agent::Doorbell>(std::make_unique<CallbackDoorbell>(
      [this] { return Check("agent_doorbell", callbacks_.agent_doorbell(callbacks_.ctx)); }));
}

}  // namespace gmem::capi
