#include "vmm/workload.h"

#include "tests/testutil/testutil.h"

namespace gmem::vmm {
namespace {

using ::gmem::testing::StatusIs;

TEST(WorkloadTest, ParsesNamesAndOptions) {
  auto w = ParseWorkload("convert:rate=100,pages=64,words=2,every=3,log=1");
  ASSERT_OK(w);
  EXPECT_EQ(w->kind, WorkloadKind::kConvert);
  EXPECT_EQ(w->rate, 100u);
  EXPECT_EQ(w->pages, 64u);
  EXPECT_EQ(w->words, 2u);
  EXPECT_EQ(w->convert_every, 3u);
  EXPECT_TRUE(w->log_writes);
  auto back = ParseWorkload(w->ToString());
  ASSERT_OK(back);
  EXPECT_EQ(*back, *w);
  ASSERT_OK(ParseWorkload("idle"));
  EXPECT_EQ(ParseWorkload("dirty")->kind, WorkloadKind::kDirty);
}

TEST(WorkloadTest, WorkingSetDefaultsAndClamps) {
  EXPECT_EQ(ParseWorkload("dirty")->WorkingSet(1000), 1000u);
  EXPECT_EQ(ParseWorkload("convert")->WorkingSet(100000), 2048u);
  EXPECT_EQ(ParseWorkload("convert")->WorkingSet(100), 100u);
  EXPECT_EQ(ParseWorkload("dirty:pages=10")->WorkingSet(1000), 10u);
}

TEST(WorkloadTest, RejectsBadSpecs) {
  EXPECT_THAT(ParseWorkload("stress"), StatusIs(Code::kInvalidArgument, "unknown workload 'stress'"));
  EXPECT_THAT(ParseWorkload("dirty:speed=3"), StatusIs(Code::kInvalidArgument, "unknown workload option 'speed'"));
  EXPECT_THAT(ParseWorkload("dirty:rate"), StatusIs(Code::kInvalidArgument, "is not key=value"));
  EXPECT_THAT(ParseWorkload("dirty:rate=fast"), StatusIs(Code::kInvalidArgument, "is not a number"));
  EXPECT_THAT(ParseWorkload("dirty:words=9"), StatusIs(Code::kInvalidArgument, "exceeds 8"));
  EXPECT_THAT(ParseWorkload("dirty:words=0"), StatusIs(Code::kInvalidArgument, "1..8"));
  EXPECT_THAT(ParseWorkload("dirty:rate=1,"), StatusIs(Code::kInvalidArgument, "end with ','"));
}

}  // namespace
}  // namespace gmem::vmm
