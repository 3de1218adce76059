// make_fuzz_corpus DIR: writes the seed corpus of the image_reader_fuzz target into DIR (the
// checked-in copy lives in fuzz/corpus/image_reader_fuzz/). The input encoding is described in
// fuzz/image_reader_fuzz_input.h.
//
// Seeds: small complete images with every record type (encrypted with FuzzKey() and
// unencrypted, with and without zstd), and one input per direct decoder. The unencrypted seeds
// are the same on every run; the encrypted ones differ (salt, nonce and data key are random).
//
// Built by the default build (bench/CMakeLists.txt): fuzz/CMakeLists.txt builds only the clang
// fuzz preset, and this program needs neither clang nor libFuzzer.

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "base/io.h"
#include "format/image_header.h"
#include "format/image_writer.h"
#include "format/page_batch.h"
#include "format/record_seal.h"
#include "format/records.h"
#include "format/stream_keys.h"
#include "fuzz/image_reader_fuzz_input.h"

namespace gmem::fuzz {
namespace {

using format::Compression;
using format::PageRun;
using format::RunKind;

constexpr size_t kPageSize = 4096;

// Deterministic page contents: a little text (compressible), and noise (incompressible).
Bytes TextPage(uint32_t seed) {
  static const char* kWords[] = {"guest ", "memory ", "page=", "shared ", "private ", "/usr/lib/", "42\n", "vcpu "};
  Bytes page(kPageSize);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  size_t at = 0;
  while (at < kPageSize) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (const char* w = kWords[x % 8]; *w != 0 && at < kPageSize; ++w) page[at++] = static_cast<std::byte>(*w);
  }
  return page;
}

Bytes NoisePage(uint32_t seed) {
  Bytes page(kPageSize);
  uint64_t x = seed * 0xd1b54a32d192ed03ull + 7;
  for (std::byte& b : page) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x >> 24);
  }
  return page;
}

format::StreamId FixedStreamId(uint8_t first) {
  format::StreamId id{};
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::byte>(first + i);
  return id;
}

struct ImageSpec {
  Compression compression = Compression::kZstd;
  bool encrypted = false;
  bool with_parent = false;
  bool minimal = false;  // LAYOUT and END only
};

Expected<Bytes> WriteImage(const ImageSpec& spec) {
  format::StreamParams params;
  params.compression = spec.compression;
  params.stream_id = FixedStreamId(spec.encrypted ? 0x40 : 0x10);
  if (spec.with_parent) {
    format::Digest parent_digest{};
    parent_digest.fill(std::byte{0xd1});
    params.parent = std::make_pair(FixedStreamId(0x80), parent_digest);
  }
  format::KeySource key = spec.encrypted ? format::KeySource::FromKey(FuzzKey()) : format::KeySource::Insecure();
  GMEM_ASSIGN_OR_RETURN(format::StreamKeys keys, format::CreateStream(params, key));
  MemorySink sink;
  auto shared_keys = std::make_shared<const format::StreamKeys>(std::move(keys));
  GMEM_ASSIGN_OR_RETURN(format::ImageWriter writer, format::ImageWriter::Create(sink, shared_keys, {}));
  GMEM_RETURN_IF_ERROR(writer.Begin());
  GMEM_RETURN_IF_ERROR(writer.WriteLayout(FuzzLayout()));
  if (!spec.minimal) {
    GMEM_RETURN_IF_ERROR(writer.WriteAttrs({1,
                                            1,
                                            {{0, 8, format::PageAttr::kShared},
                                             {8, 2, format::PageAttr::kPrivate},
                                             {10, 6, format::PageAttr::kShared}}}));

    // A compressible batch with DATA and ZERO runs (zstd when the stream allows it).
    Bytes text0 = TextPage(1), text1 = TextPage(2), text2 = TextPage(3);
    format::PageBatchInput mixed;
    mixed.region_id = 1;
    mixed.generation = 1;
    mixed.runs = {{0, 2, RunKind::kData}, {2, 5, RunKind::kZero}, {9, 1, RunKind::kData}};
    mixed.data = {text0, text1, text2};
    GMEM_RETURN_IF_ERROR(writer.WritePages(mixed));

    // An incompressible page: RAW even in a zstd stream.
    Bytes noise = NoisePage(4);
    format::PageBatchInput raw;
    raw.region_id = 1;
    raw.generation = 1;
    raw.runs = {{16, 1, RunKind::kData}};
    raw.data = {noise};
    GMEM_RETURN_IF_ERROR(writer.WritePages(raw));

    // Zero pages only, in the huge-page region.
    format::PageBatchInput zeros;
    zeros.region_id = 7;
    zeros.generation = 1;
    zeros.runs = {{3, 100, RunKind::kZero}};
    GMEM_RETURN_IF_ERROR(writer.WritePages(zeros));

    format::PrivateRecord priv;
    priv.region_id = 1;
    priv.generation = 1;
    priv.epoch = 3;
    priv.blobs = {{8, Bytes(48, std::byte{0xa5})}, {9, Bytes(17, std::byte{0x5a})}};
    GMEM_RETURN_IF_ERROR(writer.WritePrivate(priv));
    GMEM_RETURN_IF_ERROR(writer.WritePass({1, 0, 3, 105, 2, 3, 9000, 0, 1234}));

    format::StateRecord state;
    state.entries = {{"vcpu/0/regs", Bytes(64, std::byte{0x11})}, {"dev/serial-0", Bytes()}};
    GMEM_RETURN_IF_ERROR(writer.WriteState(state));
    GMEM_RETURN_IF_ERROR(writer.WriteAttrs({7, 2, {{0, 4, format::PageAttr::kPrivate}}}));
    GMEM_RETURN_IF_ERROR(writer.WritePass({2, format::kPassFlagFinal, 0, 0, 0, 1, 200, 0, 10}));
  }
  GMEM_RETURN_IF_ERROR(writer.Finish().status());
  return std::move(sink.bytes());
}

Bytes WithSelector(uint8_t selector, ByteSpan payload) {
  Bytes out;
  out.push_back(static_cast<std::byte>(selector));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

uint8_t Selector(Mode mode) { return static_cast<uint8_t>(mode); }

Status WriteFile(const std::string& dir, const std::string& name, ByteSpan bytes) {
  std::string path = dir + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status(Code::kIo, "cannot write " + path);
  return Status::Ok();
}

Status DecoderSeeds(const std::string& dir) {
  format::LayoutRecord layout = FuzzLayout();
  GMEM_RETURN_IF_ERROR(
      WriteFile(dir, "decode_layout", WithSelector(Selector(Mode::kLayout), format::EncodeLayout(layout))));

  GMEM_ASSIGN_OR_RETURN(Bytes attrs, format::EncodeAttrs({9, 4, {{0, 1, format::PageAttr::kPrivate},
                                                                 {(1ull << 34) - 2, 2, format::PageAttr::kShared}}},
                                                         layout.regions[2]));
  GMEM_RETURN_IF_ERROR(WriteFile(dir, "decode_attrs", WithSelector(Selector(Mode::kAttrs), attrs)));

  Bytes public_part;
  Bytes sealed_part;
  Bytes text0 = TextPage(5), text1 = TextPage(6);
  format::PageBatchInput batch;
  batch.region_id = 1;
  batch.generation = 3;
  batch.runs = {{4, 1, RunKind::kData}, {5, 3, RunKind::kZero}, {12, 1, RunKind::kData}};
  batch.data = {text0, text1};
  GMEM_ASSIGN_OR_RETURN(format::PageBatchEncoder zstd, format::PageBatchEncoder::Create(Compression::kZstd, 1));
  GMEM_RETURN_IF_ERROR(zstd.Encode(batch, layout.regions[0], public_part, sealed_part));
  GMEM_RETURN_IF_ERROR(WriteFile(dir, "decode_pages_zstd",
                                 WithSelector(Selector(Mode::kPages), JoinPayload(public_part, sealed_part))));
  GMEM_ASSIGN_OR_RETURN(format::PageBatchEncoder none, format::PageBatchEncoder::Create(Compression::kNone, 0));
  GMEM_RETURN_IF_ERROR(none.Encode(batch, layout.regions[0], public_part, sealed_part));
  GMEM_RETURN_IF_ERROR(WriteFile(dir, "decode_pages_raw",
                                 WithSelector(Selector(Mode::kPages) | kSelectorNoCompression,
                                              JoinPayload(public_part, sealed_part))));

  format::PrivateRecord priv;
  priv.region_id = 7;
  priv.generation = 2;
  priv.epoch = 1;
  priv.blobs = {{0, Bytes(24, std::byte{0x33})}, {511, Bytes(3, std::byte{0x44})}};
  GMEM_RETURN_IF_ERROR(format::EncodePrivate(priv, layout.regions[1], public_part, sealed_part));
  GMEM_RETURN_IF_ERROR(WriteFile(dir, "decode_private",
                                 WithSelector(Selector(Mode::kPrivate), JoinPayload(public_part, sealed_part))));

  GMEM_ASSIGN_OR_RETURN(Bytes pass, format::EncodePass({4, format::kPassFlagFinal, 10, 20, 30, 40, 50, 60, 70}));
  GMEM_RETURN_IF_ERROR(WriteFile(dir, "decode_pass", WithSelector(Selector(Mode::kPass), pass)));

  format::StateRecord state;
  state.entries = {{"a", Bytes(5, std::byte{1})}, {"dev/virtio-net.0", Bytes(9, std::byte{2})}};
  GMEM_RETURN_IF_ERROR(format::EncodeState(state, public_part, sealed_part));
  GMEM_RETURN_IF_ERROR(WriteFile(dir, "decode_state",
                                 WithSelector(Selector(Mode::kState), JoinPayload(public_part, sealed_part))));

  format::EndRecord end{12, 3, 4, 5, 3 * kPageSize, {}};
  end.digest.fill(std::byte{0xee});
  GMEM_RETURN_IF_ERROR(WriteFile(dir, "decode_end", WithSelector(Selector(Mode::kEnd), format::EncodeEnd(end))));

  format::StreamParams params;
  params.stream_id = FixedStreamId(0x20);
  GMEM_ASSIGN_OR_RETURN(format::StreamKeys keys, format::CreateStream(params, format::KeySource::Insecure()));
  GMEM_RETURN_IF_ERROR(WriteFile(dir, "decode_header", WithSelector(Selector(Mode::kHeader), keys.header_bytes())));

  format::FrameBytes frame = format::EncodeFrame({format::RecordType::kPages, 0, 32, 5, 4096});
  GMEM_RETURN_IF_ERROR(WriteFile(dir, "decode_frame", WithSelector(Selector(Mode::kFrame), frame)));

  SecretBytes key_file = format::FormatKeyFile(FuzzKey());
  return WriteFile(dir, "parse_key_file", WithSelector(Selector(Mode::kKeyFile), key_file.span()));
}

Status WriteCorpus(const std::string& dir) {
  struct Named {
    const char* name;
    ImageSpec spec;
  };
  const Named images[] = {
      {"image_insecure_zstd.img", {Compression::kZstd, false, false, false}},
      {"image_insecure_raw_parent.img", {Compression::kNone, false, true, false}},
      {"image_insecure_minimal.img", {Compression::kZstd, false, false, true}},
      {"image_key_zstd.img", {Compression::kZstd, true, false, false}},
      {"image_key_raw.img", {Compression::kNone, true, false, false}},
  };
  for (const Named& image : images) {
    GMEM_ASSIGN_OR_RETURN(Bytes bytes, WriteImage(image.spec));
    GMEM_RETURN_IF_ERROR(WriteFile(dir, image.name, bytes));
    if (image.spec.compression == Compression::kZstd && !image.spec.encrypted && !image.spec.minimal) {
      GMEM_RETURN_IF_ERROR(
          WriteFile(dir, "fixed_up_image_insecure_zstd", WithSelector(Selector(Mode::kFixedUpImage), bytes)));
    }
  }
  return DecoderSeeds(dir);
}

}  // namespace
}  // namespace gmem::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n  writes the seed corpus of image_reader_fuzz into DIR (which must exist)\n",
            argv[0]);
    return 2;
  }
  gmem::Status st = gmem::fuzz::WriteCorpus(argv[1]);
  if (!st.ok()) {
    fprintf(stderr, "make_fuzz_corpus: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
