// libFuzzer target for the image reader and the record decoders (FORMAT.md §9: every way an
// image can be wrong must end in a Status, never a crash, a leak or an unbounded allocation).
//
// The input encoding is described in fuzz/image_reader_fuzz_input.h. Whole images only get as
// far as the frame and the tag (GCM or XXH3-128 stop a mutation there), so the target also feeds
// the payload decoders directly, and reads unencrypted images whose checksums it recomputes.
// Whatever a decoder accepts must also survive a round trip: encoding the decoded value gives
// back the input bytes (the format is canonical: reserved bytes are zero, lengths are exact).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <variant>

#include "base/io.h"
#include "format/crypto.h"
#include "format/image_header.h"
#include "format/image_reader.h"
#include "format/page_batch.h"
#include "format/record_seal.h"
#include "format/records.h"
#include "fuzz/image_reader_fuzz_input.h"

namespace gmem::fuzz {
namespace {

using format::Compression;
using format::LayoutRecord;
using format::RecordType;

[[noreturn]] void Fail(const char* what) {
  fprintf(stderr, "image_reader_fuzz: invariant broken: %s\n", what);
  abort();
}

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) Fail(#cond); \
  } while (0)

bool Same(ByteSpan a, ByteSpan b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

// What the reader returns must be consistent with itself.
void CheckRecord(const format::Record& record) {
  if (const auto* pages = std::get_if<format::PagesRecord>(&record.body)) {
    FUZZ_CHECK(pages->data.size() == uint64_t{pages->data_pages} * pages->page_size);
    FUZZ_CHECK(!pages->runs.empty());
  }
}

void ReadImage(ByteSpan image, const format::KeySource& key, bool allow_insecure) {
  MemorySource source(image);
  format::ReaderOptions options;
  options.allow_insecure = allow_insecure;
  Expected<format::ImageReader> reader = format::ImageReader::Open(source, key, options);
  if (!reader.ok()) return;
  // Every successful Next() consumes at least a frame and a tag, so this ends.
  while (!reader->finished()) {
    Expected<const format::Record*> record = reader->Next();
    if (!record.ok()) return;
    CheckRecord(**record);
  }
  FUZZ_CHECK(source.offset() == image.size());
}

// Recomputes the header checksum (cipher NONE), every record's XXH3-128 tag and the END digest
// of an unencrypted image, then reads it.
void ReadFixedUpImage(ByteSpan payload) {
  Bytes image(payload.begin(), payload.end());
  if (image.size() >= format::kHeaderSize) {
    MutableByteSpan all(image);
    if (all[16] == static_cast<std::byte>(format::Cipher::kNone)) {
      format::Tag tag = format::Xxh3Tag({all.first(format::kHeaderTagOffset)});
      std::copy(tag.begin(), tag.end(), all.begin() + format::kHeaderTagOffset);
    }
    format::Digest h = format::Sha256(all.first(format::kHeaderSize));
    Expected<format::Sha256Stream> digest = format::Sha256Stream::Create();
    if (!digest.ok()) return;
    digest->Update(h);
    size_t pos = format::kHeaderSize;
    while (image.size() - pos >= format::kFrameSize) {
      ByteSpan frame_bytes = all.subspan(pos, format::kFrameSize);
      Expected<format::Frame> frame = format::DecodeFrame(frame_bytes);
      if (!frame.ok()) break;
      size_t body = size_t{frame->public_length} + frame->sealed_length;
      if (image.size() - pos - format::kFrameSize < body + format::kTagSize) break;
      MutableByteSpan public_part = all.subspan(pos + format::kFrameSize, frame->public_length);
      ByteSpan sealed = all.subspan(pos + format::kFrameSize + frame->public_length, frame->sealed_length);
      if (frame->type == RecordType::kEnd && public_part.size() == format::kEndSize) {
        format::Digest d = digest->Peek();
        std::copy(d.begin(), d.end(), public_part.begin() + 40);
      }
      format::Tag tag = format::Xxh3Tag({frame_bytes, h, public_part, sealed});
      std::copy(tag.begin(), tag.end(), all.begin() + pos + format::kFrameSize + body);
      if (frame->type != RecordType::kEnd) digest->Update(tag);
      pos += format::kFrameSize + body + format::kTagSize;
    }
  }
  ReadImage(image, format::KeySource::Insecure(), /*allow_insecure=*/true);
}

void FuzzLayoutDecoder(ByteSpan payload) {
  Expected<LayoutRecord> layout = format::DecodeLayout(payload);
  if (!layout.ok()) return;
  FUZZ_CHECK(format::ValidateLayout(*layout).ok());
  FUZZ_CHECK(Same(format::EncodeLayout(*layout), payload));
}

void FuzzAttrsDecoder(ByteSpan payload, const LayoutRecord& layout) {
  Expected<format::AttrsRecord> attrs = format::DecodeAttrs(payload, layout);
  if (!attrs.ok()) return;
  const format::Region* region = layout.Find(attrs->region_id);
  FUZZ_CHECK(region != nullptr);
  Expected<Bytes> again = format::EncodeAttrs(*attrs, *region);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(Same(*again, payload));
}

void FuzzPagesDecoder(ByteSpan payload, const LayoutRecord& layout, Compression allowed) {
  // One decoder and one output for the whole run, as the reader reuses them across batches.
  static format::PageBatchDecoder* decoder = new format::PageBatchDecoder(format::PageBatchDecoder::Create().value());
  static format::PagesRecord* out = new format::PagesRecord();
  static format::PageBatchEncoder* raw_encoder =
      new format::PageBatchEncoder(format::PageBatchEncoder::Create(Compression::kNone, 0).value());

  SplitParts parts = SplitPayload(payload);
  if (!decoder->Decode(parts.public_part, parts.sealed_part, layout, allowed, *out).ok()) return;
  const format::Region* region = layout.Find(out->region_id);
  FUZZ_CHECK(region != nullptr);
  FUZZ_CHECK(out->data.size() == uint64_t{out->data_pages} * region->page_size);
  FUZZ_CHECK(out->data.size() <= format::kMaxBatchDataBytes);

  // Re-encode without compression: the summary differs at most in the encoding byte, the runs
  // are the same bytes, and a RAW batch comes back byte for byte.
  format::PageBatchInput in;
  in.region_id = out->region_id;
  in.generation = out->generation;
  in.runs = out->runs;
  for (size_t at = 0; at < out->data.size(); at += region->page_size) {
    in.data.push_back(ByteSpan(out->data).subspan(at, region->page_size));
  }
  Bytes public_part;
  Bytes sealed_part;
  FUZZ_CHECK(raw_encoder->Encode(in, *region, public_part, sealed_part).ok());
  FUZZ_CHECK(public_part.size() == parts.public_part.size());
  for (size_t i = 0; i < public_part.size(); ++i) {
    if (i != 16) FUZZ_CHECK(public_part[i] == parts.public_part[i]);
  }
  size_t runs_bytes = out->runs.size() * format::kPageRunSize;
  FUZZ_CHECK(Same(ByteSpan(sealed_part).first(runs_bytes), parts.sealed_part.first(runs_bytes)));
  if (out->encoding == format::PageEncoding::kRaw) FUZZ_CHECK(Same(sealed_part, parts.sealed_part));
}

void FuzzPrivateDecoder(ByteSpan payload, const LayoutRecord& layout) {
  SplitParts parts = SplitPayload(payload);
  Expected<format::PrivateRecord> record = format::DecodePrivate(parts.public_part, parts.sealed_part, layout);
  if (!record.ok()) return;
  const format::Region* region = layout.Find(record->region_id);
  FUZZ_CHECK(region != nullptr);
  Bytes public_part;
  Bytes sealed_part;
  FUZZ_CHECK(format::EncodePrivate(*record, *region, public_part, sealed_part).ok());
  FUZZ_CHECK(Same(public_part, parts.public_part));
  FUZZ_CHECK(Same(sealed_part, parts.sealed_part));
}

void FuzzPassDecoder(ByteSpan payload) {
  Expected<format::PassRecord> pass = format::DecodePass(payload);
  if (!pass.ok()) return;
  Expected<Bytes> again = format::EncodePass(*pass);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(Same(*again, payload));
}

void FuzzStateDecoder(ByteSpan payload) {
  SplitParts parts = SplitPayload(payload);
  Expected<format::StateRecord> state = format::DecodeState(parts.public_part, parts.sealed_part);
  if (!state.ok()) return;
  Bytes public_part;
  Bytes sealed_part;
  FUZZ_CHECK(format::EncodeState(*state, public_part, sealed_part).ok());
  FUZZ_CHECK(Same(public_part, parts.public_part));
  FUZZ_CHECK(Same(sealed_part, parts.sealed_part));
}

void FuzzEndDecoder(ByteSpan payload) {
  Expected<format::EndRecord> end = format::DecodeEnd(payload);
  if (!end.ok()) return;
  FUZZ_CHECK(Same(format::EncodeEnd(*end), payload));
}

void FuzzHeaderDecoder(ByteSpan payload) {
  Expected<format::ImageHeader> header = format::DecodeHeader(payload);
  if (!header.ok()) return;
  FUZZ_CHECK(Same(format::EncodeHeader(*header), payload));
}

void FuzzFrameDecoder(ByteSpan payload) {
  Expected<format::Frame> frame = format::DecodeFrame(payload);
  if (!frame.ok()) return;
  FUZZ_CHECK(Same(format::EncodeFrame(*frame), payload));
}

void FuzzKeyFileParser(ByteSpan payload) {
  Expected<SecretBytes> key = format::ParseKeyFile(payload);
  if (!key.ok()) return;
  FUZZ_CHECK(key->size() == format::kKeySize);
  SecretBytes text = format::FormatKeyFile(*key);
  Expected<SecretBytes> again = format::ParseKeyFile(text.span());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(Same(again->span(), key->span()));
}

void FuzzOne(ByteSpan in) {
  if (StartsWithMagic(in)) {
    static const format::KeySource* key = new format::KeySource(format::KeySource::FromKey(FuzzKey()));
    ReadImage(in, *key, /*allow_insecure=*/false);
    ReadImage(in, format::KeySource::Insecure(), /*allow_insecure=*/true);
    return;
  }
  if (in.empty()) return;
  static const LayoutRecord* layout = new LayoutRecord(FuzzLayout());
  uint8_t selector = std::to_integer<uint8_t>(in[0]);
  ByteSpan payload = in.subspan(1);
  switch (ModeOf(selector)) {
    case Mode::kLayout: return FuzzLayoutDecoder(payload);
    case Mode::kAttrs: return FuzzAttrsDecoder(payload, *layout);
    case Mode::kPages:
      return FuzzPagesDecoder(payload, *layout,
                              (selector & kSelectorNoCompression) != 0 ? Compression::kNone : Compression::kZstd);
    case Mode::kPrivate: return FuzzPrivateDecoder(payload, *layout);
    case Mode::kPass: return FuzzPassDecoder(payload);
    case Mode::kState: return FuzzStateDecoder(payload);
    case Mode::kEnd: return FuzzEndDecoder(payload);
    case Mode::kHeader: return FuzzHeaderDecoder(payload);
    case Mode::kFrame: return FuzzFrameDecoder(payload);
    case Mode::kKeyFile: return FuzzKeyFileParser(payload);
    case Mode::kFixedUpImage: return ReadFixedUpImage(payload);
  }
}

}  // namespace
}  // namespace gmem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gmem::fuzz::FuzzOne(gmem::ByteSpan(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}
