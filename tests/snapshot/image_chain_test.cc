// snapshot::FindChain, CheckLink, VerifyChain and ReadChainContents on chains written here with
// the format's writer (no KVM): parents are found by stream id, temporaries and other files are
// ignored, a missing parent, a loop and a forged link are each refused with their own error, and
// a chain reads as the memory a restore would build. The end-to-end chains of real VMs are in
// incremental_test.cc.

#include "snapshot/image_chain.h"

#include <sys/stat.h>

#include <filesystem>

#include "snapshot/atomic_file.h"
#include "snapshot/diff.h"
#include "snapshot/image_contents.h"
#include "snapshot/image_summary.h"
#include "tests/format/image_fixture.h"
#include "tests/snapshot/snapshot_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::snapshot {
namespace {

using format::RunKind;
using format::testing::FixedKeySource;
using format::testing::MakePage;
using format::testing::PageKind;
using ::gmem::testing::StatusIs;
using ::gmem::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Batch;
using Spec = testing::ImageSpec;

format::StreamId Id(uint8_t n) {
  format::StreamId id{};
  id.fill(std::byte{n});
  return id;
}

Batch Pages(uint64_t first, uint32_t n, uint64_t seed) {
  Batch b{0, 1, {{first, n, RunKind::kData}}, {}};
  for (uint32_t i = 0; i < n; ++i) b.pages.push_back(MakePage(PageKind::kRandom, seed + i));
  return b;
}

// The channel-0 END digest of the image at `path`, read without a key (what a child names).
format::Digest EndDigest(const std::string& path) {
  Bytes bytes = testing::ReadFileBytes(path);
  MemorySource source(bytes);
  auto summary = Summarize(source);
  EXPECT_OK(summary);
  return summary.ok() && summary->end ? summary->end->digest : format::Digest{};
}

// Writes an image with stream id `id` (and `parent`'s id and END digest as its parent, unless
// `parent` is empty) to dir/name.
std::string WriteImage(const TempDir& dir, const std::string& name, uint8_t id, Spec spec,
                       const std::string& parent = "", std::optional<uint8_t> parent_id = std::nullopt) {
  spec.params.stream_id = Id(id);
  if (!parent.empty()) spec.params.parent = std::make_pair(Id(parent_id.value()), EndDigest(parent));
  return testing::WriteFileBytes(dir.File(name), testing::WriteImage(spec, FixedKeySource()));
}

std::vector<std::string> Paths(const std::vector<ChainImage>& chain) {
  std::vector<std::string> out;
  for (const ChainImage& i : chain) out.push_back(i.path);
  return out;
}

// full (id 1) <- inc1 (id 2) <- inc2 (id 3), with files that are not part of it around them.
class ImageChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Spec full;
    full.batches = {Pages(0, 8, 100)};
    full_ = WriteImage(dir_, "full.img", 1, full);
    Spec inc1;
    inc1.batches = {Pages(2, 2, 200)};
    inc1_ = WriteImage(dir_, "inc1.img", 2, inc1, full_, 1);
    Spec inc2;
    inc2.batches = {Batch{0, 1, {{3, 1, RunKind::kZero}}, {}}, Pages(20, 1, 300)};
    inc2.state = {{"vmm-state", Bytes(32, std::byte{9})}};
    inc2_ = WriteImage(dir_, "inc2.img", 3, inc2, inc1_, 2);
    testing::WriteFileBytes(dir_.File("notes.txt"), Bytes(500, std::byte{'x'}));
    testing::WriteFileBytes(dir_.File("empty"), {});
    ASSERT_EQ(mkdir(dir_.File("subdir").c_str(), 0700), 0);
  }

  TempDir dir_;
  std::string full_, inc1_, inc2_;
};

TEST_F(ImageChainTest, ParentsAreFoundByStreamIdOldestFirst) {
  auto chain = FindChain(inc2_, "");
  ASSERT_OK(chain);
  EXPECT_THAT(Paths(*chain), ElementsAre(full_, inc1_, inc2_));
  EXPECT_EQ((*chain)[0].header.stream_id, Id(1));
  // A full image is a chain of one; no directory is read for it.
  auto alone = FindChain(full_, "/nonexistent");
  ASSERT_OK(alone);
  EXPECT_THAT(Paths(*alone), ElementsAre(full_));
  // In another directory, with --parent-dir pointing at the parents.
  TempDir other;
  std::string moved = other.File("inc2.img");
  std::filesystem::copy_file(inc2_, moved);
  EXPECT_THAT(FindChain(moved, ""), StatusIs(Code::kIncompatible, "and no image in '" + other.path() + "' has"));
  auto found = FindChain(moved, dir_.path());
  ASSERT_OK(found);
  EXPECT_THAT(Paths(*found), ElementsAre(full_, inc1_, moved));
}

TEST_F(ImageChainTest, AMissingParentIsNamedWithItsChild) {
  std::filesystem::remove(full_);
  auto chain = FindChain(inc2_, "");
  EXPECT_THAT(chain, StatusIs(Code::kIncompatible, "'" + inc1_ + "' is an increment of stream " + ToHex(Id(1)) +
                                                       ", and no image in '" + dir_.path() + "' has that stream id"));
  EXPECT_THAT(chain, StatusIs(Code::kIncompatible, "together with its parent chain"));
}

TEST_F(ImageChainTest, AnAtomicSaveTemporaryIsNeverAParent) {
  // A complete image under a temporary's name (a crash between link and rename leaves one).
  std::filesystem::rename(full_, dir_.File(".full.img.tmp-Ab12Z9"));
  EXPECT_THAT(FindChain(inc2_, ""), StatusIs(Code::kIncompatible, "is an increment of stream " + ToHex(Id(1))));
  EXPECT_TRUE(IsTemporaryName(".full.img.tmp-Ab12Z9"));
  EXPECT_TRUE(IsTemporaryName(".x.tmp-abcdef"));
  EXPECT_FALSE(IsTemporaryName("full.img.tmp-Ab12Z9"));  // not hidden: a user's own name
  EXPECT_FALSE(IsTemporaryName(".full.img"));
  EXPECT_FALSE(IsTemporaryName(".tmp-abcdef"));
  EXPECT_FALSE(IsTemporaryName(".full.img.tmp-abc"));
}

TEST_F(ImageChainTest, OfTwoCopiesTheOneWithTheNamedEndDigestIsTaken) {
  // "a-copy.img" sorts first and has the parent's stream id, but other contents.
  Spec impostor;
  impostor.batches = {Pages(0, 8, 999)};
  std::string copy = WriteImage(dir_, "a-copy.img", 2, impostor);
  auto chain = FindChain(inc2_, "");
  ASSERT_OK(chain);
  EXPECT_THAT(Paths(*chain), ElementsAre(full_, inc1_, inc2_));
  // Without the real one, the impostor is taken, and the link check refuses it with the key.
  std::filesystem::remove(inc1_);
  chain = FindChain(inc2_, "");
  ASSERT_OK(chain);
  EXPECT_EQ((*chain)[0].path, copy);
  EXPECT_THAT(VerifyChain(inc2_, "", FixedKeySource(), false),
              StatusIs(Code::kCorrupt, "'" + inc2_ + "' is not the increment of '" + copy +
                                           "': that image has the parent's stream id but not its contents"));
  EXPECT_THAT(ReadChainContents(*chain, FixedKeySource(), {}), StatusIs(Code::kCorrupt, "is not the increment of"));
}

TEST_F(ImageChainTest, ALoopIsRefused) {
  // Two images naming each other as parent (only a crafted directory can hold them).
  TempDir loop;
  Spec a;
  a.params.parent = std::make_pair(Id(8), format::Digest{});
  WriteImage(loop, "a.img", 7, a);
  Spec b;
  b.params.parent = std::make_pair(Id(7), format::Digest{});
  std::string pb = WriteImage(loop, "b.img", 8, b);
  EXPECT_THAT(FindChain(pb, ""), StatusIs(Code::kCorrupt, "loops"));
}

TEST_F(ImageChainTest, CheckLinkNamesWhatDiffers) {
  auto inc1 = ReadImageHeader(inc1_);
  ASSERT_OK(inc1);
  format::Digest digest = EndDigest(full_);
  EXPECT_OK(CheckLink(*inc1, "c", "p", Id(1), digest));
  EXPECT_THAT(CheckLink(*inc1, "c", "p", Id(5), digest),
              StatusIs(Code::kCorrupt, "'c' is not the increment of 'p': it names parent stream " + ToHex(Id(1))));
  format::Digest other = digest;
  other[0] ^= std::byte{1};
  EXPECT_THAT(CheckLink(*inc1, "c", "p", Id(1), other), StatusIs(Code::kCorrupt, "not its contents"));
  auto full = ReadImageHeader(full_);
  ASSERT_OK(full);
  EXPECT_THAT(CheckLink(*full, "c", "p", Id(1), digest), StatusIs(Code::kCorrupt, "it has no parent"));
  EXPECT_THAT(ReadImageHeader(dir_.File("notes.txt")), StatusIs(Code::kCorrupt, "notes.txt"));
  EXPECT_THAT(ReadImageHeader(dir_.File("none")), StatusIs(Code::kIo, "cannot open"));
}

TEST_F(ImageChainTest, VerifyChainVerifiesEveryImageAndNamesADamagedParent) {
  auto chain = VerifyChain(inc2_, "", FixedKeySource(), false);
  ASSERT_OK(chain);
  ASSERT_EQ(chain->size(), 3u);
  EXPECT_EQ((*chain)[0].path, full_);
  EXPECT_FALSE((*chain)[0].summary.unchanged_pages.has_value());  // a full image
  // A flipped byte inside the parent's PAGES record.
  Bytes full = testing::ReadFileBytes(full_);
  auto spans = testing::RecordSpans(full);
  ASSERT_EQ(spans[1].type, format::RecordType::kPages);
  testing::WriteFileBytes(full_, ::gmem::testing::FlipByte(full, spans[1].offset + spans[1].size / 2));
  EXPECT_THAT(VerifyChain(inc2_, "", FixedKeySource(), false),
              StatusIs(Code::kAuth, "parent '" + full_ + "': record 1 (PAGES)"));
  EXPECT_THAT(VerifyChain(inc2_, "", FixedKeySource(9), false), StatusIs(Code::kAuth, "wrong key"));
}

TEST_F(ImageChainTest, AnIncrementWithAnotherLayoutIsRefused) {
  Spec bigger;
  bigger.layout = testing::Layout({{0, 128}});
  std::string odd = WriteImage(dir_, "odd.img", 4, bigger, full_, 1);
  EXPECT_THAT(VerifyChain(odd, "", FixedKeySource(), false), StatusIs(Code::kCorrupt, "another memory layout"));
  auto chain = FindChain(odd, "");
  ASSERT_OK(chain);
  EXPECT_THAT(ReadChainContents(*chain, FixedKeySource(), {}), StatusIs(Code::kCorrupt, "layout differs"));
}

TEST_F(ImageChainTest, AChainReadsAsTheMemoryARestoreBuilds) {
  auto chain = FindChain(inc2_, "");
  ASSERT_OK(chain);
  auto contents = ReadChainContents(*chain, FixedKeySource(), {});
  ASSERT_OK(contents);
  EXPECT_EQ(contents->header.stream_id, Id(3));
  // The same memory written as one full image: pages 0..7 from full, 2..3 from inc1, 3 zeroed
  // and 20 added by inc2 (each image's generation 1 wins over the image before).
  Spec flat;
  flat.batches = {Pages(0, 8, 100), Pages(2, 2, 200), Batch{0, 1, {{3, 1, RunKind::kZero}}, {}}, Pages(20, 1, 300)};
  for (size_t i = 1; i < flat.batches.size(); ++i) flat.batches[i].generation = 1 + i;
  flat.state = {{"vmm-state", Bytes(32, std::byte{9})}};
  Bytes flat_bytes = testing::WriteImage(flat, FixedKeySource());
  MemorySource source(flat_bytes);
  auto expected = ReadImageContents(source, FixedKeySource(), {});
  ASSERT_OK(expected);
  DiffReport d = Compare(*contents, *expected);
  EXPECT_TRUE(d.identical()) << d.differ << " pages differ, state differs: " << d.state_differs;
  // And differs from the full image by exactly what the increments changed.
  auto full = DiffFiles(full_, inc2_, "", FixedKeySource(), {});
  ASSERT_OK(full);
  EXPECT_EQ(full->report.differ, 3u);  // pages 2, 3 and 20
  EXPECT_THAT(Paths(full->chain_b), ElementsAre(full_, inc1_, inc2_));
}

}  // namespace
}  // namespace gmem::snapshot
