#pragma once
// Doorbell: how the host tells the agent that a request waits in the mailbox
// (docs/agent-protocol.md §3.4). On SEV-SNP it would be an interrupt or a VMGEXIT the SVSM
// sees; for gmem-vmm's emulated agent it is the control-socket command `agent-doorbell`
// (docs/control-protocol.md). Blob bytes never travel with the doorbell.

#include <string>

#include "base/expected.h"
#include "base/unique_fd.h"

namespace gmem::agent {

class Doorbell {
 public:
  virtual ~Doorbell() = default;
  // Notifies the agent. May return before the agent answered (the client then polls the
  // response page) or after (the emulated agent answers before the VMM replies).
  virtual Status Ring() = 0;
  // True when Ring() returns only after the agent wrote its response (no polling needed).
  virtual bool synchronous() const { return false; }
};

// The gmem-vmm doorbell over its own connection to the VMM's control socket: each Ring() is one
// `{"id":N,"cmd":"agent-doorbell"}` line and its reply. An engine that already holds a control
// connection can implement Doorbell over it instead (one request per Ring()).
// Thread-compatible.
class VmmSocketDoorbell final : public Doorbell {
 public:
  // Connects to the control socket at `path`, retrying for up to `timeout_ms`.
  static Expected<VmmSocketDoorbell> Connect(const std::string& path, int timeout_ms = 10000);
  Status Ring() override;
  bool synchronous() const override { return true; }

 private:
  explicit VmmSocketDoorbell(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string buffer_;
  int64_t next_id_ = 1;
};

}  // namespace gmem::agent
