#pragma once
// VmmClient: the toolkit's side of the VMM control protocol (docs/control-protocol.md): JSON lines
// over a Unix stream socket, guest_memfd fds received with SCM_RIGHTS. Typed helpers for the
// requests the migration engine makes; Call()/Ok() for everything else.
// Thread-safety: one client per thread (requests and replies are paired in order).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

class VmmClient {
 public:
  // Connects to the control socket at `path`, retrying for up to `timeout_ms` (the VMM may still
  // be laying down memory).
  static Expected<VmmClient> Connect(const std::string& path, int timeout_ms = 10000);

  // Sends `request` with a fresh id; the reply (ok or not) and any fds that came with it.
  Expected<nlohmann::json> Call(nlohmann::json request, std::vector<UniqueFd>* fds = nullptr);
  // Call, then a reply with "ok": false becomes an error that names the command.
  Expected<nlohmann::json> Ok(nlohmann::json request, std::vector<UniqueFd>* fds = nullptr);

  Status Pause();
  Status Resume();
  Status Quit();
  // `query`'s "state": incoming, paused, running or finished.
  Expected<std::string> State();
  // The guest_memfds (one per region, layout order) and the layout.
  Expected<format::LayoutRecord> GetMemfds(std::vector<UniqueFd>& fds);
  Expected<std::vector<RegionAttributes>> GetAttributes(const format::LayoutRecord& layout);
  Status SetAttributes(const std::vector<RegionAttributes>& regions);
  // Fetch-and-clear of KVM's dirty log: one bitmap word vector per region (layout order).
  Expected<std::vector<std::vector<uint64_t>>> DirtyLog(const format::LayoutRecord& layout);
  // The opaque vCPU/device state blob (base64 text, as the VMM sends it).
  Expected<std::string> GetState();
  Status SetState(const std::string& state);
  Expected<VmmDigest> Digest();
  // Creates the incoming VM's memory; returns one guest_memfd per region.
  Status PrepareIncoming(const format::LayoutRecord& layout, std::vector<UniqueFd>& fds);

 private:
  explicit VmmClient(UniqueFd fd) : fd_(std::move(fd)) {}
  Status Send(const std::string& line);
  Expected<nlohmann::json> ReadReply(std::vector<UniqueFd>* fds);

  UniqueFd fd_;
  std::string buffer_;
  int64_t next_id_ = 1;
};

// Layout <-> the protocol's layout object (§4.1).
nlohmann::json LayoutToJson(const format::LayoutRecord& layout);
Expected<format::LayoutRecord> LayoutFromJson(const nlohmann::json& layout);

}  // namespace gmem::migrate
