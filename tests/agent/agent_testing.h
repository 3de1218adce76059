#pragma once
// Helpers for the agent tests: a fake platform (pages in host memory, an attribute per page), a
// doorbell that serves the request in-process, and an Endpoint that wires an Agent, its shared
// area and an AgentClient together — a whole guest agent and its host without KVM.

#include <memory>
#include <vector>

#include "agent/agent.h"
#include "agent/agent_client.h"
#include "agent/guest_platform.h"
#include "agent/platform_key.h"

namespace gmem::agent::testing {

inline constexpr std::string_view kPrivateCanary = "GMEMKIT-PRIVATE!";

class FakePlatform final : public GuestPlatform {
 public:
  explicit FakePlatform(uint64_t npages) : pages_(npages, Bytes(kPageBytes)), private_(npages, false) {}

  uint64_t gfn_limit() const override { return pages_.size(); }
  bool IsPrivate(uint64_t gfn) const override { return private_[gfn]; }
  Status ReadPrivatePage(uint64_t gfn, MutableByteSpan out) override;
  Status WritePrivatePage(uint64_t gfn, ByteSpan in) override;
  bool tracks_private_writes() const override { return tracks_; }
  void ResetExportBaseline() override { exported_.clear(); }
  void NoteExported(uint64_t gfn, ByteSpan page) override;
  Expected<uint64_t> CollectDirty(uint64_t cursor, uint32_t max, std::vector<uint64_t>& out) override;

  // Test controls: the guest's view of a page, its attribute, tracking on/off.
  Bytes& page(uint64_t gfn) { return pages_[gfn]; }
  void SetPrivate(uint64_t gfn, bool is_private) { private_[gfn] = is_private; }
  void set_tracks(bool tracks) { tracks_ = tracks; }
  // Makes `gfn` private with contents: the canary, then `seed`-derived bytes.
  void WritePrivateCanaryPage(uint64_t gfn, uint64_t seed);

 private:
  std::vector<Bytes> pages_;
  std::vector<bool> private_;
  std::vector<std::pair<uint64_t, Bytes>> exported_;
  bool tracks_ = true;
};

// Serves the mailbox right away (like gmem-vmm's doorbell).
class InProcessDoorbell final : public Doorbell {
 public:
  InProcessDoorbell(Agent& agent, GuestPlatform& platform, SharedArea area)
      : agent_(agent), platform_(platform), area_(area) {}
  Status Ring() override {
    agent_.Serve(platform_, area_);
    return Status::Ok();
  }
  bool synchronous() const override { return true; }

 private:
  Agent& agent_;
  GuestPlatform& platform_;
  SharedArea area_;
};

// One guest (platform + agent + shared area) and its host (client).
struct Endpoint {
  Endpoint(std::shared_ptr<const PlatformKey> key, const Measurement& measurement, uint64_t npages = 1024);

  Bytes area;  // the shared agent area, kAreaBytes
  FakePlatform platform;
  Agent agent;
  InProcessDoorbell doorbell;
  AgentClient client;
};

std::shared_ptr<const PlatformKey> NewPlatformKey();
Measurement TestMeasurement(std::string_view name);
SessionId TestSession(uint8_t fill);

struct Agreed {
  uint32_t epoch = 0;
  uint64_t key_id = 0;
};
// Runs a transport key agreement between `source` (export) and `target` (import), relaying the
// shares as the hosts would. Fails the test on any error.
Agreed AgreeTransport(Endpoint& source, Endpoint& target, const SessionId& session);

// True when `needle` occurs in `haystack`.
bool Contains(ByteSpan haystack, std::string_view needle);

}  // namespace gmem::agent::testing
