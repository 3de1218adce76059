#include "migrate/vmm_client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "transport/sockets.h"

namespace gmem::migrate {

using nlohmann::json;

namespace {

constexpr size_t kMaxReplyBytes = size_t{64} << 20;
constexpr size_t kMaxFds = 64;

// Standard base64 with padding, as the protocol's bitmaps use it.
Expected<std::vector<uint64_t>> DecodeBitmap(const std::string& text, uint64_t npages) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> bytes;
  bytes.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    int v = value(c);
    if (v < 0) return CorruptError("dirty-log: bitmap is not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  uint64_t nwords = (npages + 63) / 64;
  if (bytes.size() != nwords * 8) return CorruptError("dirty-log: bitmap size does not match the region");
  std::vector<uint64_t> words(nwords);
  for (uint64_t w = 0; w < nwords; ++w) {
    uint64_t word = 0;
    for (int b = 7; b >= 0; --b) word = (word << 8) | bytes[w * 8 + static_cast<size_t>(b)];
    words[w] = word;
  }
  return words;
}

memory::PageAttr ParseAttr(const json& name) {
  return name == "private" ? memory::PageAttr::kPrivate : memory::PageAttr::kShared;
}

}  // namespace

json LayoutToJson(const format::LayoutRecord& layout) {
  json regions = json::array();
  for (const format::Region& r : layout.regions) {
    regions.push_back({{"id", r.id},
                       {"gpa", r.gpa_base},
                       {"size", r.size_bytes},
                       {"gmem_offset", r.gmem_offset},
                       {"page_size", r.page_size},
                       {"flags", r.gmem_flags}});
  }
  return {{"regions", regions}};
}

Expected<format::LayoutRecord> LayoutFromJson(const json& layout) {
  format::LayoutRecord out;
  try {
    for (const json& r : layout.at("regions")) {
      format::Region region;
      region.id = r.at("id").get<uint32_t>();
      region.gpa_base = r.at("gpa").get<uint64_t>();
      region.size_bytes = r.at("size").get<uint64_t>();
      region.gmem_offset = r.at("gmem_offset").get<uint64_t>();
      region.page_size = r.at("page_size").get<uint32_t>();
      region.gmem_flags = r.at("flags").get<uint64_t>();
      out.regions.push_back(region);
    }
  } catch (const json::exception& e) {
    return ProtocolError(std::string("the VMM's layout is malformed: ") + e.what());
  }
  GMEM_RETURN_IF_ERROR(format::ValidateLayout(out).WithContext("the VMM's layout"));
  return out;
}

Expected<VmmClient> VmmClient::Connect(const std::string& path, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto fd = transport::ConnectUnix(path);
    if (fd.ok()) return VmmClient(std::move(fd).value(), path);
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::move(fd).status().WithContext("VMM control socket");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status VmmClient::Send(const std::string& line) {
  size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd_.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(Code::kIo, "VMM control socket: send");
    sent += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Expected<json> VmmClient::ReadReply(std::vector<UniqueFd>* fds) {
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      json reply = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (reply.is_discarded() || !reply.is_object()) return ProtocolError("the VMM's reply is not a JSON object");
      return reply;
    }
    if (buffer_.size() > kMaxReplyBytes) return ProtocolError("the VMM's reply is too long");
    std::byte data[65536];
    std::vector<UniqueFd> got;
    GMEM_ASSIGN_OR_RETURN(size_t n, transport::RecvWithFds(fd_.get(), data, got, kMaxFds));
    for (UniqueFd& fd : got) {
      if (fds != nullptr) fds->push_back(std::move(fd));
    }
    if (n == 0) return Status(Code::kPeerAborted, "the VMM closed the control socket");
    buffer_.append(reinterpret_cast<const char*>(data), n);
  }
}

Expected<json> VmmClient::Call(json request, std::vector<UniqueFd>* fds) {
  request["id"] = next_id_++;
  GMEM_RETURN_IF_ERROR(Send(request.dump() + "\n"));
  return ReadReply(fds);
}

Expected<json> VmmClient::Ok(json request, std::vector<UniqueFd>* fds) {
  std::string cmd = request.value("cmd", std::string("?"));
  GMEM_ASSIGN_OR_RETURN(json reply, Call(std::move(request), fds));
  if (!reply.value("ok", false)) {
    // The VMM's message may name the command itself ("prepare-incoming: ..."): say it once.
    std::string error = reply.value("error", std::string("failed"));
    if (error.starts_with(cmd + ": ")) error.erase(0, cmd.size() + 2);
    return ProtocolError("VMM " + cmd + ": " + error);
  }
  return reply;
}

Status VmmClient::Pause() { return Ok({{"cmd", "pause"}}).status(); }
Status VmmClient::Resume() { return Ok({{"cmd", "resume"}}).status(); }
Status VmmClient::Quit() { return Ok({{"cmd", "quit"}}).status(); }

Expected<VmmInfo> VmmClient::Query() {
  GMEM_ASSIGN_OR_RETURN(json info, Ok({{"cmd", "query"}}));
  VmmInfo out;
  out.state = info.value("state", std::string());
  out.kvm_dirty_log = info.value("slot", std::string()) == "hva";
  out.conversions = info.value("conversions", uint64_t{0});
  const json agent = info.value("agent", json::object());
  out.agent_available = agent.value("available", false);
  out.agent_provisioned = agent.value("provisioned", false);
  return out;
}

Expected<format::LayoutRecord> VmmClient::GetMemfds(std::vector<UniqueFd>& fds) {
  fds.clear();
  GMEM_ASSIGN_OR_RETURN(json reply, Ok({{"cmd", "get-memfds"}}, &fds));
  GMEM_ASSIGN_OR_RETURN(format::LayoutRecord layout, LayoutFromJson(reply.value("layout", json())));
  if (fds.size() != layout.regions.size()) return ProtocolError("get-memfds: fd count does not match the layout");
  return layout;
}

Expected<std::vector<RegionAttributes>> VmmClient::GetAttributes(const format::LayoutRecord& layout) {
  GMEM_ASSIGN_OR_RETURN(json reply, Ok({{"cmd", "get-attributes"}}));
  std::vector<RegionAttributes> out;
  try {
    for (const json& r : reply.at("regions")) {
      uint32_t id = r.at("id").get<uint32_t>();
      const format::Region* region = layout.Find(id);
      if (region == nullptr) return ProtocolError("get-attributes: unknown region " + std::to_string(id));
      std::vector<memory::AttrRun> runs;
      for (const json& run : r.at("runs")) {
        runs.push_back({run.at(0).get<uint64_t>(), run.at(1).get<uint64_t>(), ParseAttr(run.at(2))});
      }
      GMEM_ASSIGN_OR_RETURN(auto map, memory::AttributeMap::FromRuns(region->npages(), runs));
      out.push_back({id, std::move(map)});
    }
  } catch (const json::exception& e) {
    return ProtocolError(std::string("get-attributes: malformed reply: ") + e.what());
  }
  if (out.size() != layout.regions.size()) return ProtocolError("get-attributes: region count does not match");
  return out;
}

Status VmmClient::SetAttributes(const std::vector<RegionAttributes>& regions) {
  json list = json::array();
  for (const RegionAttributes& r : regions) {
    json runs = json::array();
    r.map.ForEachRun([&](const memory::AttrRun& run) {
      runs.push_back({run.first, run.count, run.attr == memory::PageAttr::kPrivate ? "private" : "shared"});
    });
    list.push_back({{"id", r.region_id}, {"npages", r.map.npages()}, {"runs", runs}});
  }
  return Ok({{"cmd", "set-attributes"}, {"regions", list}}).status();
}

Expected<std::vector<std::vector<uint64_t>>> VmmClient::DirtyLog(const format::LayoutRecord& layout) {
  GMEM_ASSIGN_OR_RETURN(json reply, Ok({{"cmd", "dirty-log"}}));
  std::vector<std::vector<uint64_t>> out(layout.regions.size());
  try {
    for (const json& slot : reply.at("slots")) {
      uint32_t id = slot.at("region").get<uint32_t>();
      size_t index = 0;
      while (index < layout.regions.size() && layout.regions[index].id != id) ++index;
      if (index == layout.regions.size()) return ProtocolError("dirty-log: unknown region " + std::to_string(id));
      GMEM_ASSIGN_OR_RETURN(out[index],
                            DecodeBitmap(slot.at("bitmap").get<std::string>(), layout.regions[index].npages()));
    }
  } catch (const json::exception& e) {
    return ProtocolError(std::string("dirty-log: malformed reply: ") + e.what());
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].empty()) return ProtocolError("dirty-log: no bitmap for region " + std::to_string(layout.regions[i].id));
  }
  return out;
}

Expected<std::string> VmmClient::GetState() {
  GMEM_ASSIGN_OR_RETURN(json reply, Ok({{"cmd", "get-state"}}));
  if (!reply.contains("state") || !reply["state"].is_string()) return ProtocolError("get-state: no state");
  return reply["state"].get<std::string>();
}

Status VmmClient::SetState(const std::string& state) {
  return Ok({{"cmd", "set-state"}, {"state", state}}).status();
}

Expected<VmmDigest> VmmClient::Digest() {
  GMEM_ASSIGN_OR_RETURN(json reply, Ok({{"cmd", "digest"}}));
  return VmmDigest{reply.value("digest", std::string()), reply.value("checksum", std::string())};
}

Status VmmClient::PrepareIncoming(const format::LayoutRecord& layout, std::vector<UniqueFd>& fds) {
  fds.clear();
  GMEM_ASSIGN_OR_RETURN(json reply, Ok({{"cmd", "prepare-incoming"}, {"layout", LayoutToJson(layout)}}, &fds));
  GMEM_ASSIGN_OR_RETURN(format::LayoutRecord got, LayoutFromJson(reply.value("layout", json())));
  if (!(got == layout)) return ProtocolError("prepare-incoming: the VMM built another layout");
  if (fds.size() != layout.regions.size()) return ProtocolError("prepare-incoming: fd count does not match");
  return Status::Ok();
}

Expected<VmmControl*> AttachVmmControl(VmmControl* given, const std::string& socket, int timeout_ms,
                                       std::unique_ptr<VmmClient>& owned) {
  if (given != nullptr) return given;
  GMEM_ASSIGN_OR_RETURN(VmmClient client, VmmClient::Connect(socket, timeout_ms));
  owned = std::make_unique<VmmClient>(std::move(client));
  return owned.get();
}

Expected<std::unique_ptr<agent::Doorbell>> VmmClient::ConnectAgentDoorbell() {
  GMEM_ASSIGN_OR_RETURN(agent::VmmSocketDoorbell doorbell, agent::VmmSocketDoorbell::Connect(path_));
  return std::unique_ptr<agent::Doorbell>(std::make_unique<agent::VmmSocketDoorbell>(std::move(doorbell)));
}

}  // namespace gmem::migrate
