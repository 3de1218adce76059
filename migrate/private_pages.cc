#include "migrate/private_pages.h"

#include <cstring>

#include "base/bytes.h"
#include "format/crypto.h"

namespace gmem::migrate {

agent::SessionId AgentSessionId(const transport::SessionId& session) {
  static constexpr char kLabel[] = "gmemkit agent session v1";
  Bytes input(sizeof(kLabel) - 1 + session.size());
  std::memcpy(input.data(), kLabel, sizeof(kLabel) - 1);
  std::memcpy(input.data() + sizeof(kLabel) - 1, session.data(), session.size());
  format::Digest digest = format::Sha256(input);
  agent::SessionId out{};
  static_assert(sizeof(out) == sizeof(digest));
  std::memcpy(out.data(), digest.data(), out.size());
  return out;
}

Expected<AgentConnection> ConnectAgent(VmmControl& vmm, const format::LayoutRecord& layout,
                                       const std::vector<const memory::GuestMemfdMapping*>& mappings) {
  for (size_t i = 0; i < layout.regions.size(); ++i) {
    const format::Region& r = layout.regions[i];
    if (agent::kAreaGpa < r.gpa_base || agent::kAreaGpa + agent::kAreaBytes > r.gpa_base + r.size_bytes) continue;
    memory::Region region;
    region.id = r.id;
    region.gpa_base = r.gpa_base;
    region.size_bytes = r.size_bytes;
    region.gmem_offset = r.gmem_offset;
    region.page_size = r.page_size;
    region.gmem_flags = r.gmem_flags;
    AgentConnection out;
    GMEM_ASSIGN_OR_RETURN(out.doorbell, vmm.ConnectAgentDoorbell());
    GMEM_ASSIGN_OR_RETURN(agent::AgentClient client, agent::AgentClient::ForMapping(*mappings[i], region, *out.doorbell));
    out.client = std::make_unique<agent::AgentClient>(std::move(client));
    return out;
  }
  return InvalidArgument("no region holds the agent area (GPA 0x140000..0x200000)");
}

std::string EncodeAgentShare(ByteSpan share, uint64_t key_id) {
  return ToHex(share) + ":" + std::to_string(key_id);
}

Status DecodeAgentShare(const std::string& text, Bytes& share, uint64_t& key_id) {
  size_t colon = text.find(':');
  if (colon == std::string::npos) return ProtocolError("malformed AGENT_SHARE message");
  Bytes bytes(agent::kShareBytes);
  if (colon != 2 * agent::kShareBytes || !FromHex(std::string_view(text).substr(0, colon), bytes)) {
    return ProtocolError("malformed agent share");
  }
  try {
    size_t used = 0;
    key_id = std::stoull(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) return ProtocolError("malformed agent key id");
  } catch (const std::exception&) {
    return ProtocolError("malformed agent key id");
  }
  share = std::move(bytes);
  return Status::Ok();
}

}  // namespace gmem::migrate
