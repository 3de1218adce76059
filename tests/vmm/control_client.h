#pragma once
// ControlClient: the client side of the gmem-vmm control protocol, for tests (and the shape later
// toolkit code follows): JSON lines over a Unix stream socket, fds received with SCM_RIGHTS.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/expected.h"
#include "base/unique_fd.h"

namespace gmem::vmm::testing {

class ControlClient {
 public:
  // Connects to `path`, retrying until `timeout_ms` (the VMM may still be laying down memory).
  static Expected<ControlClient> Connect(const std::string& path, int timeout_ms = 30000);

  // Sends `request` with a fresh "id" and returns the reply; fds that came with it go to `fds`.
  Expected<nlohmann::json> Call(nlohmann::json request, std::vector<UniqueFd>* fds = nullptr);
  // Sends `line` as it is (plus '\n') and returns the next reply line.
  Expected<nlohmann::json> CallRaw(const std::string& line, std::vector<UniqueFd>* fds = nullptr);
  // Call + check "ok": the reply, or the error text as kProtocol.
  Expected<nlohmann::json> Ok(nlohmann::json request, std::vector<UniqueFd>* fds = nullptr);

 private:
  explicit ControlClient(UniqueFd fd) : fd_(std::move(fd)) {}
  Expected<nlohmann::json> ReadReply(std::vector<UniqueFd>* fds);

  UniqueFd fd_;
  std::string buffer_;
  int64_t next_id_ = 1;
};

}  // namespace gmem::vmm::testing
