#pragma once
// EmulatedAgent: the SNP guest agent of `gmem-vmm --coco emulated` (docs/agent-protocol.md). On
// a real SEV-SNP host the agent is an SVSM service inside the guest; here guest code is ~2000x
// slower than native and AES-NI faults in the guest, so the agent runs in the VMM process. It
// behaves as the host would see an in-guest agent: it talks to the host only through the agent
// area in shared guest memory (mailbox and bounce buffer, GPA 0x140000) and the doorbell (the
// control-socket command `agent-doorbell`), and it alone touches private pages — through the
// VMM's own mapping (the guest's view) and the emulated CoCo's attribute table.
//
// Guest identity (the measurement, §5.3) = MeasurementOf("gmemkit-emulated-measurement-v1",
// {guest ABI version (u32 LE), the embedded guest program, --guest-id}).
//
// Dirty tracking of private pages: the guest writes private pages directly (no exit reaches the
// VMM), so nothing here sees the writes. With AgentDirtyMode::kHash the agent fingerprints each
// page it exports (XXH3-128 of the exact bytes sealed) and DIRTY reports the private pages whose
// contents differ now (or that it never exported in the session) — an agent that reads its own
// private memory can always do that. With kAll it answers ALL (an agent that cannot track).
//
// Thread-compatible: the VMM serialises doorbells (under its mutex).

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "agent/agent.h"
#include "agent/platform_key.h"
#include "base/status.h"
#include "vmm/emulated_coco.h"
#include "vmm/guest_memory.h"
#include "vmm/vmm_config.h"

namespace gmem::vmm {

// The emulated guest identity of a VM started with `--guest-id guest_id`.
agent::Measurement EmulatedMeasurement(std::string_view guest_id);

struct AgentInfo {
  bool provisioned = false;  // has a platform key
  AgentDirtyMode dirty = AgentDirtyMode::kHash;
  agent::Measurement measurement{};
  uint32_t epoch = 0;
  agent::AgentCounters counters;
};

class EmulatedAgent {
 public:
  // `platform_key` may be null (HELLO then answers NOT_PROVISIONED).
  EmulatedAgent(std::shared_ptr<const agent::PlatformKey> platform_key, std::string_view guest_id,
                AgentDirtyMode dirty);

  // The doorbell: serves the request in the mailbox. kUnsupported under CocoMode::kNone;
  // kInvalidArgument when the agent area is not shared guest RAM (the guest converted it). Agent
  // errors are not call errors: they are in the response page.
  Status Ring(const GuestMemory& memory, EmulatedCoco& coco);

  AgentInfo Info() const;

 private:
  std::unique_ptr<agent::Agent> agent_;
  bool provisioned_ = false;
  AgentDirtyMode dirty_;
  // gfn -> XXH3-128 (low, high) of the contents last exported in this session.
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> exported_;
};

}  // namespace gmem::vmm
