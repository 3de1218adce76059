#pragma once
// VmmClient: the toolkit's side of the VMM control protocol (docs/control-protocol.md): JSON lines
// over a Unix stream socket, guest_memfd fds received with SCM_RIGHTS. Typed helpers for the
// requests the migration engine makes (VmmControl); Call()/Ok() for everything else.
// Thread-safety: one client per thread (requests and replies are paired in order).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "format/records.h"
#include "migrate/vmm_control.h"

namespace gmem::migrate {

class VmmClient final : public VmmControl {
 public:
  // Connects to the control socket at `path`, retrying for up to `timeout_ms` (the VMM may still
  // be laying down memory).
  static Expected<VmmClient> Connect(const std::string& path, int timeout_ms = 10000);

  // Sends `request` with a fresh id; the reply (ok or not) and any fds that came with it.
  Expected<nlohmann::json> Call(nlohmann::json request, std::vector<UniqueFd>* fds = nullptr);
  // Call, then a reply with "ok": false becomes an error that names the command.
  Expected<nlohmann::json> Ok(nlohmann::json request, std::vector<UniqueFd>* fds = nullptr);

  Expected<VmmInfo> Query() override;
  Status Pause() override;
  Status Resume() override;
  Status Quit() override;
  Expected<format::LayoutRecord> GetMemfds(std::vector<UniqueFd>& fds) override;
  Expected<std::vector<RegionAttributes>> GetAttributes(const format::LayoutRecord& layout) override;
  Status SetAttributes(const std::vector<RegionAttributes>& regions) override;
  Expected<std::vector<std::vector<uint64_t>>> DirtyLog(const format::LayoutRecord& layout) override;
  // The opaque vCPU/device state blob (base64 text, as the VMM sends it).
  Expected<std::string> GetState() override;
  Status SetState(const std::string& state) override;
  Expected<VmmDigest> Digest() override;
  Status PrepareIncoming(const format::LayoutRecord& layout, std::vector<UniqueFd>& fds) override;
  // A VmmSocketDoorbell on its own connection to the same socket.
  Expected<std::unique_ptr<agent::Doorbell>> ConnectAgentDoorbell() override;

 private:
  VmmClient(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Status Send(const std::string& line);
  Expected<nlohmann::json> ReadReply(std::vector<UniqueFd>* fds);

  UniqueFd fd_;
  std::string path_;
  std::string buffer_;
  int64_t next_id_ = 1;
};

// The VMM an engine drives: `given` when set, else a client connected to `socket` (kept in
// `owned`, which must outlive the use of the result).
Expected<VmmControl*> AttachVmmControl(VmmControl* given, const std::string& socket, int timeout_ms,
                                       std::unique_ptr<VmmClient>& owned);

// Layout <-> the protocol's layout object (§4.1).
nlohmann::json LayoutToJson(const format::LayoutRecord& layout);
Expected<format::LayoutRecord> LayoutFromJson(const nlohmann::json& layout);

}  // namespace gmem::migrate
