// Golden images of format v1 in tests/data/ must keep decoding: they guard compatibility.
// Regenerate (only together with a deliberate format change, which also bumps the version):
//   GMEM_WRITE_GOLDEN=tests/data build/bin/format_test --gtest_filter='V1/Golden*'

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "base/io.h"
#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::format {
namespace {

using testing::SampleImage;
using testing::SampleOptions;

struct Golden {
  const char* file;
  Compression compression;
  int key;  // 0 insecure, 1 key file, 2 passphrase
};

// Keeps test names (and ctest's names) free of addresses.
void PrintTo(const Golden& g, std::ostream* os) { *os << g.file; }

constexpr Golden kGoldens[] = {
    {"v1_small_insecure.img", Compression::kZstd, 0},
    {"v1_small_keyfile.img", Compression::kZstd, 1},
    {"v1_small_passphrase.img", Compression::kZstd, 2},
    {"v1_raw_keyfile.img", Compression::kNone, 1},
};

KeySource KeyFor(int which) {
  if (which == 1) return testing::FixedKeySource();
  if (which == 2) return testing::TestPassphrase("gmemkit golden");
  return KeySource::Insecure();
}

StreamId FixedStreamId() {
  StreamId id{};
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::byte>(0xa0 + i);
  return id;
}

SampleImage Expected(const Golden& g) {
  SampleOptions options;
  options.compression = g.compression;
  options.stream_id = FixedStreamId();
  return testing::WriteSample(KeyFor(g.key), options);
}

Bytes ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

// With GMEM_WRITE_GOLDEN=DIR set, writes today's image for `g` there first.
void MaybeWriteGolden(const Golden& g) {
  const char* dir = std::getenv("GMEM_WRITE_GOLDEN");
  if (dir == nullptr) return;
  SampleImage s = Expected(g);
  std::ofstream out(std::string(dir) + "/" + g.file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(s.bytes.data()), static_cast<std::streamsize>(s.bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write golden image into " << dir;
}

class GoldenImageTest : public ::testing::TestWithParam<Golden> {};

TEST_P(GoldenImageTest, StillDecodesToTheSameRecords) {
  const Golden& g = GetParam();
  MaybeWriteGolden(g);
  const char* data = std::getenv("GMEM_WRITE_GOLDEN");
  if (data == nullptr) data = std::getenv("GMEM_TEST_DATA");
  ASSERT_NE(data, nullptr) << "GMEM_TEST_DATA is not set (ctest sets it)";
  Bytes bytes = ReadFileBytes(std::string(data) + "/" + g.file);
  ASSERT_FALSE(bytes.empty()) << "missing golden file " << g.file;
  SampleImage want = Expected(g);

  MemorySource source(bytes);
  ReaderOptions options;
  options.allow_insecure = g.key == 0;
  auto reader = ImageReader::Open(source, KeyFor(g.key), options);
  ASSERT_OK(reader);
  EXPECT_EQ(reader->header().stream_id, FixedStreamId());
  EXPECT_EQ(reader->header().version_major, 1);
  EXPECT_EQ(reader->header().version_minor, 0);
  size_t n = 0;
  while (!reader->finished()) {
    auto rec = reader->Next();
    ASSERT_OK(rec);
    const Record& r = **rec;
    if (const auto* l = std::get_if<LayoutRecord>(&r.body)) {
      EXPECT_EQ(*l, want.layout);
    }
    if (const auto* a = std::get_if<AttrsRecord>(&r.body)) {
      EXPECT_EQ(*a, want.attrs);
    }
    if (const auto* p = std::get_if<PrivateRecord>(&r.body)) {
      EXPECT_EQ(*p, want.priv);
    }
    if (const auto* p = std::get_if<PassRecord>(&r.body)) {
      EXPECT_EQ(*p, want.pass);
    }
    if (const auto* s = std::get_if<StateRecord>(&r.body)) {
      EXPECT_EQ(*s, want.state);
    }
    if (const auto* p = std::get_if<PagesRecord>(&r.body)) {
      Bytes expected;
      for (const Bytes& page : want.pages) expected.insert(expected.end(), page.begin(), page.end());
      EXPECT_EQ(Bytes(p->data.begin(), p->data.end()), expected);
    }
    if (const auto* e = std::get_if<EndRecord>(&r.body)) {
      EXPECT_EQ(e->record_count, want.end.record_count);
      EXPECT_EQ(e->data_pages, want.end.data_pages);
    }
    ++n;
  }
  EXPECT_EQ(n, 7u);
  // The unencrypted image has no random parts: today's writer must produce it byte for byte.
  if (g.key == 0) {
    EXPECT_EQ(bytes, want.bytes) << "the encoder's output changed: a wire change needs a new version";
  }
}

INSTANTIATE_TEST_SUITE_P(V1, GoldenImageTest, ::testing::ValuesIn(kGoldens),
                         [](const ::testing::TestParamInfo<Golden>& info) {
                           std::string name = info.param.file;
                           name = name.substr(0, name.find('.'));
                           return name;
                         });

}  // namespace
}  // namespace gmem::format
