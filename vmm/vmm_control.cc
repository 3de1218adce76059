#include "vmm/vmm_control.h"

#include "vmm/control_protocol.h"

namespace gmem::vmm {
namespace {

ControlReply Reply(std::string line) { return ControlReply{std::move(line), {}}; }

ControlReply FromStatus(int64_t id, const Status& s) { return Reply(s.ok() ? OkReply(id) : ErrorReply(id, s)); }

ControlReply WithFds(int64_t id, Expected<MemfdSet> set) {
  if (!set.ok()) return Reply(ErrorReply(id, set.status()));
  return ControlReply{MemfdsReply(id, set->layout), std::move(set->fds)};
}

template <typename T, typename Fn>
ControlReply Or(int64_t id, const Expected<T>& result, Fn&& format) {
  if (!result.ok()) return Reply(ErrorReply(id, result.status()));
  return Reply(format(*result));
}

}  // namespace

ControlReply HandleControlLine(Vmm& vmm, std::string_view line) {
  std::optional<int64_t> id;
  auto parsed = ParseControlRequest(line, &id);
  if (!parsed.ok()) return Reply(ErrorReply(id, parsed.status()));
  const ControlRequest& req = *parsed;
  const int64_t rid = req.id;
  switch (req.command) {
    case ControlCommand::kQuery: return Reply(QueryReply(rid, vmm.Query()));
    case ControlCommand::kPause: return FromStatus(rid, vmm.Pause());
    case ControlCommand::kResume: return FromStatus(rid, vmm.Resume());
    case ControlCommand::kGetMemfds: return WithFds(rid, vmm.GetMemfds());
    case ControlCommand::kGetAttributes:
      return Or(rid, vmm.GetAttributes(), [&](const auto& a) { return AttributesReply(rid, a); });
    case ControlCommand::kSetAttributes: return FromStatus(rid, vmm.SetAttributes(req.attributes));
    case ControlCommand::kDirtyLog:
      return Or(rid, vmm.FetchDirtyLog(), [&](const auto& slots) { return DirtyLogReply(rid, slots); });
    case ControlCommand::kGetState:
      return Or(rid, vmm.GetState(), [&](const Bytes& blob) { return StateReply(rid, blob); });
    case ControlCommand::kSetState: return FromStatus(rid, vmm.SetState(req.state));
    case ControlCommand::kDigest:
      return Or(rid, vmm.Digest(), [&](const auto& d) { return DigestReply(rid, d.first, d.second); });
    case ControlCommand::kPrepareIncoming: return WithFds(rid, vmm.PrepareIncoming(req.layout, req.slot));
    case ControlCommand::kGuestWriteLog:
      return Or(rid, vmm.TakeGuestWriteLog(), [&](const auto& logs) { return GuestWriteLogReply(rid, logs); });
    case ControlCommand::kAgentDoorbell: return FromStatus(rid, vmm.AgentDoorbell());
    case ControlCommand::kSetRate: return FromStatus(rid, vmm.SetRate(req.rate));
    case ControlCommand::kMigrationProgress:
      vmm.migration_progress().Set(req.progress);
      return Reply(OkReply(rid));
    case ControlCommand::kQueryMigration: return Reply(QueryMigrationReply(rid, vmm.migration_progress().Get()));
    case ControlCommand::kQuit:
      vmm.RequestQuit();
      return Reply(OkReply(rid));
  }
  return Reply(ErrorReply(rid, InvalidArgument("unhandled command")));
}

}  // namespace gmem::vmm
