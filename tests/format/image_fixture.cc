#include "tests/format/image_fixture.h"

#include <cstring>
#include <string>

#include "base/io.h"
#include "tests/testutil/testutil.h"

namespace gmem::format::testing {

SecretBytes FixedKey(uint8_t first) {
  SecretBytes key(kKeySize);
  for (size_t i = 0; i < kKeySize; ++i) key.data()[i] = static_cast<std::byte>(first + i);
  return key;
}

KeySource FixedKeySource(uint8_t first) { return KeySource::FromKey(FixedKey(first)); }

KeySource TestPassphrase(std::string_view passphrase) {
  return KeySource::FromPassphrase(SecretBytes::CopyOf(AsBytes(passphrase)), ScryptCost{10, 8, 1});
}

LayoutRecord TwoRegionLayout() {
  LayoutRecord layout;
  layout.regions.push_back(Region{1, 4096, 0, 64 * 4096, 0, 3});
  layout.regions.push_back(Region{7, 4096, 1ull << 32, 16 * 4096, 0, 3});
  return layout;
}

Bytes MakePage(PageKind kind, uint64_t seed, size_t size) {
  Bytes page(size);
  std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(kind));
  switch (kind) {
    case PageKind::kZero:
      break;
    case PageKind::kText: {
      static const char* kWords[] = {"guest ", "memory ", "page ", "shared ", "private ", "the ", "of ", "and "};
      size_t at = 0;
      while (at < size) {
        const char* w = kWords[rng() % 8];
        for (size_t i = 0; w[i] != 0 && at < size; ++i) page[at++] = static_cast<std::byte>(w[i]);
      }
      break;
    }
    case PageKind::kStructured:
      for (size_t i = 0; i + 16 <= size; i += 16) {
        StoreLe<uint64_t>(page.data() + i, seed * 1000 + i / 16);
        StoreLe<uint32_t>(page.data() + i + 8, 0xabcd0000u | static_cast<uint32_t>(i & 0xff));
        StoreLe<uint32_t>(page.data() + i + 12, static_cast<uint32_t>(rng() % 4));
      }
      break;
    case PageKind::kRandom:
      for (size_t i = 0; i < size; ++i) page[i] = static_cast<std::byte>(rng());
      break;
  }
  return page;
}

SampleImage WriteSample(const KeySource& key, const SampleOptions& options) {
  SampleImage s;
  StreamParams params;
  params.compression = options.compression;
  params.stream_id = options.stream_id;
  auto keys = CreateStream(params, key);
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  s.keys = std::make_shared<const StreamKeys>(std::move(keys).value());
  s.layout = TwoRegionLayout();

  MemorySink sink;
  auto writer = ImageWriter::Create(sink, s.keys, {});
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
  EXPECT_OK(writer->Begin());
  EXPECT_OK(writer->WriteLayout(s.layout));

  s.attrs = AttrsRecord{1, 1, {{0, 10, PageAttr::kShared}, {10, 2, PageAttr::kPrivate}, {12, 52, PageAttr::kShared}}};
  EXPECT_OK(writer->WriteAttrs(s.attrs));

  PageBatchInput batch;
  batch.region_id = 1;
  batch.generation = 1;
  static const PageKind kKinds[] = {PageKind::kText, PageKind::kStructured, PageKind::kRandom};
  for (size_t i = 0; i < options.data_pages; ++i) s.pages.push_back(MakePage(kKinds[i % 3], i));
  if (!s.pages.empty()) batch.runs.push_back({0, static_cast<uint32_t>(s.pages.size()), RunKind::kData});
  batch.runs.push_back({20, 5, RunKind::kZero});
  for (const Bytes& p : s.pages) batch.data.push_back(p);
  EXPECT_OK(writer->WritePages(batch));

  s.priv = PrivateRecord{1, 1, 9, {{10, Bytes(48, std::byte{0x5a})}, {11, Bytes(48, std::byte{0xa5})}}};
  EXPECT_OK(writer->WritePrivate(s.priv));
  s.pass = PassRecord{1, kPassFlagFinal, 3, 5, 2, 1, 12345, 8, 999};
  EXPECT_OK(writer->WritePass(s.pass));
  s.state = StateRecord{{{"vcpu/0", Bytes(100, std::byte{1})}, {"workload", Bytes(8, std::byte{2})}}};
  EXPECT_OK(writer->WriteState(s.state));
  auto end = writer->Finish();
  EXPECT_TRUE(end.ok()) << end.status().ToString();
  s.end = *end;
  s.bytes = sink.bytes();
  return s;
}

Expected<std::vector<RecordType>> ReadAll(ByteSpan bytes, const KeySource& key, bool allow_insecure) {
  MemorySource source(bytes);
  ReaderOptions options;
  options.allow_insecure = allow_insecure;
  GMEM_ASSIGN_OR_RETURN(ImageReader reader, ImageReader::Open(source, key, options));
  std::vector<RecordType> types;
  while (!reader.finished()) {
    GMEM_ASSIGN_OR_RETURN(const Record* record, reader.Next());
    types.push_back(record->type);
  }
  return types;
}

}  // namespace gmem::format::testing
