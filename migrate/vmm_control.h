#pragma once
// VmmControl: what the migration and snapshot engines need from the VMM whose guest they move,
// as typed operations. Two implementations: VmmClient (the control socket, docs/control-protocol.md)
// and the C API's callback adapter (capi/, docs/c-api.md), through which a VMM embeds the engines
// without a socket. The engines take either a socket path or a VmmControl (their options'
// `vmm_socket` / `vmm`).
// Thread-safety: an implementation is called from one engine thread at a time.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/doorbell.h"
#include "base/expected.h"
#include "base/unique_fd.h"
#include "format/records.h"
#include "memory/attribute_map.h"

namespace gmem::migrate {

// One region's attributes as the VMM reports them.
struct RegionAttributes {
  uint32_t region_id = 0;
  memory::AttributeMap map;
};

// What `digest` answers: equal on two VMs exactly when memory, attributes and vCPU progress match.
struct VmmDigest {
  std::string digest;
  std::string checksum;
  bool operator==(const VmmDigest&) const = default;
};

// What `query` reports that the engines use.
struct VmmInfo {
  std::string state;             // incoming, paused, running or finished
  bool kvm_dirty_log = false;    // DirtyLog() reports the guest's writes ("slot": "hva")
  uint64_t conversions = 0;      // shared/private conversions so far (a fence for private pages)
  bool agent_available = false;  // the VM has a guest agent for private pages ...
  bool agent_provisioned = false;  // ... and it holds its platform key
};

class VmmControl {
 public:
  virtual ~VmmControl() = default;

  virtual Expected<VmmInfo> Query() = 0;
  // Query()'s state: incoming, paused, running or finished.
  Expected<std::string> State();
  virtual Status Pause() = 0;
  virtual Status Resume() = 0;
  // Ends the VMM: after a completed migration (source), or to discard an incomplete copy (target).
  virtual Status Quit() = 0;
  // The fds of guest memory (guest_memfds, one per region, layout order; mmap-able at each
  // region's gmem_offset) and the layout.
  virtual Expected<format::LayoutRecord> GetMemfds(std::vector<UniqueFd>& fds) = 0;
  virtual Expected<std::vector<RegionAttributes>> GetAttributes(const format::LayoutRecord& layout) = 0;
  virtual Status SetAttributes(const std::vector<RegionAttributes>& regions) = 0;
  // Fetch-and-clear of KVM's dirty log: one bitmap word vector per region (layout order).
  // Called only when Query() reports kvm_dirty_log.
  virtual Expected<std::vector<std::vector<uint64_t>>> DirtyLog(const format::LayoutRecord& layout) = 0;
  // The opaque vCPU/device state blob.
  virtual Expected<std::string> GetState() = 0;
  virtual Status SetState(const std::string& state) = 0;
  virtual Expected<VmmDigest> Digest() = 0;
  // Creates the incoming VM's memory; returns one fd per region (layout order).
  virtual Status PrepareIncoming(const format::LayoutRecord& layout, std::vector<UniqueFd>& fds) = 0;
  // A doorbell to the VM's guest agent (agent/doorbell.h); called only when Query() reports one.
  virtual Expected<std::unique_ptr<agent::Doorbell>> ConnectAgentDoorbell() = 0;
};

inline Expected<std::string> VmmControl::State() {
  GMEM_ASSIGN_OR_RETURN(VmmInfo info, Query());
  return info.state;
}

}  // namespace gmem::migrate
