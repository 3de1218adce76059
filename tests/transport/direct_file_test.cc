#include "transport/direct_file.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iterator>

#include "tests/testutil/testutil.h"

namespace gmem::transport {
namespace {

using ::gmem::testing::StatusIs;
using ::gmem::testing::TempDir;

constexpr size_t kChunk = 64 << 10;  // small chunks: every test crosses many of them

DirectFileOptions SmallChunks() {
  DirectFileOptions options;
  options.chunk_bytes = kChunk;
  options.depth = 3;
  options.prefer_cached = false;  // these tests write their files just before: read them direct all the same
  return options;
}

Bytes ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());  // an empty vector's data() may be null
  return out;
}

// Writes `data` as the file at `path` (through the page cache, as any tool would).
void WriteWholeFile(const std::string& path, ByteSpan data) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

FdChannel OpenChannel(const std::string& path, int flags) {
  return FdChannel(UniqueFd(::open(path.c_str(), flags | O_CLOEXEC, 0600)), "file:" + path);
}

bool HasODirect(int fd) { return (::fcntl(fd, F_GETFL) & O_DIRECT) != 0; }

// Writes `data` in pieces of the sizes `pieces` cycles through.
Status WriteInPieces(ByteSink& sink, ByteSpan data, std::initializer_list<size_t> pieces) {
  std::vector<size_t> sizes(pieces);
  size_t done = 0;
  for (size_t i = 0; done < data.size(); ++i) {
    size_t n = std::min(sizes[i % sizes.size()], data.size() - done);
    GMEM_RETURN_IF_ERROR(sink.Write(data.subspan(done, n)));
    done += n;
  }
  return Status::Ok();
}

class DirectFileWriterTest : public ::testing::TestWithParam<size_t> {};

TEST_P(DirectFileWriterTest, TheFileHoldsExactlyWhatWasWrittenAndIsANormalFileAfterwards) {
  TempDir dir;
  std::string path = dir.File("image");
  FdChannel file = OpenChannel(path, O_RDWR | O_CREAT | O_TRUNC);
  std::mt19937_64 rng(GetParam());
  Bytes data = ::gmem::testing::RandomBytes(rng, GetParam());
  auto writer = DirectFileWriter::Start(file, SmallChunks());
  if (writer == nullptr) GTEST_SKIP() << "the filesystem of /tmp has no O_DIRECT";
  EXPECT_TRUE(HasODirect(file.fd()));
  ASSERT_OK(WriteInPieces(*writer, data, {1, 4095, 100000, 4096, 7, kChunk}));
  ASSERT_OK(writer->Finish());
  EXPECT_OK(writer->Finish());  // idempotent
  EXPECT_EQ(writer->bytes_written(), data.size());
  EXPECT_FALSE(HasODirect(file.fd()));
  // The fd's offset is at the end, as after plain writes; an unaligned read-back works.
  EXPECT_EQ(::lseek(file.fd(), 0, SEEK_CUR), static_cast<off_t>(data.size()));
  if (data.size() > 10) {
    std::byte b[3];
    ASSERT_EQ(::pread(file.fd(), b, 3, 7), 3);
    EXPECT_EQ(b[0], data[7]);
  }
  EXPECT_EQ(ReadWholeFile(path), data);
  EXPECT_THAT(writer->Write(data), StatusIs(Code::kIo, "written after it was finished"));
}

INSTANTIATE_TEST_SUITE_P(Sizes, DirectFileWriterTest,
                         ::testing::Values(0, 1, 4095, 4096, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk + 4096,
                                           5 * kChunk + 12345),
                         [](const auto& info) { return "bytes_" + std::to_string(info.param); });

TEST(DirectFileTest, StartsOnlyWhereDirectTransfersFit) {
  TempDir dir;
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  FdChannel pipe_in(UniqueFd(p[0]), "pipe"), pipe_out(UniqueFd(p[1]), "pipe");
  EXPECT_EQ(DirectFileWriter::Start(pipe_out), nullptr);
  EXPECT_EQ(DirectFileReader::Start(pipe_in), nullptr);

  FdChannel append = OpenChannel(dir.File("a"), O_WRONLY | O_CREAT | O_APPEND);
  EXPECT_EQ(DirectFileWriter::Start(append), nullptr);
  EXPECT_FALSE(HasODirect(append.fd()));

  FdChannel unaligned = OpenChannel(dir.File("u"), O_RDWR | O_CREAT);
  ASSERT_EQ(::write(unaligned.fd(), "abc", 3), 3);
  EXPECT_EQ(DirectFileWriter::Start(unaligned), nullptr);
  EXPECT_EQ(DirectFileReader::Start(unaligned), nullptr);
  EXPECT_FALSE(HasODirect(unaligned.fd()));

  DirectFileOptions odd;
  odd.chunk_bytes = 5000;
  FdChannel fresh = OpenChannel(dir.File("f"), O_RDWR | O_CREAT);
  EXPECT_EQ(DirectFileWriter::Start(fresh, odd), nullptr);
}

TEST(DirectFileTest, AWriterDroppedBeforeFinishLeavesTheFdNormal) {
  TempDir dir;
  FdChannel file = OpenChannel(dir.File("image"), O_RDWR | O_CREAT);
  {
    auto writer = DirectFileWriter::Start(file, SmallChunks());
    if (writer == nullptr) GTEST_SKIP() << "the filesystem of /tmp has no O_DIRECT";
    Bytes data(10 * kChunk + 3, std::byte{7});
    ASSERT_OK(writer->Write(data));
  }
  EXPECT_FALSE(HasODirect(file.fd()));
}

// A write that runs into the file size limit (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG) at an offset
// no direct write can reach: the writer finishes through the page cache up to the limit and
// reports the cause with its errno, as a plain write() would (save maps it to "disk full").
TEST(DirectFileTest, AFullFileIsReportedWithItsErrno) {
  TempDir dir;
  std::string path = dir.File("image");
  FdChannel file = OpenChannel(path, O_RDWR | O_CREAT);
  auto writer = DirectFileWriter::Start(file, SmallChunks());
  if (writer == nullptr) GTEST_SKIP() << "the filesystem of /tmp has no O_DIRECT";
  Bytes data(8 * kChunk, std::byte{0x5a});
  constexpr rlim_t kLimit = 3 * kChunk + 100;
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit limit = old;
  limit.rlim_cur = kLimit;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  Status wrote = writer->Write(data);
  Status finished = writer->Finish();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  std::signal(SIGXFSZ, old_handler);
  Status st = wrote.ok() ? finished : wrote;
  EXPECT_THAT(st, StatusIs(Code::kIo, "file:" + path + ": write failed"));
  EXPECT_EQ(st.sys_errno(), EFBIG);
  EXPECT_FALSE(finished.ok());  // sticky
  struct stat sb {};
  ASSERT_EQ(::stat(path.c_str(), &sb), 0);
  EXPECT_EQ(static_cast<rlim_t>(sb.st_size), kLimit);
  Bytes got = ReadWholeFile(path);
  EXPECT_EQ(got, Bytes(data.begin(), data.begin() + kLimit));
}

class DirectFileReaderTest : public ::testing::TestWithParam<size_t> {};

TEST_P(DirectFileReaderTest, ReadsTheWholeFileThenEndOfFile) {
  TempDir dir;
  std::string path = dir.File("image");
  std::mt19937_64 rng(GetParam() + 1);
  Bytes data = ::gmem::testing::RandomBytes(rng, GetParam());
  WriteWholeFile(path, data);
  FdChannel file = OpenChannel(path, O_RDONLY);
  auto reader = DirectFileReader::Start(file, SmallChunks());
  if (reader == nullptr) GTEST_SKIP() << "the filesystem of /tmp has no O_DIRECT";
  Bytes got;
  const size_t pieces[] = {1, 4095, 100000, 4096, 7, kChunk};
  for (size_t i = 0;; ++i) {
    Bytes piece(pieces[i % std::size(pieces)]);
    auto n = reader->Read(piece);
    ASSERT_OK(n);
    if (*n == 0) break;
    got.insert(got.end(), piece.begin(), piece.begin() + static_cast<ptrdiff_t>(*n));
  }
  EXPECT_EQ(got, data);
  EXPECT_EQ(reader->bytes_read(), data.size());
  EXPECT_TRUE(reader->direct());  // an unaligned end of file is not a reason to stop reading direct
  Bytes more(10);
  auto again = reader->Read(more);
  ASSERT_OK(again);
  EXPECT_EQ(*again, 0u);
  reader.reset();
  EXPECT_FALSE(HasODirect(file.fd()));
}

INSTANTIATE_TEST_SUITE_P(Sizes, DirectFileReaderTest,
                         ::testing::Values(0, 1, 4096, kChunk, kChunk + 1, 3 * kChunk, 5 * kChunk + 12345),
                         [](const auto& info) { return "bytes_" + std::to_string(info.param); });

TEST(DirectFileTest, AReaderStartsAtTheFdsOffset) {
  TempDir dir;
  std::string path = dir.File("image");
  std::mt19937_64 rng(5);
  Bytes data = ::gmem::testing::RandomBytes(rng, 2 * kChunk + 77);
  WriteWholeFile(path, data);
  FdChannel file = OpenChannel(path, O_RDONLY);
  ASSERT_EQ(::lseek(file.fd(), 8192, SEEK_SET), 8192);
  auto reader = DirectFileReader::Start(file, SmallChunks());
  if (reader == nullptr) GTEST_SKIP() << "the filesystem of /tmp has no O_DIRECT";
  Bytes got(data.size());
  auto n = ReadFull(*reader, got);
  ASSERT_OK(n);
  EXPECT_EQ(*n, data.size() - 8192);
  EXPECT_EQ(Bytes(got.begin(), got.begin() + static_cast<ptrdiff_t>(*n)), Bytes(data.begin() + 8192, data.end()));
}

// A file the page cache holds is read from there (no direct reader); once its pages are dropped
// from the cache, the same file is read direct again.
TEST(DirectFileTest, AFileInThePageCacheIsReadFromThere) {
  TempDir dir;
  std::string path = dir.File("image");
  std::mt19937_64 rng(11);
  Bytes data = ::gmem::testing::RandomBytes(rng, 4 * kChunk + 100);
  WriteWholeFile(path, data);
  FdChannel file = OpenChannel(path, O_RDONLY);
  EXPECT_EQ(DirectFileReader::Start(file), nullptr);  // just written: every page is cached
  EXPECT_FALSE(HasODirect(file.fd()));
  // Written back, then dropped: now only the device has the bytes.
  ASSERT_EQ(::fdatasync(file.fd()), 0);
  ASSERT_EQ(::posix_fadvise(file.fd(), 0, 0, POSIX_FADV_DONTNEED), 0);
  auto reader = DirectFileReader::Start(file);
  if (reader == nullptr) GTEST_SKIP() << "the filesystem of /tmp has no O_DIRECT or keeps its pages cached";
  EXPECT_TRUE(reader->direct());
  Bytes got(data.size() + 1);
  auto n = ReadFull(*reader, got);
  ASSERT_OK(n);
  got.resize(*n);
  EXPECT_EQ(got, data);
}

TEST(SequentialFileTest, ReadsAFileByNameAndNamesAMissingOne) {
  TempDir dir;
  std::string path = dir.File("image");
  std::mt19937_64 rng(9);
  Bytes data = ::gmem::testing::RandomBytes(rng, 3 * (2 << 20) + 5);  // crosses default-size chunks
  WriteWholeFile(path, data);
  auto file = SequentialFile::Open(path);
  ASSERT_OK(file);
  Bytes got(data.size() + 1);
  auto n = ReadFull(**file, got);
  ASSERT_OK(n);
  EXPECT_EQ(*n, data.size());
  got.resize(*n);
  EXPECT_EQ(got, data);
  EXPECT_THAT(SequentialFile::Open(dir.File("missing")), StatusIs(Code::kIo, "cannot open '" + dir.File("missing")));
}

}  // namespace
}  // namespace gmem::transport
