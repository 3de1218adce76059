// agent/messages.{h,cc}: mailbox headers and bodies (docs/agent-protocol.md §3, §4), and that
// every decoder is strict.

#include "agent/messages.h"

#include <algorithm>

#include "tests/testutil/testutil.h"

namespace gmem::agent {
namespace {

using ::gmem::testing::FlipByte;
using ::gmem::testing::StatusIs;
using ::gmem::testing::Truncate;

Bytes RequestPage(MessageType type, ByteSpan body, uint64_t id = 42) {
  Bytes page(kMailboxPageBytes);
  RequestHeader h;
  h.type = type;
  h.minor = MessageMinor(type);  // as the client sends it (§1)
  h.body_length = static_cast<uint32_t>(body.size());
  h.request_id = id;
  EXPECT_OK(EncodeRequest(h, body, page));
  return page;
}

TEST(MessagesTest, RequestHeaderRoundTrip) {
  Bytes body = EncodeDirtyRequest(DirtyRequest{5, 10});
  Bytes page = RequestPage(MessageType::kDirty, body);
  ByteSpan got;
  auto h = DecodeRequestHeader(page, &got);
  ASSERT_OK(h);
  EXPECT_EQ(h->type, MessageType::kDirty);
  EXPECT_EQ(h->request_id, 42u);
  EXPECT_EQ(Bytes(got.begin(), got.end()), body);
  auto q = DecodeDirtyRequest(got);
  ASSERT_OK(q);
  EXPECT_EQ(q->cursor, 5u);
  EXPECT_EQ(q->max_entries, 10u);
}

TEST(MessagesTest, RequestHeaderRejections) {
  Bytes page = RequestPage(MessageType::kAbort, EncodeAbortRequest({}));
  ByteSpan body;
  EXPECT_THAT(DecodeRequestHeader(FlipByte(page, 0), &body), StatusIs(Code::kCorrupt, "bad magic"));
  EXPECT_THAT(DecodeRequestHeader(FlipByte(page, 4), &body), StatusIs(Code::kIncompatible, "version"));
  EXPECT_THAT(DecodeRequestHeader(FlipByte(page, 8, 0x40), &body), StatusIs(Code::kCorrupt, "unknown request type"));
  EXPECT_THAT(DecodeRequestHeader(FlipByte(page, 10), &body), StatusIs(Code::kCorrupt, "reserved"));
  EXPECT_THAT(DecodeRequestHeader(FlipByte(page, 13, 0x10), &body), StatusIs(Code::kCorrupt, "body_length"));
  EXPECT_THAT(DecodeRequestHeader(FlipByte(page, 24), &body), StatusIs(Code::kCorrupt, "reserved"));
  EXPECT_THAT(DecodeRequestHeader(Truncate(page, 20), &body), StatusIs(Code::kCorrupt, "truncated"));
}

TEST(MessagesTest, HelloAndPeerBodies) {
  HelloRequest q;
  q.role = Role::kImport;
  q.mode = Mode::kSealed;
  q.session_id[3] = std::byte{7};
  q.peer_share = Bytes(kShareBytes, std::byte{1});
  auto back = DecodeHelloRequest(EncodeHelloRequest(q));
  ASSERT_OK(back);
  EXPECT_EQ(back->role, Role::kImport);
  EXPECT_EQ(back->mode, Mode::kSealed);
  EXPECT_EQ(back->session_id, q.session_id);
  EXPECT_EQ(back->peer_share, q.peer_share);
  Bytes enc = EncodeHelloRequest(q);
  EXPECT_THAT(DecodeHelloRequest(FlipByte(enc, 0, 0x04)), StatusIs(Code::kCorrupt, "role"));
  EXPECT_THAT(DecodeHelloRequest(FlipByte(enc, 1, 0x04)), StatusIs(Code::kCorrupt, "mode"));
  EXPECT_THAT(DecodeHelloRequest(FlipByte(enc, 4, 0x01)), StatusIs(Code::kCorrupt, "share_length"));
  EXPECT_THAT(DecodeHelloRequest(Truncate(enc, enc.size() - 1)), StatusIs(Code::kCorrupt, "truncated"));
  Bytes longer = enc;
  longer.push_back(std::byte{0});
  EXPECT_THAT(DecodeHelloRequest(longer), StatusIs(Code::kCorrupt, "trailing"));
  EXPECT_THAT(DecodePeerRequest(EncodePeerRequest(PeerRequest{Bytes(10)})), StatusIs(Code::kCorrupt, "share_length"));
}

TEST(MessagesTest, ExportBodiesAreBounded) {
  ExportRequest q;
  for (uint64_t i = 0; i < kMaxPagesPerRequest; ++i) q.gfns.push_back(1000 + i);
  auto back = DecodeExportRequest(EncodeExportRequest(q));
  ASSERT_OK(back);
  EXPECT_EQ(back->gfns, q.gfns);
  q.gfns.push_back(1);
  EXPECT_THAT(DecodeExportRequest(EncodeExportRequest(q)), StatusIs(Code::kCorrupt, "outside 1..126"));
  EXPECT_THAT(DecodeExportRequest(EncodeExportRequest(ExportRequest{})), StatusIs(Code::kCorrupt, "outside 1..126"));

  ExportResponse s;
  s.entries = {ExportEntry{5, 0, kBlobBytes, AgentStatus::kOk}, ExportEntry{6, 0, 0, AgentStatus::kNotPrivate}};
  auto sback = DecodeExportResponse(EncodeExportResponse(s));
  ASSERT_OK(sback);
  EXPECT_EQ(sback->entries, s.entries);
  s.entries[0].offset = kBounceBytes - 100;  // the blob would run past the bounce buffer
  EXPECT_THAT(DecodeExportResponse(EncodeExportResponse(s)), StatusIs(Code::kCorrupt, "outside the bounce buffer"));
}

TEST(MessagesTest, ImportAndDirtyBodies) {
  ImportRequest q;
  q.entries = {ImportEntry{9, 0, kBlobBytes}, ImportEntry{10, kBlobBytes, kBlobBytes}};
  auto back = DecodeImportRequest(EncodeImportRequest(q));
  ASSERT_OK(back);
  EXPECT_EQ(back->entries, q.entries);
  EXPECT_THAT(DecodeImportRequest(Truncate(EncodeImportRequest(q), 20)), StatusIs(Code::kCorrupt, "2 entries"));

  DirtyResponse d{3, kDirtyFlagMore, 77};
  auto dback = DecodeDirtyResponse(EncodeDirtyResponse(d));
  ASSERT_OK(dback);
  EXPECT_EQ(dback->next_cursor, 77u);
  EXPECT_THAT(DecodeDirtyResponse(EncodeDirtyResponse(DirtyResponse{1, kDirtyFlagAll, 0})),
              StatusIs(Code::kCorrupt, "ALL with a list"));
  EXPECT_THAT(DecodeDirtyResponse(EncodeDirtyResponse(DirtyResponse{0, 8, 0})), StatusIs(Code::kCorrupt, "flags"));
  EXPECT_THAT(DecodeDirtyRequest(EncodeDirtyRequest(DirtyRequest{0, kMaxDirtyPerRequest + 1})),
              StatusIs(Code::kCorrupt, "max_entries"));
}

TEST(MessagesTest, FinishBodies) {
  for (uint32_t length : {uint32_t{0}, static_cast<uint32_t>(kBlobBytes)}) {
    Bytes enc = EncodeFinishRequest(FinishRequest{length});
    EXPECT_EQ(enc.size(), 8u);
    auto back = DecodeFinishRequest(enc);
    ASSERT_OK(back);
    EXPECT_EQ(back->length, length);
  }
  EXPECT_THAT(DecodeFinishRequest(EncodeFinishRequest(FinishRequest{4096})),
              StatusIs(Code::kCorrupt, "FINISH length 4096 is neither 0 nor 4144"));
  EXPECT_THAT(DecodeFinishRequest(FlipByte(EncodeFinishRequest({}), 5)), StatusIs(Code::kCorrupt, "reserved"));
  EXPECT_THAT(DecodeFinishRequest(Truncate(EncodeFinishRequest({}), 7)), StatusIs(Code::kCorrupt, "truncated"));
  Bytes longer = EncodeFinishRequest({});
  longer.push_back(std::byte{0});
  EXPECT_THAT(DecodeFinishRequest(longer), StatusIs(Code::kCorrupt, "trailing"));

  FinishResponse s{130, kManifestFlagUntracked, static_cast<uint32_t>(kBlobBytes)};
  Bytes enc = EncodeFinishResponse(s);
  EXPECT_EQ(ToHex(enc), "82000000010000003010000000000000");
  auto back = DecodeFinishResponse(enc);
  ASSERT_OK(back);
  EXPECT_EQ(back->count, 130u);
  EXPECT_EQ(back->flags, kManifestFlagUntracked);
  EXPECT_EQ(back->length, kBlobBytes);
  EXPECT_THAT(DecodeFinishResponse(FlipByte(enc, 4, 0x02)), StatusIs(Code::kCorrupt, "unknown flags"));
  EXPECT_THAT(DecodeFinishResponse(FlipByte(enc, 8, 0x01)), StatusIs(Code::kCorrupt, "neither 0 nor 4144"));
  EXPECT_THAT(DecodeFinishResponse(FlipByte(enc, 12)), StatusIs(Code::kCorrupt, "reserved"));
}

TEST(MessagesTest, ManifestPage) {
  Manifest m;
  m.flags = kManifestFlagUntracked;
  m.count = 0x0102030405;
  for (size_t i = 0; i < m.digest.size(); ++i) m.digest[i] = static_cast<std::byte>(i);
  Bytes page(kPageBytes, std::byte{0xee});
  EncodeManifest(m, page);
  EXPECT_EQ(ToHex(ByteSpan(page).first(kManifestHeaderBytes)),
            "474d464e010001000504030201000000"
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  EXPECT_TRUE(std::all_of(page.begin() + kManifestHeaderBytes, page.end(), [](std::byte b) { return b == std::byte{0}; }));
  auto back = DecodeManifest(page);
  ASSERT_OK(back);
  EXPECT_EQ(*back, m);
  EXPECT_THAT(DecodeManifest(FlipByte(page, 0)), StatusIs(Code::kCorrupt, "bad magic"));
  EXPECT_THAT(DecodeManifest(FlipByte(page, 4, 0x02)), StatusIs(Code::kCorrupt, "manifest version 3"));
  EXPECT_THAT(DecodeManifest(FlipByte(page, 6, 0x02)), StatusIs(Code::kCorrupt, "unknown flags"));
  EXPECT_THAT(DecodeManifest(FlipByte(page, kPageBytes - 1)), StatusIs(Code::kCorrupt, "manifest padding"));
  EXPECT_THAT(DecodeManifest(Truncate(page, kPageBytes - 1)), StatusIs(Code::kCorrupt, "one 4 KiB page"));
}

TEST(MessagesTest, VersionOneOneKnowsFinishAndIncomplete) {
  EXPECT_EQ(kVersionMinor, 1);
  EXPECT_EQ(MessageTypeName(MessageType::kFinish), "FINISH");
  EXPECT_EQ(AgentStatusName(AgentStatus::kIncomplete), "INCOMPLETE");
  EXPECT_EQ(MessageMinor(MessageType::kDirty), 0) << "1.0 messages keep going out as 1.0";
  EXPECT_EQ(MessageMinor(MessageType::kFinish), 1);
  Bytes page = RequestPage(MessageType::kFinish, EncodeFinishRequest({}));
  ByteSpan body;
  auto h = DecodeRequestHeader(page, &body);
  ASSERT_OK(h);
  EXPECT_EQ(h->type, MessageType::kFinish);
  EXPECT_EQ(h->minor, 1);
  StoreLe<uint16_t>(page.data() + 8, 8);
  EXPECT_THAT(DecodeRequestHeader(page, &body), StatusIs(Code::kCorrupt, "unknown request type 8"));
  Bytes response(kMailboxPageBytes);
  ResponseHeader rh;
  rh.type = MessageType::kFinish;
  rh.status = AgentStatus::kIncomplete;
  ASSERT_OK(EncodeResponse(rh, {}, response));
  auto rback = DecodeResponseHeader(response, &body);
  ASSERT_OK(rback);
  EXPECT_EQ(rback->status, AgentStatus::kIncomplete);
  StoreLe<uint16_t>(response.data() + 10, 16);
  EXPECT_THAT(DecodeResponseHeader(response, &body), StatusIs(Code::kCorrupt, "unknown agent status 16"));
}

TEST(MessagesTest, ErrorBodyIsPrintableAndBounded) {
  auto text = DecodeErrorBody(EncodeErrorBody("bad\nthing\x01"));
  ASSERT_OK(text);
  EXPECT_EQ(*text, "bad?thing?");
  auto longer = DecodeErrorBody(EncodeErrorBody(std::string(2000, 'x')));
  ASSERT_OK(longer);
  EXPECT_EQ(longer->size(), kMaxErrorTextBytes);
}

}  // namespace
}  // namespace gmem::agent

namespace gmem::agent {
namespace {

// The worked example of docs/agent-protocol.md §3.2, byte for byte.
TEST(MessagesTest, WorkedExampleOfTheSpec) {
  Bytes request = RequestPage(MessageType::kDirty, EncodeDirtyRequest(DirtyRequest{0x200, 0}), 7);
  EXPECT_EQ(ToHex(ByteSpan(request).first(48)),
            "474d415101000000050000001000000007000000000000000000000000000000"
            "00020000000000000000000000000000");
  Bytes response(kMailboxPageBytes);
  ResponseHeader h;
  h.type = MessageType::kDirty;
  h.request_id = 7;
  Bytes body = EncodeDirtyResponse(DirtyResponse{2, 0, 0x2000});
  h.body_length = static_cast<uint32_t>(body.size());
  ASSERT_OK(EncodeResponse(h, body, response));
  EXPECT_EQ(ToHex(ByteSpan(response).first(48)),
            "474d415201000100050000001000000007000000000000000000000000000000"
            "02000000000000000020000000000000");
}

}  // namespace
}  // namespace gmem::agent
