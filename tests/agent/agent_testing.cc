#include "tests/agent/agent_testing.h"

#include <algorithm>
#include <cstring>

#include "agent/key_agreement.h"
#include "tests/testutil/testutil.h"

namespace gmem::agent::testing {

Status FakePlatform::ReadPrivatePage(uint64_t gfn, MutableByteSpan out) {
  if (!private_[gfn]) return InvalidArgument("not private");
  std::memcpy(out.data(), pages_[gfn].data(), kPageBytes);
  return Status::Ok();
}

Status FakePlatform::WritePrivatePage(uint64_t gfn, ByteSpan in) {
  private_[gfn] = true;
  std::memcpy(pages_[gfn].data(), in.data(), kPageBytes);
  return Status::Ok();
}

void FakePlatform::NoteExported(uint64_t gfn, ByteSpan page) {
  for (auto& [g, bytes] : exported_) {
    if (g == gfn) {
      bytes.assign(page.begin(), page.end());
      return;
    }
  }
  exported_.emplace_back(gfn, Bytes(page.begin(), page.end()));
}

Expected<uint64_t> FakePlatform::CollectDirty(uint64_t cursor, uint32_t max, std::vector<uint64_t>& out) {
  for (uint64_t gfn = cursor; gfn < pages_.size(); ++gfn) {
    if (!private_[gfn]) continue;
    if (out.size() >= max) return gfn;
    auto it = std::find_if(exported_.begin(), exported_.end(), [&](const auto& e) { return e.first == gfn; });
    if (it == exported_.end() || it->second != pages_[gfn]) out.push_back(gfn);
  }
  return pages_.size();
}

void FakePlatform::WritePrivateCanaryPage(uint64_t gfn, uint64_t seed) {
  private_[gfn] = true;
  Bytes& p = pages_[gfn];
  std::memcpy(p.data(), kPrivateCanary.data(), kPrivateCanary.size());
  uint64_t s = seed ^ (gfn * 0x9e3779b97f4a7c15ull);
  for (size_t off = 16; off < kPageBytes; off += 8) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    StoreLe<uint64_t>(p.data() + off, s);
  }
}

namespace {

SharedArea AreaOf(Bytes& area) {
  MutableByteSpan a(area);
  return SharedArea{a.subspan(kRequestOffset, kMailboxPageBytes), a.subspan(kResponseOffset, kMailboxPageBytes),
                    a.subspan(kBounceOffset, kBounceBytes)};
}

AgentClient MakeClient(Bytes& area, Doorbell& doorbell) {
  auto client = AgentClient::Create(MutableByteSpan(area), doorbell);
  if (!client.ok()) std::abort();  // the area has the right size by construction
  return std::move(client).value();
}

}  // namespace

Endpoint::Endpoint(std::shared_ptr<const PlatformKey> key, const Measurement& measurement, uint64_t npages)
    : area(kAreaBytes),
      platform(npages),
      agent(std::move(key), measurement),
      doorbell(agent, platform, AreaOf(area)),
      client(MakeClient(area, doorbell)) {}

std::shared_ptr<const PlatformKey> NewPlatformKey() {
  auto key = PlatformKey::Generate();
  EXPECT_OK(key);
  return std::make_shared<const PlatformKey>(std::move(key).value());
}

Measurement TestMeasurement(std::string_view name) { return MeasurementOf("test-measurement", {AsBytes(name)}); }

SessionId TestSession(uint8_t fill) {
  SessionId s{};
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::byte>(fill + i);
  return s;
}

Agreed AgreeTransport(Endpoint& source, Endpoint& target, const SessionId& session) {
  Agreed out;
  auto hello = source.client.Hello(Role::kExport, Mode::kTransport, session);
  EXPECT_OK(hello);
  if (!hello.ok()) return out;
  EXPECT_EQ(hello->flags & kHelloFlagKeyReady, 0u);
  auto imported = target.client.Hello(Role::kImport, Mode::kTransport, session, hello->share);
  EXPECT_OK(imported);
  if (!imported.ok()) return out;
  auto peer = source.client.Peer(imported->share);
  EXPECT_OK(peer);
  if (!peer.ok()) return out;
  EXPECT_EQ(peer->key_id, imported->key_id) << "both agents must derive the same key";
  EXPECT_EQ(peer->epoch, imported->epoch);
  out.epoch = peer->epoch;
  out.key_id = peer->key_id;
  return out;
}

bool Contains(ByteSpan haystack, std::string_view needle) {
  auto n = AsBytes(needle);
  return std::search(haystack.begin(), haystack.end(), n.begin(), n.end()) != haystack.end();
}

}  // namespace gmem::agent::testing
