#pragma once
// Private pages in a live migration (docs/migration.md, "Private pages"): both engines reach
// their VM's agent (docs/agent-protocol.md) through the mailbox in the region that holds the
// agent area and the VMM's doorbell; the agents agree on a transport key through the two hosts
// (the source's share travels in the sealed STATE entry "agent-share" right after LAYOUT and
// ATTRS, the target's share comes back as an AGENT_SHARE switchover message), and private pages
// then travel only as the agent's sealed blobs in PRIVATE records. A file stream has no peer
// agent: the source's agent seals under a key derived from the platform secret and the guest's
// identity, its descriptor travels in the STATE entry "agent-seal", and the restoring VM's agent
// imports only if it derives the same key. After the final pass the source's agent seals a
// manifest of its last export of every private page (FINISH, STATE "agent-finish"); the target's
// agent compares it with what it imported, so a withheld or replayed blob stops the VM from
// resuming.

#include <memory>
#include <string>
#include <vector>

#include "agent/agent_client.h"
#include "agent/doorbell.h"
#include "base/expected.h"
#include "format/records.h"
#include "memory/guest_memfd_mapping.h"
#include "migrate/vmm_control.h"
#include "transport/handshake.h"

namespace gmem::migrate {

inline constexpr char kAgentShareEntry[] = "agent-share";
inline constexpr char kAgentSealEntry[] = "agent-seal";
// The exporting agent's sealed manifest (FINISH): every private page's last export. The target's
// agent checks it against what it imported before the VM may resume.
inline constexpr char kAgentFinishEntry[] = "agent-finish";

// Whether region-relative page `page` of `region` lies in the agent area.
inline bool InAgentArea(const format::Region& region, uint64_t page) {
  uint64_t gpa = region.gpa_base + page * region.page_size;
  return gpa >= agent::kAreaGpa && gpa < agent::kAreaGpa + agent::kAreaBytes;
}

// The agents' session id for a migration session: SHA-256 of a label and the transport session.
agent::SessionId AgentSessionId(const transport::SessionId& session);

// A VM's agent as the host reaches it: the doorbell and the client over the host's mapping.
struct AgentConnection {
  std::unique_ptr<agent::Doorbell> doorbell;
  std::unique_ptr<agent::AgentClient> client;
};

// Connects to the agent of the VM behind `vmm` whose regions are `layout` (mapped as
// `mappings`, layout order). kInvalidArgument if no region holds the agent area.
Expected<AgentConnection> ConnectAgent(VmmControl& vmm, const format::LayoutRecord& layout,
                                       const std::vector<const memory::GuestMemfdMapping*>& mappings);

// The AGENT_SHARE message's text: the importer's share and key id, and back.
std::string EncodeAgentShare(ByteSpan share, uint64_t key_id);
Status DecodeAgentShare(const std::string& text, Bytes& share, uint64_t& key_id);

}  // namespace gmem::migrate
