// agent/agent.{h,cc}, agent_transfer.cc and agent_client.{h,cc}: the whole protocol between two
// agents and their hosts, in process (tests/agent/agent_testing.h): key agreement and the ways a
// relaying host can cheat it, export/import, every way a blob is rejected, DIRTY, the sealed
// (snapshot) mode and its identity rules, and FINISH: the manifest against rollback by omission.

#include <cstring>
#include <random>

#include "agent/blob.h"
#include "agent/key_agreement.h"
#include "tests/agent/agent_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::agent {
namespace {

using ::gmem::testing::FlipByte;
using ::gmem::testing::StatusIs;
using ::gmem::testing::Truncate;
using testing::AgreeTransport;
using testing::Contains;
using testing::Endpoint;
using testing::kPrivateCanary;
using testing::NewPlatformKey;
using testing::TestMeasurement;
using testing::TestSession;

constexpr uint64_t kFirstGfn = 600;  // private pages of the tests: past the agent area (320..511)

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = std::make_unique<Endpoint>(platform_, TestMeasurement("guest"));
    dst_ = std::make_unique<Endpoint>(platform_, TestMeasurement("guest"));
  }
  // Makes `n` source pages from kFirstGfn private, with the canary.
  std::vector<uint64_t> MakePrivate(uint64_t n, uint64_t seed = 1) {
    std::vector<uint64_t> gfns;
    for (uint64_t i = 0; i < n; ++i) {
      src_->platform.WritePrivateCanaryPage(kFirstGfn + i, seed);
      gfns.push_back(kFirstGfn + i);
    }
    return gfns;
  }
  Expected<ExportResult> ExportGfns(std::vector<uint64_t> gfns) { return src_->client.Export(gfns); }
  Status ImportOne(uint64_t gfn, ByteSpan blob) {
    ImportBlob b{gfn, blob};
    return dst_->client.Import(std::span<const ImportBlob>(&b, 1));
  }
  Status ImportAll(const ExportResult& r) {
    std::vector<ImportBlob> blobs;
    for (const auto& b : r.blobs) blobs.push_back(ImportBlob{b.gfn, b.blob});
    return dst_->client.Import(blobs);
  }

  std::shared_ptr<const PlatformKey> platform_ = NewPlatformKey();
  std::unique_ptr<Endpoint> src_;
  std::unique_ptr<Endpoint> dst_;
};

// ---- key agreement ----

TEST_F(AgentTest, KeyAgreementSucceedsBetweenTwoAgents) {
  auto first = AgreeTransport(*src_, *dst_, TestSession(1));
  EXPECT_EQ(first.epoch, 1u);
  EXPECT_NE(first.key_id, 0u);
  auto second = AgreeTransport(*src_, *dst_, TestSession(1));
  EXPECT_EQ(second.epoch, 2u) << "each export session takes the next epoch";
  EXPECT_NE(second.key_id, first.key_id) << "fresh X25519 keys every session";
  EXPECT_EQ(src_->client.stats().round_trips, 4u);
}

TEST_F(AgentTest, HostSubstitutingTheExporterShareIsDetected) {
  auto hello = src_->client.Hello(Role::kExport, Mode::kTransport, TestSession(2));
  ASSERT_OK(hello);
  auto genuine = DecodeShare(hello->share);
  ASSERT_OK(genuine);
  // The relaying host puts its own X25519 key in, keeping the agent's signature...
  auto mitm = X25519Key::Generate();
  ASSERT_OK(mitm);
  Share forged = *genuine;
  forged.key_material = mitm->public_key();
  EXPECT_THAT(dst_->client.Hello(Role::kImport, Mode::kTransport, TestSession(2), EncodeShare(forged)),
              StatusIs(Code::kAuth, "not signed by this platform's key: a host substituted it"));
  // ...or signs it with a platform key of its own.
  auto host_key = NewPlatformKey();
  ASSERT_OK(SignShare(forged, *host_key));
  EXPECT_THAT(dst_->client.Hello(Role::kImport, Mode::kTransport, TestSession(2), EncodeShare(forged)),
              StatusIs(Code::kAuth, "not signed by this platform's key"));
  // The genuine share still works.
  EXPECT_OK(dst_->client.Hello(Role::kImport, Mode::kTransport, TestSession(2), hello->share));
}

TEST_F(AgentTest, HostSubstitutingTheImporterShareIsDetected) {
  auto hello = src_->client.Hello(Role::kExport, Mode::kTransport, TestSession(3));
  ASSERT_OK(hello);
  auto reply = dst_->client.Hello(Role::kImport, Mode::kTransport, TestSession(3), hello->share);
  ASSERT_OK(reply);
  auto genuine = DecodeShare(reply->share);
  ASSERT_OK(genuine);
  auto mitm = X25519Key::Generate();
  ASSERT_OK(mitm);
  Share forged = *genuine;
  forged.key_material = mitm->public_key();
  EXPECT_THAT(src_->client.Peer(EncodeShare(forged)), StatusIs(Code::kAuth, "the importer's share is not signed"));
  // The session is over: no page leaves under it.
  src_->platform.WritePrivateCanaryPage(kFirstGfn, 1);
  EXPECT_THAT(ExportGfns({kFirstGfn}), StatusIs(Code::kProtocol, "SESSION_FAILED"));
}

TEST_F(AgentTest, ShareSignedByAnotherPlatformKeyIsRejected) {
  Endpoint elsewhere(NewPlatformKey(), TestMeasurement("guest"));
  auto hello = src_->client.Hello(Role::kExport, Mode::kTransport, TestSession(4));
  ASSERT_OK(hello);
  EXPECT_THAT(elsewhere.client.Hello(Role::kImport, Mode::kTransport, TestSession(4), hello->share),
              StatusIs(Code::kAuth, "runs on another platform"));
}

TEST_F(AgentTest, ShareOfAnotherSessionOrGuestIsRejected) {
  auto hello = src_->client.Hello(Role::kExport, Mode::kTransport, TestSession(5));
  ASSERT_OK(hello);
  EXPECT_THAT(dst_->client.Hello(Role::kImport, Mode::kTransport, TestSession(6), hello->share),
              StatusIs(Code::kAuth, "another session"));
  Endpoint other_guest(platform_, TestMeasurement("another guest"));
  EXPECT_THAT(other_guest.client.Hello(Role::kImport, Mode::kTransport, TestSession(5), hello->share),
              StatusIs(Code::kAuth, "IDENTITY"));
  EXPECT_THAT(dst_->client.Hello(Role::kImport, Mode::kSealed, TestSession(5), hello->share),
              StatusIs(Code::kProtocol, "expected export/sealed"));
}

TEST_F(AgentTest, ImporterShareMustAnswerThisExporterShare) {
  auto first = src_->client.Hello(Role::kExport, Mode::kTransport, TestSession(7));
  ASSERT_OK(first);
  auto reply = dst_->client.Hello(Role::kImport, Mode::kTransport, TestSession(7), first->share);
  ASSERT_OK(reply);
  ASSERT_OK(src_->client.Hello(Role::kExport, Mode::kTransport, TestSession(7)));  // a new exporter share
  EXPECT_THAT(src_->client.Peer(reply->share), StatusIs(Code::kAuth, "answers another exporter share"));
}

TEST_F(AgentTest, AnAgentWithoutPlatformKeySaysSo) {
  Endpoint bare(nullptr, TestMeasurement("guest"));
  EXPECT_THAT(bare.client.Hello(Role::kExport, Mode::kTransport, TestSession(8)),
              StatusIs(Code::kUnsupported, "no platform key"));
  EXPECT_THAT(bare.client.Export(std::vector<uint64_t>{kFirstGfn}), StatusIs(Code::kProtocol, "BAD_STATE"));
}

// ---- export and import ----

TEST_F(AgentTest, ExportImportMovesPrivatePagesAndNoPlaintext) {
  auto agreed = AgreeTransport(*src_, *dst_, TestSession(9));
  auto gfns = MakePrivate(300);
  for (uint64_t g = kFirstGfn + 300; g < kFirstGfn + 310; ++g) src_->platform.page(g)[0] = std::byte{1};  // shared
  uint64_t trips = src_->client.stats().round_trips;
  auto exported = ExportGfns(gfns);
  ASSERT_OK(exported);
  EXPECT_EQ(src_->client.stats().round_trips - trips, 3u) << "126 pages per round trip";
  ASSERT_EQ(exported->blobs.size(), 300u);
  for (const auto& b : exported->blobs) {
    EXPECT_EQ(b.blob.size(), kBlobBytes);
    EXPECT_FALSE(Contains(b.blob, kPrivateCanary)) << "gfn " << b.gfn;
    auto h = DecodeBlobHeader(b.blob);
    ASSERT_OK(h);
    EXPECT_EQ(h->gfn, b.gfn);
    EXPECT_EQ(h->epoch, agreed.epoch);
  }
  EXPECT_FALSE(Contains(src_->area, kPrivateCanary)) << "no plaintext in the source's shared area";
  ASSERT_OK(ImportAll(*exported));
  EXPECT_FALSE(Contains(dst_->area, kPrivateCanary)) << "no plaintext in the target's shared area";
  for (uint64_t g : gfns) {
    EXPECT_TRUE(dst_->platform.IsPrivate(g));
    EXPECT_EQ(dst_->platform.page(g), src_->platform.page(g)) << "gfn " << g;
  }
  EXPECT_FALSE(dst_->platform.IsPrivate(kFirstGfn + 300));
  EXPECT_EQ(dst_->agent.counters().pages_imported, 300u);
  EXPECT_EQ(dst_->client.stats().pages_imported, 300u);
}

TEST_F(AgentTest, ExportSkipsPagesThatAreNoLongerPrivateAndRefusesOthers) {
  AgreeTransport(*src_, *dst_, TestSession(10));
  MakePrivate(2);
  auto r = ExportGfns({kFirstGfn, kFirstGfn + 5, kFirstGfn + 1});
  ASSERT_OK(r);
  EXPECT_EQ(r->blobs.size(), 2u);
  EXPECT_EQ(r->not_private, std::vector<uint64_t>{kFirstGfn + 5});
  EXPECT_THAT(ExportGfns({400}), StatusIs(Code::kInvalidArgument, "OUT_OF_RANGE")) << "the agent area";
  EXPECT_THAT(ExportGfns({5000}), StatusIs(Code::kInvalidArgument, "OUT_OF_RANGE")) << "not guest RAM";
  EXPECT_THAT(dst_->client.Export(std::vector<uint64_t>{kFirstGfn}), StatusIs(Code::kProtocol, "BAD_STATE"))
      << "an importer does not export";
}

TEST_F(AgentTest, ReplayedBlobIsRejected) {
  AgreeTransport(*src_, *dst_, TestSession(11));
  MakePrivate(1);
  auto r = ExportGfns({kFirstGfn});
  ASSERT_OK(r);
  ASSERT_OK(ImportOne(kFirstGfn, r->blobs[0].blob));
  EXPECT_THAT(ImportOne(kFirstGfn, r->blobs[0].blob), StatusIs(Code::kAuth, "replayed or reordered blob (REPLAY)"));
  EXPECT_THAT(ImportOne(kFirstGfn, r->blobs[0].blob), StatusIs(Code::kProtocol, "SESSION_FAILED"))
      << "a security failure ends the session";
}

TEST_F(AgentTest, ReplayWithinOneRequestIsRejected) {
  AgreeTransport(*src_, *dst_, TestSession(12));
  MakePrivate(1);
  auto r = ExportGfns({kFirstGfn});
  ASSERT_OK(r);
  std::vector<ImportBlob> twice = {{kFirstGfn, r->blobs[0].blob}, {kFirstGfn, r->blobs[0].blob}};
  EXPECT_THAT(dst_->client.Import(twice), StatusIs(Code::kAuth, "REPLAY"));
}

TEST_F(AgentTest, ReorderedBlobIsRejected) {
  AgreeTransport(*src_, *dst_, TestSession(13));
  MakePrivate(1, 1);
  auto old_version = ExportGfns({kFirstGfn});
  ASSERT_OK(old_version);
  src_->platform.WritePrivateCanaryPage(kFirstGfn, 2);  // the guest writes the page again
  auto new_version = ExportGfns({kFirstGfn});
  ASSERT_OK(new_version);
  ASSERT_OK(ImportOne(kFirstGfn, new_version->blobs[0].blob));
  EXPECT_THAT(ImportOne(kFirstGfn, old_version->blobs[0].blob), StatusIs(Code::kAuth, "REPLAY"));
  EXPECT_EQ(dst_->platform.page(kFirstGfn), src_->platform.page(kFirstGfn)) << "the newest version stays";
}

TEST_F(AgentTest, CrossGfnSwappedBlobIsRejected) {
  AgreeTransport(*src_, *dst_, TestSession(14));
  MakePrivate(2);
  auto r = ExportGfns({kFirstGfn, kFirstGfn + 1});
  ASSERT_OK(r);
  // The host hands page A's blob in as page B...
  EXPECT_THAT(ImportOne(kFirstGfn + 1, r->blobs[0].blob), StatusIs(Code::kAuth, "sealed for gfn 600 (WRONG_GFN)"));
  // ...or rewrites the blob's gfn to match: the tag covers it.
  AgreeTransport(*src_, *dst_, TestSession(14));
  r = ExportGfns({kFirstGfn});
  ASSERT_OK(r);
  Bytes moved = r->blobs[0].blob;
  StoreLe<uint64_t>(moved.data() + 8, kFirstGfn + 1);
  EXPECT_THAT(ImportOne(kFirstGfn + 1, moved), StatusIs(Code::kAuth, "the blob failed authentication"));
  EXPECT_FALSE(dst_->platform.IsPrivate(kFirstGfn + 1));
}

TEST_F(AgentTest, BlobOfAnotherEpochIsRejected) {
  auto first = AgreeTransport(*src_, *dst_, TestSession(15));
  MakePrivate(1);
  auto old_session = ExportGfns({kFirstGfn});
  ASSERT_OK(old_session);
  auto second = AgreeTransport(*src_, *dst_, TestSession(15));
  ASSERT_NE(first.epoch, second.epoch);
  EXPECT_THAT(ImportOne(kFirstGfn, old_session->blobs[0].blob), StatusIs(Code::kAuth, "WRONG_EPOCH"));
  // Rewriting the epoch does not help: another session has another key, and the tag covers it.
  AgreeTransport(*src_, *dst_, TestSession(15));
  Bytes relabelled = old_session->blobs[0].blob;
  StoreLe<uint32_t>(relabelled.data() + 16, second.epoch + 1);
  EXPECT_THAT(ImportOne(kFirstGfn, relabelled), StatusIs(Code::kAuth, "AUTH"));
}

TEST_F(AgentTest, TruncatedBlobIsRejected) {
  AgreeTransport(*src_, *dst_, TestSession(16));
  MakePrivate(1);
  auto r = ExportGfns({kFirstGfn});
  ASSERT_OK(r);
  EXPECT_THAT(ImportOne(kFirstGfn, Truncate(r->blobs[0].blob, kBlobBytes - 16)), StatusIs(Code::kProtocol, "MALFORMED"));
  EXPECT_THAT(ImportOne(kFirstGfn, Truncate(r->blobs[0].blob, 32)), StatusIs(Code::kProtocol, "MALFORMED"));
  EXPECT_FALSE(dst_->platform.IsPrivate(kFirstGfn));
  EXPECT_OK(ImportOne(kFirstGfn, r->blobs[0].blob)) << "a malformed request is the host's bug, not an attack";
}

TEST_F(AgentTest, BitFlippedBlobIsRejected) {
  MakePrivate(1);
  for (size_t offset : {size_t{33}, kBlobBytes / 2, kBlobBytes - 1}) {
    AgreeTransport(*src_, *dst_, TestSession(17));
    auto r = ExportGfns({kFirstGfn});
    ASSERT_OK(r);
    EXPECT_THAT(ImportOne(kFirstGfn, FlipByte(r->blobs[0].blob, offset)), StatusIs(Code::kAuth, "AUTH"))
        << "offset " << offset;
    EXPECT_FALSE(dst_->platform.IsPrivate(kFirstGfn));
  }
}

TEST_F(AgentTest, ARejectedRequestWritesNothing) {
  AgreeTransport(*src_, *dst_, TestSession(18));
  MakePrivate(3);
  auto r = ExportGfns({kFirstGfn, kFirstGfn + 1, kFirstGfn + 2});
  ASSERT_OK(r);
  std::vector<ImportBlob> blobs = {{kFirstGfn, r->blobs[0].blob},
                                   {kFirstGfn + 1, r->blobs[1].blob},
                                   {kFirstGfn + 2, r->blobs[1].blob}};  // the last one is wrong
  EXPECT_THAT(dst_->client.Import(blobs), StatusIs(Code::kAuth, "entry 2"));
  for (uint64_t g : {kFirstGfn, kFirstGfn + 1}) {
    EXPECT_FALSE(dst_->platform.IsPrivate(g));
    EXPECT_EQ(dst_->platform.page(g), Bytes(kPageBytes));
  }
}

// ---- DIRTY ----

TEST_F(AgentTest, DirtyReportsPrivatePagesChangedSinceTheirExport) {
  AgreeTransport(*src_, *dst_, TestSession(19));
  auto gfns = MakePrivate(4);
  auto all = src_->client.Dirty();
  ASSERT_OK(all);
  EXPECT_FALSE(all->all);
  EXPECT_EQ(all->gfns, gfns) << "nothing exported yet";
  ASSERT_OK(ExportGfns(gfns));
  auto none = src_->client.Dirty();
  ASSERT_OK(none);
  EXPECT_TRUE(none->gfns.empty());
  src_->platform.page(kFirstGfn + 2)[100] ^= std::byte{1};  // the guest writes a private page
  src_->platform.WritePrivateCanaryPage(kFirstGfn + 10, 3);  // and converts another one
  auto some = src_->client.Dirty();
  ASSERT_OK(some);
  EXPECT_EQ(some->gfns, (std::vector<uint64_t>{kFirstGfn + 2, kFirstGfn + 10}));
  AgreeTransport(*src_, *dst_, TestSession(19));
  auto fresh = src_->client.Dirty();
  ASSERT_OK(fresh);
  EXPECT_EQ(fresh->gfns.size(), 5u) << "a new session starts with nothing exported";
  src_->platform.set_tracks(false);
  auto untracked = src_->client.Dirty();
  ASSERT_OK(untracked);
  EXPECT_TRUE(untracked->all) << "an agent that cannot track answers ALL";
  EXPECT_THAT(dst_->client.Dirty(), StatusIs(Code::kProtocol, "BAD_STATE"));
}

// A raw request through the mailbox: the response header and body.
std::pair<ResponseHeader, Bytes> Raw(Endpoint& e, ByteSpan request_page) {
  std::memcpy(e.area.data() + kRequestOffset, request_page.data(), request_page.size());
  EXPECT_OK(e.doorbell.Ring());
  ByteSpan body;
  auto h = DecodeResponseHeader(ByteSpan(e.area).subspan(kResponseOffset, kMailboxPageBytes), &body);
  EXPECT_OK(h);
  return {h.ok() ? *h : ResponseHeader{}, Bytes(body.begin(), body.end())};
}

Bytes Request(MessageType type, ByteSpan body, uint16_t minor = kVersionMinor) {
  Bytes page(kMailboxPageBytes);
  RequestHeader h;
  h.type = type;
  h.minor = minor;
  h.body_length = static_cast<uint32_t>(body.size());
  h.request_id = 1234;
  EXPECT_OK(EncodeRequest(h, body, page));
  return page;
}

TEST_F(AgentTest, DirtyPaginatesWithACursor) {
  AgreeTransport(*src_, *dst_, TestSession(20));
  auto gfns = MakePrivate(5);
  auto [h1, b1] = Raw(*src_, Request(MessageType::kDirty, EncodeDirtyRequest(DirtyRequest{0, 2})));
  ASSERT_EQ(h1.status, AgentStatus::kOk);
  auto d1 = DecodeDirtyResponse(b1);
  ASSERT_OK(d1);
  EXPECT_EQ(d1->count, 2u);
  EXPECT_EQ(d1->flags, kDirtyFlagMore);
  EXPECT_EQ(d1->next_cursor, kFirstGfn + 2);
  EXPECT_EQ(LoadLe<uint64_t>(src_->area.data() + kBounceOffset + 8), kFirstGfn + 1);
  auto [h2, b2] = Raw(*src_, Request(MessageType::kDirty, EncodeDirtyRequest(DirtyRequest{d1->next_cursor, 10})));
  auto d2 = DecodeDirtyResponse(b2);
  ASSERT_OK(d2);
  EXPECT_EQ(d2->count, 3u);
  EXPECT_EQ(d2->flags, 0u);
}

TEST_F(AgentTest, MalformedRequestsGetAStatusNotACrash) {
  Bytes garbage(kMailboxPageBytes, std::byte{0xa5});
  auto [h, body] = Raw(*src_, garbage);
  EXPECT_EQ(h.status, AgentStatus::kMalformed);
  auto text = DecodeErrorBody(body);
  ASSERT_OK(text);
  EXPECT_NE(text->find("bad magic"), std::string::npos);
  auto [hv, bv] = Raw(*src_, Request(MessageType::kAbort, EncodeAbortRequest({}), kVersionMinor + 1));
  EXPECT_EQ(hv.status, AgentStatus::kVersion);
  EXPECT_EQ(hv.minor, kVersionMinor) << "the agent names its own version";
  EXPECT_EQ(hv.request_id, 1234u);
  auto [he, be] = Raw(*src_, Request(MessageType::kExport, Bytes(8)));
  EXPECT_EQ(he.status, AgentStatus::kMalformed);
  EXPECT_EQ(src_->agent.counters().failures, 3u);
}

// ---- sealed mode (snapshots) ----

TEST_F(AgentTest, SealedSnapshotImportsOnlyForTheSameGuestOnTheSamePlatform) {
  auto gfns = MakePrivate(3);
  SessionId sid = TestSession(21);
  auto sealed = src_->client.Hello(Role::kExport, Mode::kSealed, sid);
  ASSERT_OK(sealed);
  EXPECT_EQ(sealed->flags, kHelloFlagKeyReady) << "no peer needed";
  auto exported = ExportGfns(gfns);
  ASSERT_OK(exported);
  const Bytes& descriptor = sealed->share;  // stored with the snapshot

  // The same guest identity on the same platform, in another VM: imports.
  auto restored = dst_->client.Hello(Role::kImport, Mode::kSealed, sid, descriptor);
  ASSERT_OK(restored);
  EXPECT_EQ(restored->key_id, sealed->key_id);
  EXPECT_TRUE(restored->share.empty());
  ASSERT_OK(ImportAll(*exported));
  for (uint64_t g : gfns) EXPECT_EQ(dst_->platform.page(g), src_->platform.page(g));

  // Another guest identity: says so.
  Endpoint other_guest(platform_, TestMeasurement("another guest"));
  EXPECT_THAT(other_guest.client.Hello(Role::kImport, Mode::kSealed, sid, descriptor),
              StatusIs(Code::kAuth, "only the same guest identity derives the sealing key (IDENTITY)"));
  // Another platform: says so.
  Endpoint other_platform(NewPlatformKey(), TestMeasurement("guest"));
  EXPECT_THAT(other_platform.client.Hello(Role::kImport, Mode::kSealed, sid, descriptor),
              StatusIs(Code::kAuth, "sealed on another platform"));
  // A tampered descriptor (another agent salt) fails the signature.
  EXPECT_THAT(dst_->client.Hello(Role::kImport, Mode::kSealed, sid, FlipByte(descriptor, 90)),
              StatusIs(Code::kAuth, "IDENTITY"));
}

TEST_F(AgentTest, SealedKeysDifferPerSnapshot) {
  auto a = src_->client.Hello(Role::kExport, Mode::kSealed, TestSession(22));
  auto b = src_->client.Hello(Role::kExport, Mode::kSealed, TestSession(22));
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_NE(a->key_id, b->key_id) << "a fresh agent salt every time: a nonce never repeats under a key";
  EXPECT_EQ(b->epoch, a->epoch + 1);
}

TEST_F(AgentTest, AbortEndsTheSession) {
  AgreeTransport(*src_, *dst_, TestSession(23));
  MakePrivate(1);
  ASSERT_OK(src_->client.Abort());
  EXPECT_THAT(ExportGfns({kFirstGfn}), StatusIs(Code::kProtocol, "BAD_STATE"));
}

}  // namespace
}  // namespace gmem::agent

namespace gmem::agent {
namespace {

// A poor man's fuzzer (fuzz/ has no agent target yet): valid requests of every type with random
// bytes flipped, and random pages. The agent must answer each with a response that names the
// request, and never write outside the response page and the bounce buffer.
TEST_F(AgentTest, MutatedRequestsAlwaysGetAnAnswer) {
  AgreeTransport(*src_, *dst_, TestSession(24));
  MakePrivate(4);
  auto exported = ExportGfns({kFirstGfn, kFirstGfn + 1});
  ASSERT_OK(exported);
  ImportRequest import;
  import.entries = {{kFirstGfn, 0, kBlobBytes}, {kFirstGfn + 1, kBlobBytes, kBlobBytes}};
  HelloRequest hello;
  hello.role = Role::kImport;
  hello.mode = Mode::kTransport;
  hello.peer_share = Bytes(kShareBytes, std::byte{3});
  std::vector<Bytes> seeds = {
      Request(MessageType::kHello, EncodeHelloRequest(hello)),
      Request(MessageType::kPeer, EncodePeerRequest(PeerRequest{Bytes(kShareBytes, std::byte{1})})),
      Request(MessageType::kExport, EncodeExportRequest(ExportRequest{{kFirstGfn, kFirstGfn + 1, 3}})),
      Request(MessageType::kImport, EncodeImportRequest(import)),
      Request(MessageType::kDirty, EncodeDirtyRequest(DirtyRequest{0, 3})),
      Request(MessageType::kAbort, EncodeAbortRequest({})),
      Request(MessageType::kFinish, EncodeFinishRequest(FinishRequest{0})),
      Request(MessageType::kFinish, EncodeFinishRequest(FinishRequest{kBlobBytes})),
  };
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 3000; ++i) {
    Endpoint& e = (i % 2 == 0) ? *src_ : *dst_;
    Bytes page = seeds[i % seeds.size()];
    if (i % 97 == 0) {
      page = ::gmem::testing::RandomBytes(rng, kMailboxPageBytes);
    } else {
      for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips) {
        page[rng() % 64] ^= static_cast<std::byte>(1u << (rng() % 8));
      }
    }
    // Blobs for the IMPORT seeds (the bounce buffer is the host's to fill).
    std::memcpy(e.area.data() + kBounceOffset, exported->blobs[0].blob.data(), kBlobBytes);
    std::memcpy(e.area.data() + kBounceOffset + kBlobBytes, exported->blobs[1].blob.data(), kBlobBytes);
    const Bytes reserved(e.area.begin() + kResponseOffset + kMailboxPageBytes, e.area.begin() + kBounceOffset);
    std::memcpy(e.area.data() + kRequestOffset, page.data(), page.size());
    ASSERT_OK(e.doorbell.Ring());
    ByteSpan body;
    auto h = DecodeResponseHeader(ByteSpan(e.area).subspan(kResponseOffset, kMailboxPageBytes), &body);
    ASSERT_OK(h) << "iteration " << i;
    EXPECT_EQ(h->request_id, LoadLe<uint64_t>(page.data() + 16)) << "iteration " << i;
    if (h->status != AgentStatus::kOk) {
      EXPECT_OK(DecodeErrorBody(body)) << "iteration " << i;
    }
    ASSERT_TRUE(std::equal(reserved.begin(), reserved.end(), e.area.begin() + kResponseOffset + kMailboxPageBytes))
        << "the agent wrote into the reserved part of the area";
    if (i % 500 == 0) AgreeTransport(*src_, *dst_, TestSession(24));
  }
}

}  // namespace
}  // namespace gmem::agent

namespace gmem::agent {
namespace {

// ---- FINISH (§4.7): the manifest ----

class FinishTest : public AgentTest {
 protected:
  // A transport session; `n` private pages from kFirstGfn exported and all imported.
  void MoveAll(uint8_t session, uint64_t n) {
    AgreeTransport(*src_, *dst_, TestSession(session));
    exported_ = ExportGfns(MakePrivate(n, session)).value();
    ASSERT_OK(ImportAll(exported_));
  }
  ExportResult exported_;
};

TEST_F(FinishTest, IntactTransferFinishesOnBothSides) {
  MoveAll(40, 130);  // more than one request
  auto finished = src_->client.Finish();
  ASSERT_OK(finished);
  EXPECT_EQ(finished->count, 130u);
  EXPECT_FALSE(finished->untracked);
  ASSERT_EQ(finished->manifest.size(), kBlobBytes);
  auto h = DecodeBlobHeader(finished->manifest);
  ASSERT_OK(h);
  EXPECT_EQ(h->gfn, kManifestGfn);
  EXPECT_EQ(h->sequence, 131u) << "the manifest takes the session's next sequence";
  EXPECT_FALSE(Contains(finished->manifest, "GMFN")) << "the manifest travels sealed";
  auto checked = dst_->client.FinishImport(finished->manifest);
  ASSERT_OK(checked);
  EXPECT_EQ(checked->count, 130u);
  EXPECT_FALSE(checked->untracked);
  EXPECT_TRUE(checked->manifest.empty());
}

TEST_F(FinishTest, AnEmptySessionFinishesWithAnEmptyManifest) {
  AgreeTransport(*src_, *dst_, TestSession(41));
  auto finished = src_->client.Finish();
  ASSERT_OK(finished);
  EXPECT_EQ(finished->count, 0u);
  auto checked = dst_->client.FinishImport(finished->manifest);
  ASSERT_OK(checked);
  EXPECT_EQ(checked->count, 0u);
}

TEST_F(FinishTest, ImporterDetectsAWithheldNewestBlob) {
  AgreeTransport(*src_, *dst_, TestSession(42));
  auto gfns = MakePrivate(3);
  auto first = ExportGfns(gfns);
  ASSERT_OK(first);
  src_->platform.WritePrivateCanaryPage(kFirstGfn + 1, 9);  // the guest writes a page again
  auto second = ExportGfns({kFirstGfn + 1});
  ASSERT_OK(second);
  ASSERT_OK(ImportAll(*first));  // the host withholds the newest blob of kFirstGfn + 1
  auto finished = src_->client.Finish();
  ASSERT_OK(finished);
  EXPECT_THAT(dst_->client.FinishImport(finished->manifest),
              StatusIs(Code::kAuth, "the same number of private pages (3), but other pages or other versions: a "
                                    "page's newest blob was withheld or replayed (INCOMPLETE)"));
  EXPECT_THAT(ImportAll(*second), StatusIs(Code::kProtocol, "SESSION_FAILED")) << "INCOMPLETE ends the session";
}

TEST_F(FinishTest, ImporterDetectsAWithheldPage) {
  AgreeTransport(*src_, *dst_, TestSession(43));
  auto exported = ExportGfns(MakePrivate(3));
  ASSERT_OK(exported);
  ASSERT_OK(ImportOne(kFirstGfn, exported->blobs[0].blob));
  ASSERT_OK(ImportOne(kFirstGfn + 2, exported->blobs[2].blob));
  auto finished = src_->client.Finish();
  ASSERT_OK(finished);
  EXPECT_THAT(dst_->client.FinishImport(finished->manifest),
              StatusIs(Code::kAuth, "not the exporter's latest: 2 private pages here, 3 in the manifest (INCOMPLETE)"));
}

TEST_F(FinishTest, ImporterDetectsAPrivatePageItNeverImported) {
  AgreeTransport(*src_, *dst_, TestSession(44));
  auto exported = ExportGfns(MakePrivate(2));
  ASSERT_OK(exported);
  ASSERT_OK(ImportOne(kFirstGfn, exported->blobs[0].blob));
  dst_->platform.SetPrivate(kFirstGfn + 1, true);  // the final attributes: private, with stale contents
  auto finished = src_->client.Finish();
  ASSERT_OK(finished);
  EXPECT_THAT(dst_->client.FinishImport(finished->manifest),
              StatusIs(Code::kAuth, "private page 601 was never imported in this session (withheld) (INCOMPLETE)"));
}

TEST_F(FinishTest, ImporterDetectsAnExtraPrivatePage) {
  MoveAll(45, 3);
  dst_->platform.SetPrivate(kFirstGfn + 100, true);
  auto finished = src_->client.Finish();
  ASSERT_OK(finished);
  EXPECT_THAT(dst_->client.FinishImport(finished->manifest),
              StatusIs(Code::kAuth, "4 private pages here, 3 in the manifest (INCOMPLETE)"));
}

TEST_F(FinishTest, ManifestOfAnotherEpochOrSessionIsRejected) {
  MoveAll(46, 2);
  auto old_manifest = src_->client.Finish();
  ASSERT_OK(old_manifest);
  // The next session of the same exporter: another epoch.
  MoveAll(47, 2);
  EXPECT_THAT(dst_->client.FinishImport(old_manifest->manifest), StatusIs(Code::kAuth, "WRONG_EPOCH"));
  // Another exporter whose session has the same epoch: another key.
  Endpoint other(platform_, TestMeasurement("guest"));
  auto agreed = AgreeTransport(other, *dst_, TestSession(46));
  ASSERT_EQ(agreed.epoch, DecodeBlobHeader(old_manifest->manifest)->epoch);
  EXPECT_THAT(dst_->client.FinishImport(old_manifest->manifest),
              StatusIs(Code::kAuth, "the manifest failed authentication (altered, or sealed under another key) (AUTH)"));
}

TEST_F(FinishTest, PageBlobHandedInAsTheManifestIsRejected) {
  MoveAll(48, 1);
  EXPECT_THAT(dst_->client.FinishImport(exported_.blobs[0].blob),
              StatusIs(Code::kProtocol, "a blob sealed for gfn 600, not a manifest (MALFORMED)"));
  EXPECT_THAT(dst_->client.FinishImport(exported_.blobs[0].blob), StatusIs(Code::kProtocol, "SESSION_FAILED"));
  EXPECT_THAT(dst_->client.FinishImport(Truncate(exported_.blobs[0].blob, 100)),
              StatusIs(Code::kInvalidArgument, "a manifest is 4144 bytes"));
}

TEST_F(FinishTest, TamperedManifestFailsAuthentication) {
  for (size_t offset : {size_t{24}, size_t{32}, size_t{40}, kBlobBytes / 2, kBlobBytes - 1}) {
    MoveAll(49, 2);
    auto finished = src_->client.Finish();
    ASSERT_OK(finished);
    EXPECT_THAT(dst_->client.FinishImport(FlipByte(finished->manifest, offset)), StatusIs(Code::kAuth, "AUTH"))
        << "offset " << offset;
  }
}

TEST_F(FinishTest, ManifestSequenceMustBeAboveEveryImportedBlob) {
  // The test plays a rogue exporter: with the platform key it derives the sealing key of a sealed
  // session and seals a blob whose sequence the manifest's does not exceed.
  SessionId sid = TestSession(50);
  auto sealed = src_->client.Hello(Role::kExport, Mode::kSealed, sid);
  ASSERT_OK(sealed);
  auto descriptor = DecodeShare(sealed->share);
  ASSERT_OK(descriptor);
  auto key = DeriveSealingKey(*platform_, descriptor->measurement, descriptor->key_material, sid, sealed->epoch);
  ASSERT_OK(key);
  auto cipher = BlobCipher::Create(*key);
  ASSERT_OK(cipher);
  src_->platform.WritePrivateCanaryPage(kFirstGfn, 1);
  Bytes forged(kBlobBytes);
  ASSERT_OK(cipher->Seal(BlobHeader{kFirstGfn + 1, sealed->epoch, 10}, src_->platform.page(kFirstGfn), forged));
  auto exported = ExportGfns({kFirstGfn});  // sequence 1
  ASSERT_OK(exported);
  auto finished = src_->client.Finish();  // sequence 2
  ASSERT_OK(finished);
  ASSERT_OK(dst_->client.Hello(Role::kImport, Mode::kSealed, sid, sealed->share));
  ASSERT_OK(ImportAll(*exported));
  ASSERT_OK(ImportOne(kFirstGfn + 1, forged));
  EXPECT_THAT(dst_->client.FinishImport(finished->manifest),
              StatusIs(Code::kAuth, "sequence 2 is not above every blob imported in this session (10)"));
}

TEST_F(FinishTest, ExporterRefusesWhileAPrivatePageIsDirtyOrWasNeverExported) {
  AgreeTransport(*src_, *dst_, TestSession(51));
  auto gfns = MakePrivate(3);
  ASSERT_OK(ExportGfns(gfns));
  src_->platform.page(kFirstGfn + 1)[200] ^= std::byte{1};  // the guest writes a private page
  EXPECT_THAT(src_->client.Finish(),
              StatusIs(Code::kProtocol, "page 601 changed since its last export: export it before FINISH (BAD_STATE)"));
  ASSERT_OK(ExportGfns({kFirstGfn + 1}));
  src_->platform.WritePrivateCanaryPage(kFirstGfn + 7, 2);  // and converts another one
  EXPECT_THAT(src_->client.Finish(), StatusIs(Code::kProtocol, "private page 607 was never exported in this session"));
  src_->platform.set_tracks(false);  // without tracking, the walk finds it
  EXPECT_THAT(src_->client.Finish(), StatusIs(Code::kProtocol, "private page 607 was never exported in this session"));
  src_->platform.set_tracks(true);
  ASSERT_OK(ExportGfns({kFirstGfn + 7}));
  auto finished = src_->client.Finish();
  ASSERT_OK(finished) << "a refused FINISH does not end the session";
  EXPECT_EQ(finished->count, 4u);
}

TEST_F(FinishTest, AfterFinishOnlyHelloAndAbort) {
  MoveAll(52, 2);
  auto finished = src_->client.Finish();
  ASSERT_OK(finished);
  for (auto st : {ExportGfns({kFirstGfn}).status(), src_->client.Dirty().status(), src_->client.Finish().status()}) {
    EXPECT_THAT(st, StatusIs(Code::kProtocol, "the session is finished"));
  }
  ASSERT_OK(dst_->client.FinishImport(finished->manifest));
  EXPECT_THAT(ImportAll(exported_), StatusIs(Code::kProtocol, "the session is finished (FINISH was its last word)"));
  EXPECT_THAT(dst_->client.FinishImport(finished->manifest), StatusIs(Code::kProtocol, "BAD_STATE"));
  // HELLO starts over; the new export session has exported nothing yet.
  AgreeTransport(*src_, *dst_, TestSession(52));
  EXPECT_THAT(src_->client.Finish(), StatusIs(Code::kProtocol, "was never exported in this session"));
  ASSERT_OK(ExportGfns({kFirstGfn, kFirstGfn + 1}));
  EXPECT_OK(src_->client.Finish());
  ASSERT_OK(src_->client.Abort());
  EXPECT_THAT(src_->client.Finish(), StatusIs(Code::kProtocol, "FINISH needs a session whose key agreement is complete"));
}

TEST_F(FinishTest, AnAgentThatCannotTrackSaysUntracked) {
  src_->platform.set_tracks(false);
  MoveAll(53, 2);
  src_->platform.page(kFirstGfn)[300] ^= std::byte{1};  // unseen: the agent cannot track
  auto finished = src_->client.Finish();
  ASSERT_OK(finished);
  EXPECT_TRUE(finished->untracked);
  auto checked = dst_->client.FinishImport(finished->manifest);
  ASSERT_OK(checked);
  EXPECT_TRUE(checked->untracked) << "the importer learns freshness was not checked";
  EXPECT_EQ(checked->count, 2u);
}

TEST_F(FinishTest, FinishNeedsAReadySessionAndTheRightLength) {
  EXPECT_THAT(src_->client.Finish(), StatusIs(Code::kProtocol, "BAD_STATE"));
  ASSERT_OK(src_->client.Hello(Role::kExport, Mode::kTransport, TestSession(54)));
  EXPECT_THAT(src_->client.Finish(), StatusIs(Code::kProtocol, "key agreement is complete"));
  AgreeTransport(*src_, *dst_, TestSession(54));
  auto [he, be] = Raw(*src_, Request(MessageType::kFinish, EncodeFinishRequest(FinishRequest{kBlobBytes})));
  EXPECT_EQ(he.status, AgentStatus::kMalformed);
  auto [hi, bi] = Raw(*dst_, Request(MessageType::kFinish, EncodeFinishRequest(FinishRequest{0})));
  EXPECT_EQ(hi.status, AgentStatus::kMalformed);
  auto [hm, bm] = Raw(*src_, Request(MessageType::kFinish, EncodeFinishRequest(FinishRequest{0}), 0));
  EXPECT_EQ(hm.status, AgentStatus::kMalformed) << "FINISH is a 1.1 message";
  auto text = DecodeErrorBody(bm);
  ASSERT_OK(text);
  EXPECT_EQ(*text, "FINISH is a protocol 1.1 message, the request says 1.0");
  // None of these ended the sessions.
  auto finished = src_->client.Finish();
  ASSERT_OK(finished);
  EXPECT_OK(dst_->client.FinishImport(finished->manifest));
}

// A 1.0 agent: the response headers name minor 0.
class OldAgentDoorbell final : public Doorbell {
 public:
  explicit OldAgentDoorbell(Endpoint& e) : e_(e) {}
  Status Ring() override {
    MutableByteSpan a(e_.area);
    e_.agent.Serve(e_.platform, SharedArea{a.subspan(kRequestOffset, kMailboxPageBytes),
                                           a.subspan(kResponseOffset, kMailboxPageBytes),
                                           a.subspan(kBounceOffset, kBounceBytes)});
    StoreLe<uint16_t>(e_.area.data() + kResponseOffset + 6, 0);
    return Status::Ok();
  }
  bool synchronous() const override { return true; }

 private:
  Endpoint& e_;
};

TEST_F(FinishTest, TheClientSpeaksToA10AgentButDoesNotSendItFinish) {
  OldAgentDoorbell doorbell(*src_);
  auto client = AgentClient::Create(MutableByteSpan(src_->area), doorbell);
  ASSERT_OK(client);
  ASSERT_OK(client->Hello(Role::kExport, Mode::kSealed, TestSession(55)));
  EXPECT_EQ(LoadLe<uint16_t>(src_->area.data() + kRequestOffset + 6), 0u) << "1.0 messages go out as 1.0";
  EXPECT_THAT(client->Finish(), StatusIs(Code::kUnsupported, "FINISH needs protocol 1.1, the agent speaks 1.0"));
  EXPECT_THAT(client->FinishImport(Bytes(kBlobBytes)), StatusIs(Code::kUnsupported, "the agent speaks 1.0"));
  EXPECT_EQ(src_->agent.counters().requests, 1u) << "nothing was sent";
}

}  // namespace
}  // namespace gmem::agent
