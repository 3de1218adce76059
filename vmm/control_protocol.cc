#include "vmm/control_protocol.h"

#include <nlohmann/json.hpp>

#include <string>

#include "agent/wire.h"
#include "vmm/base64.h"
#include "vmm/guest/guest_abi.h"
#include "vmm/memory_digest.h"

namespace gmem::vmm {
namespace {

using nlohmann::json;

struct CommandName {
  ControlCommand command;
  const char* name;
};
constexpr CommandName kCommands[] = {
    {ControlCommand::kQuery, "query"},
    {ControlCommand::kPause, "pause"},
    {ControlCommand::kResume, "resume"},
    {ControlCommand::kGetMemfds, "get-memfds"},
    {ControlCommand::kGetAttributes, "get-attributes"},
    {ControlCommand::kSetAttributes, "set-attributes"},
    {ControlCommand::kDirtyLog, "dirty-log"},
    {ControlCommand::kGetState, "get-state"},
    {ControlCommand::kSetState, "set-state"},
    {ControlCommand::kDigest, "digest"},
    {ControlCommand::kPrepareIncoming, "prepare-incoming"},
    {ControlCommand::kGuestWriteLog, "guest-write-log"},
    {ControlCommand::kQuit, "quit"},
    {ControlCommand::kAgentDoorbell, "agent-doorbell"},
    {ControlCommand::kSetRate, "set-rate"},
    {ControlCommand::kMigrationProgress, "migration-progress"},
    {ControlCommand::kQueryMigration, "query-migration"},
};

Expected<uint64_t> GetU64(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) return InvalidArgument(where + ": missing '" + key + "'");
  if (!it->is_number_unsigned()) return InvalidArgument(where + ": '" + key + "' must be a non-negative integer");
  return it->get<uint64_t>();
}

Expected<memory::Layout> ParseLayout(const json& j) {
  if (!j.is_object() || !j.contains("regions") || !j["regions"].is_array()) {
    return InvalidArgument("'layout' must be an object with a 'regions' array");
  }
  if (j["regions"].size() > memory::kMaxRegions) return InvalidArgument("'layout' has too many regions");
  memory::Layout layout;
  for (const json& r : j["regions"]) {
    if (!r.is_object()) return InvalidArgument("layout: every region must be an object");
    memory::Region region;
    const std::string where = "layout region";
    GMEM_ASSIGN_OR_RETURN(uint64_t id, GetU64(r, "id", where));
    GMEM_ASSIGN_OR_RETURN(region.gpa_base, GetU64(r, "gpa", where));
    GMEM_ASSIGN_OR_RETURN(region.size_bytes, GetU64(r, "size", where));
    GMEM_ASSIGN_OR_RETURN(region.gmem_offset, GetU64(r, "gmem_offset", where));
    GMEM_ASSIGN_OR_RETURN(uint64_t page_size, GetU64(r, "page_size", where));
    GMEM_ASSIGN_OR_RETURN(region.gmem_flags, GetU64(r, "flags", where));
    if (id > UINT32_MAX || page_size > UINT32_MAX) return InvalidArgument("layout: id or page_size out of range");
    region.id = static_cast<uint32_t>(id);
    region.page_size = static_cast<uint32_t>(page_size);
    layout.Add(region);
  }
  GMEM_RETURN_IF_ERROR(layout.Validate());
  return layout;
}

Expected<RegionAttributes> ParseRegionAttributes(const json& r) {
  const std::string where = "attributes region";
  if (!r.is_object()) return InvalidArgument(where + " must be an object");
  GMEM_ASSIGN_OR_RETURN(uint64_t id, GetU64(r, "id", where));
  GMEM_ASSIGN_OR_RETURN(uint64_t npages, GetU64(r, "npages", where));
  if (id > UINT32_MAX) return InvalidArgument(where + ": id out of range");
  if (npages > (memory::kMaxRegionBytes >> 12)) return InvalidArgument(where + ": npages out of range");
  auto runs_it = r.find("runs");
  if (runs_it == r.end() || !runs_it->is_array()) return InvalidArgument(where + ": missing 'runs' array");
  if (runs_it->size() > npages) return InvalidArgument(where + ": more runs than pages");
  std::vector<memory::AttrRun> runs;
  for (const json& run : *runs_it) {
    if (!run.is_array() || run.size() != 3 || !run[0].is_number_unsigned() || !run[1].is_number_unsigned() ||
        !run[2].is_string()) {
      return InvalidArgument(where + ": each run must be [first, count, \"shared\"|\"private\"]");
    }
    std::string attr = run[2].get<std::string>();
    if (attr != "shared" && attr != "private") return InvalidArgument(where + ": unknown attribute '" + attr + "'");
    runs.push_back(memory::AttrRun{run[0].get<uint64_t>(), run[1].get<uint64_t>(),
                                   attr == "private" ? memory::PageAttr::kPrivate : memory::PageAttr::kShared});
  }
  GMEM_ASSIGN_OR_RETURN(memory::AttributeMap map, memory::AttributeMap::FromRuns(npages, runs));
  return RegionAttributes{static_cast<uint32_t>(id), std::move(map)};
}

// The longest string field of a progress report (an error line is one line, not a log).
constexpr size_t kMaxProgressText = 4096;

Expected<MigrationProgress> ParseProgress(const json& j) {
  const std::string where = "migration-progress";
  if (!j.is_object()) return InvalidArgument(where + ": 'progress' must be an object");
  MigrationProgress p;
  auto text = [&](const char* key, std::string& out, bool required) -> Status {
    auto it = j.find(key);
    if (it == j.end()) return required ? InvalidArgument(where + ": missing '" + key + "'") : Status::Ok();
    if (!it->is_string() || it->get_ref<const std::string&>().size() > kMaxProgressText) {
      return InvalidArgument(where + ": '" + key + "' must be a string of at most " +
                             std::to_string(kMaxProgressText) + " bytes");
    }
    out = it->get<std::string>();
    return Status::Ok();
  };
  std::string state;
  GMEM_RETURN_IF_ERROR(text("state", state, true));
  std::optional<MigrationState> parsed = ParseMigrationState(state);
  if (!parsed.has_value() || *parsed == MigrationState::kNone) {
    return InvalidArgument(where + ": 'state' must be \"active\", \"completed\" or \"failed\"");
  }
  p.state = *parsed;
  GMEM_RETURN_IF_ERROR(text("role", p.role, false));
  GMEM_RETURN_IF_ERROR(text("phase", p.phase, false));
  GMEM_RETURN_IF_ERROR(text("error", p.error, false));
  if (p.state == MigrationState::kFailed && p.error.empty()) return InvalidArgument(where + ": a failed migration needs its 'error'");
  struct Counter {
    const char* key;
    uint64_t* value;
  };
  for (Counter c : {Counter{"pass", &p.pass}, Counter{"bytes_sent", &p.bytes_sent},
                    Counter{"bytes_remaining", &p.bytes_remaining}, Counter{"dirty_pages", &p.dirty_pages},
                    Counter{"rate_bytes_per_second", &p.rate_bytes_per_second},
                    Counter{"expected_downtime_ms", &p.expected_downtime_ms}}) {
    if (!j.contains(c.key)) continue;
    GMEM_ASSIGN_OR_RETURN(*c.value, GetU64(j, c.key, where));
  }
  return p;
}

Status ParseArguments(const json& j, ControlRequest& req) {
  switch (req.command) {
    case ControlCommand::kMigrationProgress: {
      auto it = j.find("progress");
      if (it == j.end()) return InvalidArgument("migration-progress: missing 'progress'");
      GMEM_ASSIGN_OR_RETURN(req.progress, ParseProgress(*it));
      return Status::Ok();
    }
    case ControlCommand::kSetRate: {
      GMEM_ASSIGN_OR_RETURN(req.rate, GetU64(j, "rate", "set-rate"));
      return Status::Ok();
    }
    case ControlCommand::kSetState: {
      auto it = j.find("state");
      if (it == j.end() || !it->is_string()) return InvalidArgument("set-state: missing 'state' (base64 string)");
      GMEM_ASSIGN_OR_RETURN(req.state, Base64Decode(it->get<std::string>()));
      return Status::Ok();
    }
    case ControlCommand::kSetAttributes: {
      auto it = j.find("regions");
      if (it == j.end() || !it->is_array()) return InvalidArgument("set-attributes: missing 'regions' array");
      for (const json& r : *it) {
        GMEM_ASSIGN_OR_RETURN(RegionAttributes ra, ParseRegionAttributes(r));
        req.attributes.push_back(std::move(ra));
      }
      return Status::Ok();
    }
    case ControlCommand::kPrepareIncoming: {
      auto it = j.find("layout");
      if (it == j.end()) return InvalidArgument("prepare-incoming: missing 'layout'");
      GMEM_ASSIGN_OR_RETURN(req.layout, ParseLayout(*it));
      auto slot = j.find("slot");
      if (slot != j.end()) {
        if (!slot->is_string()) return InvalidArgument("prepare-incoming: 'slot' must be \"gmem\" or \"hva\"");
        GMEM_ASSIGN_OR_RETURN(SlotMode mode, ParseSlotMode(slot->get<std::string>()));
        req.slot = mode;
      }
      return Status::Ok();
    }
    default:
      return Status::Ok();
  }
}

json LayoutJson(const memory::Layout& layout) {
  json regions = json::array();
  for (const memory::Region& r : layout.regions()) {
    regions.push_back({{"id", r.id}, {"gpa", r.gpa_base}, {"size", r.size_bytes}, {"gmem_offset", r.gmem_offset},
                       {"page_size", r.page_size}, {"flags", r.gmem_flags}});
  }
  return {{"regions", regions}};
}

json Ok(int64_t id) { return {{"id", id}, {"ok", true}}; }

// Invalid UTF-8 (say, from an echoed bad command name) is replaced, never thrown.
std::string Line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

}  // namespace

std::string_view ControlCommandName(ControlCommand command) {
  for (const CommandName& c : kCommands) {
    if (c.command == command) return c.name;
  }
  return "invalid";
}

Expected<ControlRequest> ParseControlRequest(std::string_view line, std::optional<int64_t>* id) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) return InvalidArgument("a request must be a JSON object");
  auto id_it = j.find("id");
  if (id_it == j.end()) return InvalidArgument("missing 'id'");
  if (!id_it->is_number_integer()) return InvalidArgument("'id' must be an integer");
  if (id_it->is_number_unsigned() && id_it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return InvalidArgument("'id' out of range");
  }
  ControlRequest req;
  req.id = id_it->get<int64_t>();
  *id = req.id;
  auto cmd_it = j.find("cmd");
  if (cmd_it == j.end() || !cmd_it->is_string()) return InvalidArgument("missing 'cmd' (a string)");
  std::string cmd = cmd_it->get<std::string>();
  bool known = false;
  for (const CommandName& c : kCommands) {
    if (cmd == c.name) {
      req.command = c.command;
      known = true;
    }
  }
  if (!known) return InvalidArgument("unknown command '" + cmd + "'");
  Status s = ParseArguments(j, req);
  if (!s.ok()) return Status(Code::kInvalidArgument, s.message());
  return req;
}

std::string ErrorReply(std::optional<int64_t> id, const Status& status) {
  json j = {{"id", id ? json(*id) : json(nullptr)}, {"ok", false}, {"error", status.ToString()},
            {"code", std::string(CodeName(status.code()))}};
  return Line(j);
}

std::string OkReply(int64_t id) { return Line(Ok(id)); }

std::string QueryMigrationReply(int64_t id, const std::optional<MigrationProgressBoard::Report>& report) {
  json j = Ok(id);
  if (!report.has_value()) {
    j["state"] = "none";
    return Line(j);
  }
  const MigrationProgress& p = report->progress;
  j["state"] = std::string(MigrationStateName(p.state));
  j["role"] = p.role;
  j["phase"] = p.phase;
  j["pass"] = p.pass;
  j["bytes_sent"] = p.bytes_sent;
  j["bytes_remaining"] = p.bytes_remaining;
  j["dirty_pages"] = p.dirty_pages;
  j["rate_bytes_per_second"] = p.rate_bytes_per_second;
  j["expected_downtime_ms"] = p.expected_downtime_ms;
  if (p.state == MigrationState::kFailed) j["error"] = p.error;
  j["age_ms"] = report->age_ms;
  return Line(j);
}

std::string QueryReply(int64_t id, const VmmInfo& info) {
  json j = Ok(id);
  j["state"] = std::string(VmmStateName(info.state));
  j["incoming"] = info.incoming;
  j["prepared_bytes"] = info.prepared_bytes;
  j["memory_ready"] = info.memory_ready;
  j["layout"] = LayoutJson(info.layout);
  j["slot"] = std::string(SlotModeName(info.slot));
  j["coco"] = std::string(CocoModeName(info.coco));
  j["convert_contents"] = std::string(memory::ConversionContentName(info.contents));
  j["workload"] = {{"name", std::string(WorkloadKindName(info.workload.kind))},
                   {"spec", info.workload.ToString()},
                   {"seed", info.seed},
                   {"steps", info.steps}};
  j["conversions"] = info.conversions;
  json vcpus = json::array();
  for (const VcpuInfo& v : info.vcpus) {
    vcpus.push_back({{"id", v.id}, {"step", v.step}, {"steps_target", v.steps_target}, {"finished", v.finished}});
  }
  j["vcpus"] = vcpus;
  j["guest"] = {{"abi_version", GMEM_GUEST_ABI_VERSION}, {"vcpu_gpa", GMEM_GUEST_VCPU_GPA},
                {"record_gpa", GMEM_GUEST_RECORD_GPA}, {"data_gpa", GMEM_GUEST_DATA_GPA}};
  const AgentInfo& a = info.agent;
  j["agent"] = {{"available", info.agent_available},
                {"provisioned", a.provisioned},
                {"version", std::to_string(agent::kVersionMajor) + "." + std::to_string(agent::kVersionMinor)},
                {"area_gpa", agent::kAreaGpa},
                {"mailbox_gpa", agent::kAreaGpa + agent::kRequestOffset},
                {"bounce_gpa", agent::kAreaGpa + agent::kBounceOffset},
                {"bounce_bytes", agent::kBounceBytes},
                {"pages_per_request", agent::kMaxPagesPerRequest},
                {"measurement", ToHex(a.measurement)},
                {"dirty", std::string(AgentDirtyModeName(a.dirty))},
                {"epoch", a.epoch},
                {"requests", a.counters.requests},
                {"pages_exported", a.counters.pages_exported},
                {"pages_imported", a.counters.pages_imported}};
  return Line(j);
}

std::string MemfdsReply(int64_t id, const memory::Layout& layout) {
  json j = Ok(id);
  j["layout"] = LayoutJson(layout);
  j["fds"] = layout.regions().size();
  return Line(j);
}

std::string AttributesReply(int64_t id, const std::vector<RegionAttributes>& attrs) {
  json regions = json::array();
  for (const RegionAttributes& ra : attrs) {
    json runs = json::array();
    ra.map.ForEachRun([&](const memory::AttrRun& run) {
      runs.push_back({run.first, run.count, std::string(memory::PageAttrName(run.attr))});
    });
    regions.push_back({{"id", ra.region_id}, {"npages", ra.map.npages()}, {"private", ra.map.CountPrivate()},
                       {"runs", runs}});
  }
  json j = Ok(id);
  j["regions"] = regions;
  return Line(j);
}

std::string DirtyLogReply(int64_t id, const std::vector<SlotDirtyLog>& slots) {
  json out = json::array();
  for (const SlotDirtyLog& s : slots) {
    Bytes words;
    ByteWriter w(words);
    for (uint64_t word : s.dirty.words()) w.U64(word);
    out.push_back({{"slot", s.slot}, {"region", s.region_id}, {"gpa", s.gpa}, {"npages", s.dirty.npages()},
                   {"count", s.dirty.Count()}, {"bitmap", Base64Encode(words)}});
  }
  json j = Ok(id);
  j["slots"] = out;
  return Line(j);
}

std::string StateReply(int64_t id, ByteSpan state) {
  json j = Ok(id);
  j["state"] = Base64Encode(state);
  return Line(j);
}

std::string DigestReply(int64_t id, uint64_t memory_digest, uint64_t checksum) {
  json j = Ok(id);
  j["digest"] = DigestHex(memory_digest);
  j["checksum"] = DigestHex(checksum);
  return Line(j);
}

std::string GuestWriteLogReply(int64_t id, const std::vector<std::vector<uint64_t>>& gfns) {
  json j = Ok(id);
  j["vcpus"] = gfns;
  return Line(j);
}

}  // namespace gmem::vmm
