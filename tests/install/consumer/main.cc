// An out-of-tree program built against an installed gmemkit (tests/install/install_test.sh):
// it writes a small encrypted, zstd-compressed image to the file named on its command line with
// format::ImageWriter over a transport::FdChannel, reads it back with format::ImageReader and
// checks every page, summarizes it with snapshot::Summarize, and prints the library's version.
// Exit 0 when all of that holds; otherwise one line on stderr and exit 1.

#include <fcntl.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gmemkit/base/version.h>
#include <gmemkit/format/image_reader.h>
#include <gmemkit/format/image_writer.h>
#include <gmemkit/format/keys.h>
#include <gmemkit/format/stream_keys.h>
#include <gmemkit/snapshot/image_summary.h>
#include <gmemkit/transport/fd_channel.h>
#include <gmemkit/version.h>

namespace {

constexpr uint32_t kPageSize = 4096;
constexpr uint32_t kDataPages = 4;
constexpr uint32_t kZeroPages = 3;

gmem::Status Fail(const std::string& what) { return gmem::InvalidArgument(what); }

gmem::Status WriteImage(const std::string& path, const gmem::SecretBytes& key,
                        const std::vector<gmem::Bytes>& pages) {
  gmem::format::StreamParams params;
  params.compression = gmem::format::Compression::kZstd;
  GMEM_ASSIGN_OR_RETURN(gmem::format::StreamKeys keys,
                        gmem::format::CreateStream(params, gmem::format::KeySource::FromKey(
                                                               gmem::SecretBytes::CopyOf(key.span()))));
  gmem::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return gmem::ErrnoStatus(gmem::Code::kIo, "open '" + path + "' for writing");
  gmem::transport::FdChannel file(std::move(fd), "file:" + path);

  GMEM_ASSIGN_OR_RETURN(
      gmem::format::ImageWriter writer,
      gmem::format::ImageWriter::Create(file, std::make_shared<const gmem::format::StreamKeys>(std::move(keys)), {}));
  GMEM_RETURN_IF_ERROR(writer.Begin());
  gmem::format::LayoutRecord layout;
  layout.regions.push_back({1, kPageSize, 0, 16 * kPageSize, 0, 0});
  GMEM_RETURN_IF_ERROR(writer.WriteLayout(layout));

  gmem::format::PageBatchInput batch;
  batch.region_id = 1;
  batch.generation = 1;
  batch.runs.push_back({0, kDataPages, gmem::format::RunKind::kData});
  batch.runs.push_back({8, kZeroPages, gmem::format::RunKind::kZero});
  for (const gmem::Bytes& page : pages) batch.data.push_back(page);
  GMEM_RETURN_IF_ERROR(writer.WritePages(batch));
  return writer.Finish().status();
}

gmem::Status ReadBack(const std::string& path, const gmem::SecretBytes& key, const std::vector<gmem::Bytes>& pages) {
  GMEM_ASSIGN_OR_RETURN(gmem::transport::FdChannel file, gmem::transport::OpenFileForRead(path));
  auto unlock = gmem::format::KeySource::FromKey(gmem::SecretBytes::CopyOf(key.span()));
  GMEM_ASSIGN_OR_RETURN(gmem::format::ImageReader reader, gmem::format::ImageReader::Open(file, unlock, {}));
  uint32_t pages_records = 0;
  while (!reader.finished()) {
    GMEM_ASSIGN_OR_RETURN(const gmem::format::Record* record, reader.Next());
    if (record->type != gmem::format::RecordType::kPages) continue;
    const auto& got = std::get<gmem::format::PagesRecord>(record->body);
    ++pages_records;
    if (got.data_pages != kDataPages || got.zero_pages != kZeroPages || got.data.size() != kDataPages * kPageSize)
      return Fail("PAGES record holds other pages than were written");
    for (uint32_t i = 0; i < kDataPages; ++i) {
      if (std::memcmp(got.data.data() + i * kPageSize, pages[i].data(), kPageSize) != 0)
        return Fail("page " + std::to_string(i) + " reads back different");
    }
  }
  if (pages_records != 1) return Fail("read " + std::to_string(pages_records) + " PAGES records, wrote 1");

  GMEM_ASSIGN_OR_RETURN(gmem::transport::FdChannel again, gmem::transport::OpenFileForRead(path));
  GMEM_ASSIGN_OR_RETURN(gmem::snapshot::ImageSummary summary, gmem::snapshot::Summarize(again));
  if (summary.data_pages != kDataPages || summary.zero_pages != kZeroPages)
    return Fail("the summary counts " + std::to_string(summary.data_pages) + " data and " +
                std::to_string(summary.zero_pages) + " zero pages");
  std::printf("image: %llu records, %llu bytes, %u data and %u zero pages read back intact\n",
              static_cast<unsigned long long>(summary.records), static_cast<unsigned long long>(summary.image_bytes),
              kDataPages, kZeroPages);
  return gmem::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
    return 1;
  }
  std::printf("gmemkit %s (headers %s)\n", std::string(gmem::LibraryVersionString()).c_str(), GMEMKIT_VERSION_STRING);
  if (gmem::LibraryVersionString() != GMEMKIT_VERSION_STRING) {
    std::fprintf(stderr, "consumer: the library is not the version of its headers\n");
    return 1;
  }

  std::vector<gmem::Bytes> pages;
  for (uint32_t i = 0; i < kDataPages; ++i) {
    gmem::Bytes page(kPageSize);
    for (uint32_t b = 0; b < kPageSize; ++b) page[b] = static_cast<std::byte>((b * 7 + i * 131) ^ (b >> 5));
    pages.push_back(std::move(page));
  }
  auto key = gmem::format::GenerateKey();
  gmem::Status status = key.status();
  if (status.ok()) status = WriteImage(argv[1], *key, pages);
  if (status.ok()) status = ReadBack(argv[1], *key, pages);
  if (!status.ok()) {
    std::fprintf(stderr, "consumer: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
