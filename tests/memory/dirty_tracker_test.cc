#include "memory/dirty_tracker.h"

#include <memory>
#include <vector>

#include "memory/guest_reported_source.h"
#include "tests/testutil/testutil.h"

namespace gmem::memory {
namespace {

using ::gmem::testing::StatusIs;
constexpr PageAttr kS = PageAttr::kShared;
constexpr PageAttr kP = PageAttr::kPrivate;

// A source that reports what the test tells it to, and remembers what it was asked.
class FakeSource final : public DirtySource {
 public:
  FakeSource(DirtySourceKind kind, Coverage coverage) : kind_(kind), coverage_(coverage) {}
  DirtySourceKind kind() const override { return kind_; }
  Coverage coverage() const override { return coverage_; }
  Status Collect(const CollectContext& context, PageBitmap& changed) override {
    candidates = context.candidates.ToVector();
    if (!fail.ok() && !report_then_fail) return fail;
    for (uint64_t p : next) changed.Set(p);
    next.clear();
    return fail;
  }
  void OnSent(uint64_t page, PageAttr attr) override { sent.push_back({page, attr}); }

  std::vector<uint64_t> next;
  Status fail;
  bool report_then_fail = false;  // like a dirty ring that overflowed: hands over pages, then fails
  std::vector<uint64_t> candidates;
  std::vector<std::pair<uint64_t, PageAttr>> sent;

 private:
  DirtySourceKind kind_;
  Coverage coverage_;
};

Coverage Cov(uint64_t first, uint64_t count, bool shared, bool priv, bool complete = true) {
  Coverage c;
  c.pages = PageRange{first, count};
  c.sees_shared = shared;
  c.sees_private = priv;
  c.complete = complete;
  return c;
}

FakeSource* Add(DirtyTracker& t, DirtySourceKind kind, Coverage c) {
  auto s = std::make_unique<FakeSource>(kind, c);
  FakeSource* raw = s.get();
  t.AddSource(std::move(s));
  return raw;
}

// 10 pages, pages 7..9 private.
AttributeMap TenPages() {
  AttributeMap m(10, kS);
  EXPECT_OK(m.SetRange(7, 3, kP));
  return m;
}

void SendAll(DirtyTracker& t, const DirtyReport& r) { ASSERT_OK(t.MarkSent(r.dirty)); }

TEST(DirtyTrackerTest, FirstPassReportsEveryPageAsUnsent) {
  AttributeMap attrs = TenPages();
  DirtyTracker t(attrs);
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->pass, 1u);
  EXPECT_EQ(r->count(), 10u);
  EXPECT_EQ(r->dirty_shared, 7u);
  EXPECT_EQ(r->dirty_private, 3u);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kUnsent), 10u);
  EXPECT_EQ(t.target_attr(0), static_cast<PageAttr>(0));
  SendAll(t, *r);
  EXPECT_EQ(t.target_attr(0), kS);
  EXPECT_EQ(t.target_attr(8), kP);
}

TEST(DirtyTrackerTest, WithoutSourcesEveryPageIsDirtyEveryPass) {
  AttributeMap attrs = TenPages();
  DirtyTracker t(attrs);
  SendAll(t, *t.BeginPass(attrs));
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->count(), 10u);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kUncovered), 10u);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kUnsent), 0u);
}

TEST(DirtyTrackerTest, CompleteSourcesLeaveOnlyWhatTheyReport) {
  AttributeMap attrs = TenPages();
  DirtyTracker t(attrs);
  FakeSource* kvm = Add(t, DirtySourceKind::kKvmDirtyBitmap, Cov(0, 10, true, false));
  auto guest = std::make_unique<GuestReportedSource>(10, Cov(0, 10, false, true));
  GuestReportedSource* agent = guest.get();
  t.AddSource(std::move(guest));
  SendAll(t, *t.BeginPass(attrs));
  auto quiet = t.BeginPass(attrs);
  ASSERT_OK(quiet);
  EXPECT_EQ(quiet->count(), 0u) << quiet->ToString();

  kvm->next = {1, 2};
  ASSERT_OK(agent->Report(std::vector<uint64_t>{8}));
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->dirty.ToVector(), (std::vector<uint64_t>{1, 2, 8}));
  EXPECT_EQ(r->dirty_shared, 2u);
  EXPECT_EQ(r->dirty_private, 1u);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kKvmDirtyBitmap), 2u);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kGuestReported), 1u);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kUncovered), 0u);
  EXPECT_EQ(r->ToString(), "pass 3: 3 dirty (2 shared, 1 private); kvm-dirty-bitmap 2, guest-reported 1");
  SendAll(t, *r);
  EXPECT_EQ(t.BeginPass(attrs)->count(), 0u);
}

TEST(DirtyTrackerTest, PagesNotSentStayDirty) {
  AttributeMap attrs(8, kS);
  DirtyTracker t(attrs);
  FakeSource* kvm = Add(t, DirtySourceKind::kKvmDirtyBitmap, Cov(0, 8, true, false));
  SendAll(t, *t.BeginPass(attrs));
  kvm->next = {3, 4, 5};
  ASSERT_OK(t.BeginPass(attrs));
  ASSERT_OK(t.MarkSent(std::vector<uint64_t>{4}));  // the engine ran out of budget
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->dirty.ToVector(), (std::vector<uint64_t>{3, 5}));
}

TEST(DirtyTrackerTest, PagesNoCompleteSourceWatchesAreAlwaysDirty) {
  AttributeMap attrs = TenPages();
  DirtyTracker t(attrs);
  Add(t, DirtySourceKind::kKvmDirtyBitmap, Cov(0, 5, true, false));
  // A supplementary source (the VMM's own writes) does not make pages covered.
  Add(t, DirtySourceKind::kGuestReported, Cov(0, 10, true, true, /*complete=*/false));
  SendAll(t, *t.BeginPass(attrs));
  for (int pass = 0; pass < 3; ++pass) {
    auto r = t.BeginPass(attrs);
    ASSERT_OK(r);
    EXPECT_EQ(r->dirty.ToVector(), (std::vector<uint64_t>{5, 6, 7, 8, 9}));
    EXPECT_EQ(r->flagged_by(DirtySourceKind::kUncovered), 5u);
    EXPECT_EQ(r->dirty_private, 3u);
    SendAll(t, *r);
  }
}

TEST(DirtyTrackerTest, ConversionsAreDirtyEvents) {
  AttributeMap attrs = TenPages();
  DirtyTracker t(attrs);
  Add(t, DirtySourceKind::kKvmDirtyBitmap, Cov(0, 10, true, false));
  Add(t, DirtySourceKind::kGuestReported, Cov(0, 10, false, true));
  SendAll(t, *t.BeginPass(attrs));

  ASSERT_OK(attrs.SetRange(4, 1, kP));  // shared -> private
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->dirty.ToVector(), (std::vector<uint64_t>{4}));
  EXPECT_EQ(r->dirty_private, 1u);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kConversion), 1u);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kUnsent), 1u);  // the target has it shared
  SendAll(t, *r);
  EXPECT_EQ(t.target_attr(4), kP);

  // Converted there and back between passes: the attributes look unchanged, the log says not.
  std::vector<PageRange> log = {{2, 1}, {2, 1}};
  r = t.BeginPass(attrs, log);
  ASSERT_OK(r);
  EXPECT_EQ(r->dirty.ToVector(), (std::vector<uint64_t>{2}));
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kUnsent), 0u);
}

TEST(DirtyTrackerTest, ASourceSpeaksOnlyForPagesItCanSee) {
  AttributeMap attrs = TenPages();
  DirtyTracker t(attrs);
  FakeSource* kvm = Add(t, DirtySourceKind::kKvmDirtyBitmap, Cov(0, 10, true, false));
  Add(t, DirtySourceKind::kGuestReported, Cov(0, 10, false, true));
  SendAll(t, *t.BeginPass(attrs));
  kvm->next = {8};  // a private page: KVM cannot know about it on real CoCo
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->count(), 0u);
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kKvmDirtyBitmap), 0u);
}

TEST(DirtyTrackerTest, WorseSourcesAreAskedOnlyAboutPagesBetterOnesDoNotWatch) {
  AttributeMap attrs = TenPages();
  DirtyTracker t(attrs);
  FakeSource* hash = Add(t, DirtySourceKind::kContentHash, Cov(0, 10, true, false));
  FakeSource* kvm = Add(t, DirtySourceKind::kKvmDirtyBitmap, Cov(0, 4, true, false));  // added later, asked first
  ASSERT_OK(t.BeginPass(attrs));
  EXPECT_EQ(kvm->candidates, (std::vector<uint64_t>{0, 1, 2, 3}));
  EXPECT_EQ(hash->candidates, (std::vector<uint64_t>{4, 5, 6}));  // shared, not KVM's
}

TEST(DirtyTrackerTest, AFailingSourceFailsThePassAndLosesNothing) {
  AttributeMap attrs(4, kS);
  DirtyTracker t(attrs);
  FakeSource* kvm = Add(t, DirtySourceKind::kKvmDirtyBitmap, Cov(0, 4, true, false));
  SendAll(t, *t.BeginPass(attrs));
  ASSERT_OK(t.NoteHostChange(PageRange{0, 1}));
  kvm->next = {2};
  kvm->fail = Status(Code::kKvm, "KVM_GET_DIRTY_LOG(slot 1)", 5);
  EXPECT_THAT(t.BeginPass(attrs), StatusIs(Code::kKvm, "dirty source kvm-dirty-bitmap: KVM_GET_DIRTY_LOG"));
  kvm->fail = Status();
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->dirty.ToVector(), (std::vector<uint64_t>{0, 2}));
  ASSERT_OK(t.MarkSent(r->dirty));

  // A source that hands pages over and then fails: the pages are kept.
  kvm->next = {1, 3};
  kvm->fail = Status(Code::kKvm, "dirty ring overflowed");
  kvm->report_then_fail = true;
  EXPECT_THAT(t.BeginPass(attrs), StatusIs(Code::kKvm, "overflowed"));
  kvm->fail = Status();
  r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->dirty.ToVector(), (std::vector<uint64_t>{1, 3}));
}

TEST(DirtyTrackerTest, HostChangesAndSentPagesReachTheSources) {
  AttributeMap attrs = TenPages();
  DirtyTracker t(attrs);
  FakeSource* kvm = Add(t, DirtySourceKind::kKvmDirtyBitmap, Cov(0, 10, true, true));
  SendAll(t, *t.BeginPass(attrs));
  EXPECT_EQ(kvm->sent.size(), 10u);
  EXPECT_EQ(kvm->sent[8], (std::pair<uint64_t, PageAttr>{8, kP}));
  ASSERT_OK(t.NoteHostChange(PageRange{3, 2}));  // e.g. a punch hole
  auto r = t.BeginPass(attrs);
  ASSERT_OK(r);
  EXPECT_EQ(r->dirty.ToVector(), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(r->flagged_by(DirtySourceKind::kHostChange), 2u);
}

TEST(DirtyTrackerTest, BadInputsAreRejected) {
  AttributeMap attrs = TenPages();
  DirtyTracker t(attrs);
  EXPECT_THAT(t.BeginPass(AttributeMap(11, kS)), StatusIs(Code::kInvalidArgument, "11 pages, region has 10"));
  std::vector<PageRange> bad = {{9, 2}};
  EXPECT_THAT(t.BeginPass(attrs, bad), StatusIs(Code::kInvalidArgument, "conversion [9, +2)"));
  EXPECT_THAT(t.MarkSent(std::vector<uint64_t>{1, 10}), StatusIs(Code::kInvalidArgument, "page 10"));
  EXPECT_EQ(t.target_attr(1), static_cast<PageAttr>(0));  // nothing recorded
  EXPECT_THAT(t.MarkSent(PageBitmap(3)), StatusIs(Code::kInvalidArgument, "bitmap of 3 pages"));
  EXPECT_THAT(t.NoteHostChange(PageRange{5, 6}), StatusIs(Code::kInvalidArgument, "outside"));
}

}  // namespace
}  // namespace gmem::memory
