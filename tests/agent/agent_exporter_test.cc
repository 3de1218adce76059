// agent/agent_exporter.{h,cc}: the engines' PrivatePageExporter/Importer served by an agent,
// producing PRIVATE records that the image format encodes and decodes.

#include "agent/agent_exporter.h"

#include "tests/agent/agent_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::agent {
namespace {

using ::gmem::testing::StatusIs;
using testing::AgreeTransport;
using testing::Contains;
using testing::Endpoint;
using testing::kPrivateCanary;
using testing::NewPlatformKey;
using testing::TestMeasurement;
using testing::TestSession;

// Two regions of 2 MiB: region 7 = [0, 2 MiB) holds the agent area, region 9 = [2 MiB, 4 MiB).
format::LayoutRecord TwoRegions() {
  format::LayoutRecord layout;
  layout.regions.push_back(format::Region{7, 4096, 0, 2u << 20, 0, 3});
  layout.regions.push_back(format::Region{9, 4096, 2u << 20, 2u << 20, 0, 3});
  return layout;
}

TEST(AgentExporterTest, RecordsRoundTripThroughTheFormatAndTheTargetAgent) {
  auto platform = NewPlatformKey();
  Endpoint src(platform, TestMeasurement("g"));
  Endpoint dst(platform, TestMeasurement("g"));
  auto agreed = AgreeTransport(src, dst, TestSession(1));
  for (uint64_t page : {3, 4, 100, 511}) src.platform.WritePrivateCanaryPage(512 + page, page);

  AgentExporter exporter(src.client, TwoRegions(), agreed.epoch);
  std::vector<uint64_t> pages = {511, 3, 100, 4, 4, 9};  // any order, a duplicate, a shared page
  auto record = exporter.Export(9, pages);
  ASSERT_OK(record);
  EXPECT_EQ(record->region_id, 9u);
  EXPECT_EQ(record->epoch, agreed.epoch);
  ASSERT_EQ(record->blobs.size(), 4u);
  EXPECT_EQ(record->blobs[0].page, 3u);
  EXPECT_EQ(record->blobs[3].page, 511u);
  EXPECT_EQ(exporter.last_not_private(), std::vector<uint64_t>{9});
  for (const auto& b : record->blobs) EXPECT_FALSE(Contains(b.blob, kPrivateCanary));

  // Through the image format's PRIVATE record and back.
  format::Region region = TwoRegions().regions[1];
  Bytes pub, sealed;
  ASSERT_OK(format::EncodePrivate(*record, region, pub, sealed));
  auto decoded = format::DecodePrivate(pub, sealed, TwoRegions());
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, *record);

  AgentImporter importer(dst.client, TwoRegions(), agreed.epoch);
  ASSERT_OK(importer.Import(*decoded));
  for (uint64_t page : {3, 4, 100, 511}) {
    EXPECT_TRUE(dst.platform.IsPrivate(512 + page));
    EXPECT_EQ(dst.platform.page(512 + page), src.platform.page(512 + page));
  }
}

TEST(AgentExporterTest, RefusesWhatTheAgentCannotMove) {
  auto platform = NewPlatformKey();
  Endpoint src(platform, TestMeasurement("g"));
  Endpoint dst(platform, TestMeasurement("g"));
  auto agreed = AgreeTransport(src, dst, TestSession(2));
  AgentExporter exporter(src.client, TwoRegions(), agreed.epoch);
  EXPECT_THAT(exporter.Export(8, std::vector<uint64_t>{1}), StatusIs(Code::kInvalidArgument, "no region 8"));
  EXPECT_THAT(exporter.Export(9, std::vector<uint64_t>{512}), StatusIs(Code::kInvalidArgument, "outside region 9"));
  std::vector<uint64_t> too_many(format::kMaxBlobs + 1);
  for (size_t i = 0; i < too_many.size(); ++i) too_many[i] = i;
  EXPECT_THAT(exporter.Export(9, too_many), StatusIs(Code::kInvalidArgument, "at most 4096"));
  format::LayoutRecord big_pages = TwoRegions();
  big_pages.regions[1].page_size = 2u << 20;
  AgentExporter huge(src.client, big_pages, agreed.epoch);
  EXPECT_THAT(huge.Export(9, std::vector<uint64_t>{0}), StatusIs(Code::kUnsupported, "4 KiB pages only"));

  src.platform.WritePrivateCanaryPage(600, 1);
  auto record = AgentExporter(src.client, TwoRegions(), agreed.epoch).Export(9, std::vector<uint64_t>{600 - 512});
  ASSERT_OK(record);
  AgentImporter wrong_epoch(dst.client, TwoRegions(), agreed.epoch + 1);
  EXPECT_THAT(wrong_epoch.Import(*record), StatusIs(Code::kAuth, "PRIVATE record of epoch"));
  record->region_id = 7;  // the host files the blob under another region: another gfn
  AgentImporter importer(dst.client, TwoRegions(), agreed.epoch);
  EXPECT_THAT(importer.Import(*record), StatusIs(Code::kAuth, "WRONG_GFN"));
}

}  // namespace
}  // namespace gmem::agent
