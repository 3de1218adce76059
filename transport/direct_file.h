#pragma once
// Streaming a large image to or from a regular file with O_DIRECT, so its bytes go between the
// tool's buffers and the device without passing through the page cache. Writing a fresh file
// through the page cache first allocates a page-cache page for every 4 KiB: on these machines
// (memory the outer host has taken back faults in slowly) that made a 1.4 GB save spend more time
// in the kernel than in the tool, and it pushes everything else out of the cache. A file a save
// writes this way is not in the cache afterwards, so a restore reads it the same way. A file that
// is already in the page cache (copied in, read before, written by another tool) is read from
// there instead: a direct read would fetch from the device what memory already holds, at a fraction
// of the speed (measured here: 1.4-2.1 GB/s direct from the disk against ~6 GB/s from the cache).
//
// Both classes stage the stream in aligned chunks and keep one I/O thread a few chunks ahead
// (writing behind, or reading ahead), so the device works while the tool encodes or decodes. If
// the filesystem refuses a direct transfer (EINVAL: no O_DIRECT support, or a short transfer left
// an unaligned offset), they go on with ordinary reads and writes at the same offsets.
// O_DIRECT is a flag of the open file description: it is set while they run and cleared by
// Finish() and by their destructors, so other users of the fd (a header read-back with pread)
// see a normal file again.
// Thread-safety: Write/Finish (Read) from one caller at a time; the I/O thread is internal.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/io.h"
#include "transport/fd_channel.h"

namespace gmem::transport {

struct DirectFileOptions {
  size_t chunk_bytes = size_t{2} << 20;  // one transfer; a multiple of kDirectAlignment
  unsigned depth = 4;                    // chunks in flight or waiting
  // A reader does not start (Start returns null: read through the cache) when at least 99 % of the
  // file's pages from its offset on are in the page cache (mincore; nothing is read to find out).
  bool prefer_cached = true;
};

// The alignment of buffers, offsets and lengths of direct transfers (4 KiB covers the logical
// block size of any device and filesystem we write to).
inline constexpr size_t kDirectAlignment = 4096;

// A chunk of aligned memory (freed with std::free).
struct AlignedChunk {
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> data;
  size_t size = 0;     // bytes filled
  uint64_t offset = 0; // where they go in (come from) the file
  bool eof = false;    // reading: the file ends after this chunk
};

// What a direct writer and reader share: the file, the aligned chunks, the I/O thread that drains
// or fills them, the two queues between it and the caller, and the first error.
class DirectFileIo {
 public:
  DirectFileIo(const DirectFileIo&) = delete;
  DirectFileIo& operator=(const DirectFileIo&) = delete;

  // Whether transfers still bypass the page cache (false after a fallback).
  bool direct() const { return direct_.load(); }

 protected:
  DirectFileIo(FdChannel& file, const DirectFileOptions& options) : file_(file), chunk_bytes_(options.chunk_bytes) {}
  ~DirectFileIo() = default;

  // A started `Io` (DirectFileWriter or DirectFileReader: its Run() on the I/O thread), or null
  // when direct transfers cannot be used for `file` (see DirectFileWriter::Start).
  template <typename Io>
  static std::unique_ptr<Io> Start(FdChannel& file, const DirectFileOptions& options);
  // Tells the I/O thread to stop and joins it. The derived destructor calls it first: Run() uses
  // the derived object.
  void StopThread();

  FdChannel& file_;
  const size_t chunk_bytes_;
  std::vector<AlignedChunk> chunks_;
  AlignedChunk* current_ = nullptr;  // being filled (written) or consumed (read) by the caller
  std::atomic<bool> direct_{true};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AlignedChunk*> full_;
  std::vector<AlignedChunk*> free_;
  bool stop_ = false;
  Status error_;
  std::thread thread_;
};

// Writes `file`'s regular file from its current offset. REQUIRES: `file` outlives the writer and
// nothing else writes to the fd until Finish().
class DirectFileWriter final : public ByteSink, public DirectFileIo {
 public:
  // A writer for `file`, or null when direct writes cannot be used there: not a regular file, an
  // O_APPEND fd, an offset that is not aligned, or a filesystem that refuses O_DIRECT. (The
  // caller then writes through `file` as before.)
  static std::unique_ptr<DirectFileWriter> Start(FdChannel& file, const DirectFileOptions& options = {});
  ~DirectFileWriter() override;

  // Copies `data` into the current chunk; a full chunk goes to the I/O thread. An error of an
  // earlier chunk's write is returned here (or by Finish()) and repeated from then on.
  Status Write(ByteSpan data) override;
  // Writes what is staged, waits for every write, clears O_DIRECT and leaves the fd's offset at
  // the end of what was written. Idempotent; Write() fails after it.
  Status Finish();

  uint64_t bytes_written() const { return bytes_written_; }

 private:
  friend class DirectFileIo;
  DirectFileWriter(FdChannel& file, uint64_t offset, const DirectFileOptions& options)
      : DirectFileIo(file, options), next_offset_(offset) {}
  Expected<AlignedChunk*> TakeFree();
  void Submit(AlignedChunk* chunk);
  void Run();
  Status WriteChunk(const AlignedChunk& chunk);

  uint64_t next_offset_;
  uint64_t bytes_written_ = 0;  // staged by Write
  bool finished_ = false;
};

// Reads `file`'s regular file from its current offset to its end. REQUIRES: `file` outlives the
// reader and nothing else reads the fd's offset meanwhile.
class DirectFileReader final : public ByteSource, public DirectFileIo {
 public:
  // A reader, or null when direct reads cannot be used (as DirectFileWriter::Start) or are not
  // worth it: the file is in the page cache (DirectFileOptions::prefer_cached).
  static std::unique_ptr<DirectFileReader> Start(FdChannel& file, const DirectFileOptions& options = {});
  ~DirectFileReader() override;

  // Copies from the chunks the I/O thread has read; 0 at the end of the file.
  Expected<size_t> Read(MutableByteSpan out) override;

  uint64_t bytes_read() const { return bytes_read_; }

 private:
  friend class DirectFileIo;
  DirectFileReader(FdChannel& file, uint64_t offset, const DirectFileOptions& options)
      : DirectFileIo(file, options), start_offset_(offset) {}
  Expected<AlignedChunk*> TakeFull();
  void Run();
  Status ReadChunk(AlignedChunk& chunk);

  uint64_t start_offset_;
  size_t consumed_ = 0;  // of current_
  bool at_eof_ = false;
  uint64_t bytes_read_ = 0;
};

// A file opened by name for one sequential read (verify, inspect, diff, a parent's page hashes):
// direct where it can, as a restore reads. Not movable: the reader points at the channel.
class SequentialFile final : public ByteSource {
 public:
  static Expected<std::unique_ptr<SequentialFile>> Open(const std::string& path);
  Expected<size_t> Read(MutableByteSpan out) override;

 private:
  explicit SequentialFile(FdChannel channel) : channel_(std::move(channel)) {}

  FdChannel channel_;
  std::unique_ptr<DirectFileReader> direct_;  // null: read through channel_
};

}  // namespace gmem::transport
