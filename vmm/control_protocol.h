#pragma once
// The control protocol of gmem-vmm (docs/control-protocol.md): one JSON object per line over a
// Unix stream socket. Requests {"id":N,"cmd":"NAME",...}; replies {"id":N,"ok":true,...} or
// {"id":N,"ok":false,"error":"..."}; fds ride along a reply with SCM_RIGHTS.
//
// This file is the pure half — parsing request lines into typed requests and formatting replies —
// so every malformed-request path is unit-tested without a socket. JSON (nlohmann) stays inside
// the .cc: callers speak the types below.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/expected.h"
#include "memory/layout.h"
#include "vmm/emulated_coco.h"
#include "vmm/migration_progress.h"
#include "vmm/vmm.h"
#include "vmm/vmm_config.h"

namespace gmem::vmm {

// The longest request line the VMM reads (set-attributes of a fragmented 8 GiB VM fits).
inline constexpr size_t kMaxControlLineBytes = size_t{64} << 20;

enum class ControlCommand : uint8_t {
  kQuery = 1,
  kPause,
  kResume,
  kGetMemfds,
  kGetAttributes,
  kSetAttributes,
  kDirtyLog,
  kGetState,
  kSetState,
  kDigest,
  kPrepareIncoming,
  kGuestWriteLog,
  kQuit,
  kAgentDoorbell,
  kSetRate,
  kMigrationProgress,
  kQueryMigration,
};
std::string_view ControlCommandName(ControlCommand command);

struct ControlRequest {
  int64_t id = 0;
  ControlCommand command = ControlCommand::kQuery;
  Bytes state;                               // set-state: "state" (base64)
  std::vector<RegionAttributes> attributes;  // set-attributes: "regions"
  memory::Layout layout;                     // prepare-incoming: "layout"
  std::optional<SlotMode> slot;              // prepare-incoming: "slot" (optional)
  uint64_t rate = 0;                         // set-rate: "rate"
  MigrationProgress progress;                // migration-progress: "progress"
};

// Parses one request line (without its '\n'). On failure the status is kInvalidArgument with the
// message the error reply carries, and `*id` is set when the request's id could be read.
Expected<ControlRequest> ParseControlRequest(std::string_view line, std::optional<int64_t>* id);

// Reply lines, each ending in '\n'. A null id is written as JSON null.
std::string ErrorReply(std::optional<int64_t> id, const Status& status);
std::string OkReply(int64_t id);
std::string QueryReply(int64_t id, const VmmInfo& info);
std::string MemfdsReply(int64_t id, const memory::Layout& layout);  // the fds follow, layout order
std::string AttributesReply(int64_t id, const std::vector<RegionAttributes>& attrs);
std::string DirtyLogReply(int64_t id, const std::vector<SlotDirtyLog>& slots);
std::string StateReply(int64_t id, ByteSpan state);
std::string DigestReply(int64_t id, uint64_t memory_digest, uint64_t checksum);
// query-migration: the last report and its age, or state "none" when there is none.
std::string QueryMigrationReply(int64_t id, const std::optional<MigrationProgressBoard::Report>& report);
std::string GuestWriteLogReply(int64_t id, const std::vector<std::vector<uint64_t>>& gfns);

}  // namespace gmem::vmm
