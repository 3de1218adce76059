#pragma once
// The direct-decoder part of agent_request_fuzz (fuzz/agent_request_fuzz.cc, op kDecode): shares,
// blob headers, manifests, the mailbox headers and every message body, both directions (the host's client
// parses what a hostile guest writes, too).

#include <algorithm>
#include <string>

#include "agent/blob.h"
#include "agent/key_agreement.h"
#include "agent/messages.h"
#include "agent/wire.h"
#include "base/bytes.h"
#include "fuzz/agent_fuzz_platform.h"

namespace gmem::fuzz::agent_fuzz {

using namespace gmem::agent;  // NOLINT: the whole file speaks the agent protocol

template <typename T, typename Decode, typename Encode>
void RoundTrip(ByteSpan in, Decode decode, Encode encode) {
  Expected<T> v = decode(in);
  if (v.ok()) FUZZ_CHECK(Same(encode(*v), in));
}

// Feeds `in` to every decoder of agent/; whatever one accepts must encode back to the same bytes
// (the wire format is canonical: reserved bytes are zero, lengths exact).
inline void FuzzDecoders(ByteSpan in) {
  // Shares and blob headers: as given, and cut or zero-padded to their exact size.
  Bytes share(in.begin(), in.begin() + std::min(in.size(), kShareBytes));
  share.resize(kShareBytes);
  for (ByteSpan s : {in, ByteSpan(share)}) {
    RoundTrip<Share>(s, DecodeShare, EncodeShare);
  }
  Bytes blob(in.begin(), in.begin() + std::min(in.size(), kBlobBytes));
  blob.resize(kBlobBytes);
  for (ByteSpan b : {in, ByteSpan(blob)}) {
    Expected<BlobHeader> h = DecodeBlobHeader(b);
    if (!h.ok()) continue;
    FUZZ_CHECK(b.size() == kBlobBytes && h->sequence != 0);
    std::byte again[kBlobHeaderBytes];
    EncodeBlobHeader(*h, MutableByteSpan(again, kBlobHeaderBytes));
    FUZZ_CHECK(Same(ByteSpan(again, kBlobHeaderBytes), b.first(kBlobHeaderBytes)));
  }

  // Mailbox headers (over a whole page, as the agent and the client read them).
  Bytes page(in.begin(), in.begin() + std::min(in.size(), kMailboxPageBytes));
  page.resize(kMailboxPageBytes);
  Bytes encoded(kMailboxPageBytes);
  ByteSpan body;
  if (Expected<RequestHeader> h = DecodeRequestHeader(page, &body); h.ok()) {
    FUZZ_CHECK(body.size() == h->body_length && body.size() <= kMaxBodyBytes);
    FUZZ_CHECK(EncodeRequest(*h, body, encoded).ok());
    FUZZ_CHECK(Same(ByteSpan(encoded).first(kHeaderBytes + body.size()), ByteSpan(page).first(kHeaderBytes + body.size())));
  }
  if (Expected<ResponseHeader> h = DecodeResponseHeader(page, &body); h.ok()) {
    FUZZ_CHECK(body.size() == h->body_length && body.size() <= kMaxBodyBytes);
    FUZZ_CHECK(EncodeResponse(*h, body, encoded).ok());
    FUZZ_CHECK(Same(ByteSpan(encoded).first(kHeaderBytes + body.size()), ByteSpan(page).first(kHeaderBytes + body.size())));
  }

  // Every message body, both directions (the host's client parses what a hostile guest writes).
  RoundTrip<HelloRequest>(in, DecodeHelloRequest, EncodeHelloRequest);
  RoundTrip<HelloResponse>(in, DecodeHelloResponse, EncodeHelloResponse);
  RoundTrip<PeerRequest>(in, DecodePeerRequest, EncodePeerRequest);
  RoundTrip<PeerResponse>(in, DecodePeerResponse, EncodePeerResponse);
  RoundTrip<ExportRequest>(in, DecodeExportRequest, EncodeExportRequest);
  RoundTrip<ExportResponse>(in, DecodeExportResponse, EncodeExportResponse);
  RoundTrip<ImportRequest>(in, DecodeImportRequest, EncodeImportRequest);
  RoundTrip<ImportResponse>(in, DecodeImportResponse, EncodeImportResponse);
  RoundTrip<DirtyRequest>(in, DecodeDirtyRequest, EncodeDirtyRequest);
  RoundTrip<DirtyResponse>(in, DecodeDirtyResponse, EncodeDirtyResponse);
  RoundTrip<AbortRequest>(in, DecodeAbortRequest, EncodeAbortRequest);
  RoundTrip<FinishRequest>(in, DecodeFinishRequest, EncodeFinishRequest);
  RoundTrip<FinishResponse>(in, DecodeFinishResponse, EncodeFinishResponse);
  // The manifest page (§6.1): as given, and zero-padded or cut to a page.
  Bytes manifest(in.begin(), in.begin() + std::min(in.size(), kPageBytes));
  manifest.resize(kPageBytes);
  for (ByteSpan m : {in, ByteSpan(manifest)}) {
    Expected<Manifest> v = DecodeManifest(m);
    if (!v.ok()) continue;
    Bytes again(kPageBytes);
    EncodeManifest(*v, again);
    FUZZ_CHECK(Same(again, m));
  }
  if (Expected<std::string> text = DecodeErrorBody(in); text.ok()) FUZZ_CHECK(text->size() <= kMaxErrorTextBytes);
}

}  // namespace gmem::fuzz::agent_fuzz
