// Randomized (seeded) round trips over random layouts, attribute maps and page mixes.

#include <map>
#include <random>

#include "base/io.h"
#include "format/image_reader.h"
#include "format/image_writer.h"
#include "tests/format/image_fixture.h"
#include "tests/testutil/testutil.h"

namespace gmem::format {
namespace {

using testing::MakePage;
using testing::PageKind;

struct Model {
  std::map<std::pair<uint32_t, uint64_t>, Bytes> pages;  // (region, page) -> contents; zero pages stored as empty
  std::map<std::pair<uint32_t, uint64_t>, PageAttr> attrs;
  std::map<std::pair<uint32_t, uint64_t>, Bytes> blobs;
};

LayoutRecord RandomLayout(std::mt19937_64& rng) {
  LayoutRecord layout;
  size_t n = 1 + rng() % 4;
  uint64_t gpa = 0;
  for (size_t i = 0; i < n; ++i) {
    uint64_t npages = 1 + rng() % 300;
    gpa += (rng() % 4) * 4096;
    layout.regions.push_back(Region{static_cast<uint32_t>(rng() % 1000 + i * 1000), 4096, gpa, npages * 4096, 0, 3});
    gpa += npages * 4096;
  }
  return layout;
}

void RunOne(uint64_t seed, Compression compression, bool encrypted) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  KeySource key = encrypted ? testing::FixedKeySource() : KeySource::Insecure();
  StreamParams params;
  params.compression = compression;
  auto created = CreateStream(params, key);
  ASSERT_OK(created);
  auto keys = std::make_shared<const StreamKeys>(std::move(created).value());
  LayoutRecord layout = RandomLayout(rng);

  MemorySink sink;
  auto w = ImageWriter::Create(sink, keys, {0, static_cast<int>(rng() % 3) + 1});
  ASSERT_OK(w);
  ASSERT_OK(w->Begin());
  ASSERT_OK(w->WriteLayout(layout));
  Model model;
  std::vector<Bytes> storage;
  size_t nrecords = 1 + rng() % 12;
  for (size_t r = 0; r < nrecords; ++r) {
    const Region& region = layout.regions[rng() % layout.regions.size()];
    uint64_t np = region.npages();
    switch (rng() % 3) {
      case 0: {  // PAGES
        PageBatchInput in{region.id, r + 1, {}, {}};
        uint64_t page = rng() % np;
        while (page < np && in.runs.size() < 20) {
          uint32_t len = static_cast<uint32_t>(1 + rng() % std::min<uint64_t>(8, np - page));
          bool zero = rng() % 3 == 0;
          in.runs.push_back({page, len, zero ? RunKind::kZero : RunKind::kData});
          for (uint32_t i = 0; i < len; ++i) {
            if (zero) {
              model.pages[{region.id, page + i}] = Bytes();
            } else {
              storage.push_back(MakePage(static_cast<PageKind>(1 + rng() % 3), rng()));
              model.pages[{region.id, page + i}] = storage.back();
            }
          }
          page += len + rng() % 5;
        }
        // Pointers into `storage` stay valid: reserve happened? Collect spans afterwards.
        size_t data_pages = 0;
        for (const PageRun& run : in.runs) data_pages += run.kind == RunKind::kData ? run.npages : 0;
        for (size_t i = storage.size() - data_pages; i < storage.size(); ++i) in.data.push_back(storage[i]);
        ASSERT_OK(w->WritePages(in));
        break;
      }
      case 1: {  // ATTRS
        AttrsRecord a{region.id, r + 1, {}};
        uint64_t page = rng() % np;
        while (page < np && a.runs.size() < 30) {
          uint64_t len = 1 + rng() % std::min<uint64_t>(10, np - page);
          PageAttr attr = rng() % 2 ? PageAttr::kPrivate : PageAttr::kShared;
          a.runs.push_back({page, len, attr});
          for (uint64_t i = 0; i < len; ++i) model.attrs[{region.id, page + i}] = attr;
          page += len + rng() % 3;
        }
        ASSERT_OK(w->WriteAttrs(a));
        break;
      }
      case 2: {  // PRIVATE
        PrivateRecord p{region.id, r + 1, static_cast<uint32_t>(rng()), {}};
        for (uint64_t page = rng() % np; page < np && p.blobs.size() < 10; page += 1 + rng() % 7) {
          Bytes blob = ::gmem::testing::RandomBytes(rng, 1 + rng() % 200);
          model.blobs[{region.id, page}] = blob;
          p.blobs.push_back({page, blob});
        }
        ASSERT_OK(w->WritePrivate(p));
        break;
      }
    }
  }
  ASSERT_OK(w->Finish());

  MemorySource source(sink.bytes());
  ReaderOptions options;
  options.allow_insecure = !encrypted;
  auto reader = ImageReader::Open(source, key, options);
  ASSERT_OK(reader);
  Model seen;
  while (!reader->finished()) {
    auto rec = reader->Next();
    ASSERT_OK(rec);
    const Record& record = **rec;
    if (const auto* p = std::get_if<PagesRecord>(&record.body)) {
      size_t at = 0;
      for (const PageRun& run : p->runs) {
        for (uint32_t i = 0; i < run.npages; ++i) {
          if (run.kind == RunKind::kZero) {
            seen.pages[{p->region_id, run.first_page + i}] = Bytes();
          } else {
            seen.pages[{p->region_id, run.first_page + i}] = Bytes(p->data.begin() + at, p->data.begin() + at + 4096);
            at += 4096;
          }
        }
      }
      ASSERT_EQ(at, p->data.size());
    } else if (const auto* a = std::get_if<AttrsRecord>(&record.body)) {
      for (const AttrRun& run : a->runs) {
        for (uint64_t i = 0; i < run.npages; ++i) seen.attrs[{a->region_id, run.first_page + i}] = run.attr;
      }
    } else if (const auto* b = std::get_if<PrivateRecord>(&record.body)) {
      for (const PrivateBlob& blob : b->blobs) seen.blobs[{b->region_id, blob.page}] = blob.blob;
    }
  }
  EXPECT_EQ(seen.pages, model.pages);
  EXPECT_EQ(seen.attrs, model.attrs);
  EXPECT_EQ(seen.blobs, model.blobs);
}

TEST(RoundTripTest, RandomImagesZstdEncrypted) {
  for (uint64_t seed = 1; seed <= 40; ++seed) RunOne(seed, Compression::kZstd, true);
}

TEST(RoundTripTest, RandomImagesRawEncrypted) {
  for (uint64_t seed = 100; seed <= 120; ++seed) RunOne(seed, Compression::kNone, true);
}

TEST(RoundTripTest, RandomImagesUnencrypted) {
  for (uint64_t seed = 200; seed <= 220; ++seed) RunOne(seed, Compression::kZstd, false);
}

}  // namespace
}  // namespace gmem::format
