#include "memory/guest_reported_source.h"

#include <vector>

#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;

TEST(GuestReportedSourceTest, ReportsAccumulateUntilCollected) {
  Coverage c;
  c.pages = PageRange{0, 100};
  c.sees_private = true;
  GuestReportedSource src(100, c);
  EXPECT_EQ(src.kind(), DirtySourceKind::kGuestReported);
  EXPECT_TRUE(src.coverage().Sees(PageAttr::kPrivate));
  EXPECT_FALSE(src.coverage().Sees(PageAttr::kShared));
  ASSERT_OK(src.Report(std::vector<uint64_t>{5, 99}));
  ASSERT_OK(src.ReportRange(PageRange{10, 3}));
  ASSERT_OK(src.Report(std::vector<uint64_t>{5}));
  AttributeMap attrs(100, PageAttr::kPrivate);
  PageBitmap candidates(100);
  PageBitmap changed(100);
  ASSERT_OK(src.Collect(CollectContext{attrs, candidates}, changed));
  EXPECT_EQ(changed.ToVector(), (std::vector<uint64_t>{5, 10, 11, 12, 99}));
  PageBitmap again(100);
  ASSERT_OK(src.Collect(CollectContext{attrs, candidates}, again));
  EXPECT_TRUE(again.None());
}

TEST(GuestReportedSourceTest, OutOfRangeReportsRecordNothing) {
  GuestReportedSource src(10, Coverage{});
  EXPECT_THAT(src.Report(std::vector<uint64_t>{3, 10}), StatusIs(Code::kInvalidArgument, "page 10"));
  EXPECT_THAT(src.ReportRange(PageRange{8, 3}), StatusIs(Code::kInvalidArgument, "outside"));
  AttributeMap attrs(10, PageAttr::kShared);
  PageBitmap candidates(10), changed(10);
  ASSERT_OK(src.Collect(CollectContext{attrs, candidates}, changed));
  EXPECT_TRUE(changed.None());
}

}  // namespace
}  // namespace gmem::memory
