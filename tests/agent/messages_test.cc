// agent/messages.{h,cc}: mailbox headers and bodies (docs/agent-protocol.md §3, §4), and that
// every decoder is strict.

#include "agent/messages.h"

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
            "474d415201000000050000001000000007000000000000000000000000000000"
            "02000000000000000020000000000000");
}

}  // namespace
}  // namespace gmem::agent
