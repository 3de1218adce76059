#include "transport/direct_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace gmem::transport {
namespace {

bool SetDirect(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  int want = on ? (flags | O_DIRECT) : (flags & ~O_DIRECT);
  return want == flags || ::fcntl(fd, F_SETFL, want) == 0;
}

// The offset to start at, when `fd` is a regular file direct transfers can use from there.
// Turns O_DIRECT on.
bool PrepareDirect(int fd, uint64_t& offset) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || (flags & O_APPEND) != 0) return false;  // pwrite would append, not place
  off_t at = ::lseek(fd, 0, SEEK_CUR);
  if (at < 0 || static_cast<uint64_t>(at) % kDirectAlignment != 0) return false;
  offset = static_cast<uint64_t>(at);
  return SetDirect(fd, true);  // EINVAL: the filesystem has no direct I/O
}

// Whether at least 99 % of the pages of `fd`'s file from `offset` to its end are in the page cache:
// mincore over a mapping of the file, which reads and faults in nothing. An empty range or any
// failure counts as not cached.
bool MostlyCached(int fd, uint64_t offset) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) <= offset) return false;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t start = offset - offset % page;
  size_t length = static_cast<size_t>(static_cast<uint64_t>(st.st_size) - start);
  void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
  if (map == MAP_FAILED) return false;
  uint64_t pages = (length + page - 1) / page;
  uint64_t allowed_missing = pages / 100;
  uint64_t missing = 0;
  constexpr uint64_t kWindowPages = 16384;  // 64 MiB of file per call
  std::vector<unsigned char> resident(kWindowPages);
  for (uint64_t first = 0; first < pages && missing <= allowed_missing; first += kWindowPages) {
    uint64_t count = std::min(kWindowPages, pages - first);
    uint64_t bytes = std::min<uint64_t>(count * page, length - first * page);
    if (::mincore(static_cast<char*>(map) + first * page, bytes, resident.data()) != 0) {
      missing = pages;
      break;
    }
    for (uint64_t i = 0; i < count; ++i) missing += (resident[i] & 1) == 0 ? 1 : 0;
  }
  ::munmap(map, length);
  return missing <= allowed_missing;
}

// Direct transfers off for the rest of the stream: the page cache from now on.
Status LeaveDirect(int fd, std::atomic<bool>& direct, const std::string& name) {
  direct = false;
  if (!SetDirect(fd, false)) return ErrnoStatus(Code::kIo, name + ": cannot clear O_DIRECT");
  return Status::Ok();
}

// Whether a transfer that failed with `err` is tried again: interrupted, or refused as a direct
// transfer (an unaligned offset after a short one, a filesystem that takes the flag but not the
// transfer), which then goes through the page cache.
Expected<bool> Retry(int err, int fd, std::atomic<bool>& direct, const std::string& name) {
  if (err == EINTR) return true;
  if (err != EINVAL || !direct) return false;
  GMEM_RETURN_IF_ERROR(LeaveDirect(fd, direct, name));
  return true;
}

bool AllocateChunks(std::vector<AlignedChunk>& chunks, const DirectFileOptions& options) {
  chunks.resize(std::max(options.depth, 2u));
  for (AlignedChunk& chunk : chunks) {
    chunk.data.reset(static_cast<std::byte*>(std::aligned_alloc(kDirectAlignment, options.chunk_bytes)));
    if (chunk.data == nullptr) return false;
  }
  return true;
}

bool ValidOptions(const DirectFileOptions& options) {
  return options.chunk_bytes >= kDirectAlignment && options.chunk_bytes % kDirectAlignment == 0;
}

}  // namespace

void AlignedChunk::Free::operator()(std::byte* p) const { std::free(p); }

template <typename Io>
std::unique_ptr<Io> DirectFileIo::Start(FdChannel& file, const DirectFileOptions& options) {
  uint64_t offset = 0;
  if (!ValidOptions(options) || !PrepareDirect(file.fd(), offset)) return nullptr;
  std::unique_ptr<Io> io(new Io(file, offset, options));
  if (!AllocateChunks(io->chunks_, options)) {
    SetDirect(file.fd(), false);
    return nullptr;
  }
  for (AlignedChunk& chunk : io->chunks_) io->free_.push_back(&chunk);
  io->thread_ = std::thread([p = io.get()] { p->Run(); });
  return io;
}

void DirectFileIo::StopThread() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// ---- DirectFileWriter ----

std::unique_ptr<DirectFileWriter> DirectFileWriter::Start(FdChannel& file, const DirectFileOptions& options) {
  return DirectFileIo::Start<DirectFileWriter>(file, options);
}

DirectFileWriter::~DirectFileWriter() {
  if (!finished_) {
    std::lock_guard lock(mu_);
    full_.clear();  // a writer dropped before Finish() is a failed stream: nothing more to write
  }
  StopThread();
  SetDirect(file_.fd(), false);
}

Expected<AlignedChunk*> DirectFileWriter::TakeFree() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !free_.empty() || !error_.ok(); });
  if (!error_.ok()) return error_;
  AlignedChunk* chunk = free_.back();
  free_.pop_back();
  return chunk;
}

void DirectFileWriter::Submit(AlignedChunk* chunk) {
  {
    std::lock_guard lock(mu_);
    full_.push_back(chunk);
  }
  cv_.notify_all();
}

Status DirectFileWriter::Write(ByteSpan data) {
  if (finished_) return Status(Code::kIo, file_.name() + ": written after it was finished");
  while (!data.empty()) {
    if (current_ == nullptr) {
      GMEM_ASSIGN_OR_RETURN(current_, TakeFree());
      current_->size = 0;
      current_->offset = next_offset_;
    }
    size_t n = std::min(data.size(), chunk_bytes_ - current_->size);
    std::memcpy(current_->data.get() + current_->size, data.data(), n);
    current_->size += n;
    next_offset_ += n;
    bytes_written_ += n;
    data = data.subspan(n);
    if (current_->size == chunk_bytes_) {
      Submit(current_);
      current_ = nullptr;
    }
  }
  std::lock_guard lock(mu_);
  return error_;
}

Status DirectFileWriter::Finish() {
  if (finished_) {
    std::lock_guard lock(mu_);
    return error_;
  }
  finished_ = true;
  if (current_ != nullptr) {
    // The last, partial chunk: WriteChunk sends its aligned part direct and the tail buffered.
    if (current_->size > 0) Submit(current_);
    current_ = nullptr;
  }
  StopThread();  // the thread writes everything queued before it stops
  direct_ = false;
  if (!SetDirect(file_.fd(), false)) return ErrnoStatus(Code::kIo, file_.name() + ": cannot clear O_DIRECT");
  if (::lseek(file_.fd(), static_cast<off_t>(next_offset_), SEEK_SET) < 0) {
    return ErrnoStatus(Code::kIo, file_.name() + ": cannot seek to the end of what was written");
  }
  std::lock_guard lock(mu_);
  return error_;
}

void DirectFileWriter::Run() {
  for (;;) {
    AlignedChunk* chunk;
    bool failed;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !full_.empty(); });
      if (full_.empty()) return;
      chunk = full_.front();
      full_.pop_front();
      failed = !error_.ok();
    }
    Status st = failed ? Status::Ok() : WriteChunk(*chunk);
    {
      std::lock_guard lock(mu_);
      if (!st.ok() && error_.ok()) error_ = std::move(st);
      free_.push_back(chunk);
    }
    cv_.notify_all();
  }
}

Status DirectFileWriter::WriteChunk(const AlignedChunk& chunk) {
  int fd = file_.fd();
  size_t done = 0;
  while (done < chunk.size) {
    size_t len = chunk.size - done;
    if (direct_ && len % kDirectAlignment != 0) {
      if (len > kDirectAlignment) {
        len -= len % kDirectAlignment;  // the aligned head direct, the tail in the next round
      } else {
        // The file's last bytes: a direct write cannot end off a block boundary.
        GMEM_RETURN_IF_ERROR(LeaveDirect(fd, direct_, file_.name()));
      }
    }
    ssize_t n = ::pwrite(fd, chunk.data.get() + done, len, static_cast<off_t>(chunk.offset + done));
    if (n < 0) {
      int err = errno;
      GMEM_ASSIGN_OR_RETURN(bool retry, Retry(err, fd, direct_, file_.name()));
      if (retry) continue;
      errno = err;
      return ErrnoStatus(Code::kIo, file_.name() + ": write failed");
    }
    if (n == 0) return Status(Code::kIo, file_.name() + ": write failed: the file takes no more bytes");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// ---- DirectFileReader ----

std::unique_ptr<DirectFileReader> DirectFileReader::Start(FdChannel& file, const DirectFileOptions& options) {
  if (options.prefer_cached) {
    off_t at = ::lseek(file.fd(), 0, SEEK_CUR);
    if (at >= 0 && MostlyCached(file.fd(), static_cast<uint64_t>(at))) return nullptr;
  }
  return DirectFileIo::Start<DirectFileReader>(file, options);
}

DirectFileReader::~DirectFileReader() {
  StopThread();
  SetDirect(file_.fd(), false);
}

void DirectFileReader::Run() {
  uint64_t offset = start_offset_;
  for (;;) {
    AlignedChunk* chunk;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !free_.empty(); });
      if (stop_) return;
      chunk = free_.back();
      free_.pop_back();
    }
    chunk->offset = offset;
    Status st = ReadChunk(*chunk);
    {
      std::lock_guard lock(mu_);
      if (st.ok()) {
        full_.push_back(chunk);
      } else {
        error_ = std::move(st);
      }
    }
    cv_.notify_all();
    if (!st.ok() || chunk->eof) return;
    offset += chunk->size;
  }
}

Status DirectFileReader::ReadChunk(AlignedChunk& chunk) {
  int fd = file_.fd();
  chunk.size = 0;
  chunk.eof = false;
  while (chunk.size < chunk_bytes_) {
    ssize_t n = ::pread(fd, chunk.data.get() + chunk.size, chunk_bytes_ - chunk.size,
                        static_cast<off_t>(chunk.offset + chunk.size));
    if (n < 0) {
      int err = errno;
      GMEM_ASSIGN_OR_RETURN(bool retry, Retry(err, fd, direct_, file_.name()));
      if (retry) continue;
      errno = err;
      return ErrnoStatus(Code::kIo, file_.name() + ": read failed");
    }
    if (n == 0) {
      chunk.eof = true;
      break;
    }
    chunk.size += static_cast<size_t>(n);
    if (direct_ && chunk.size % kDirectAlignment != 0) {
      // A direct read ends short of a block only at the end of the file. Confirm it rather than
      // ask again from an unaligned offset (which a direct read refuses).
      struct stat st {};
      if (::fstat(fd, &st) != 0) return ErrnoStatus(Code::kIo, file_.name() + ": cannot stat");
      if (chunk.offset + chunk.size >= static_cast<uint64_t>(st.st_size)) {
        chunk.eof = true;
        break;
      }
    }
  }
  return Status::Ok();
}

Expected<AlignedChunk*> DirectFileReader::TakeFull() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !full_.empty() || !error_.ok(); });
  // What was read before a failure is still served; the error comes where the data stops.
  if (full_.empty()) return error_;
  AlignedChunk* chunk = full_.front();
  full_.pop_front();
  return chunk;
}

Expected<size_t> DirectFileReader::Read(MutableByteSpan out) {
  size_t total = 0;
  while (total < out.size() && !at_eof_) {
    if (current_ == nullptr) {
      GMEM_ASSIGN_OR_RETURN(current_, TakeFull());
      consumed_ = 0;
    }
    size_t n = std::min(out.size() - total, current_->size - consumed_);
    std::memcpy(out.data() + total, current_->data.get() + consumed_, n);
    consumed_ += n;
    total += n;
    if (consumed_ == current_->size) {
      at_eof_ = current_->eof;
      {
        std::lock_guard lock(mu_);
        free_.push_back(current_);
      }
      cv_.notify_all();
      current_ = nullptr;
    }
  }
  bytes_read_ += total;
  return total;
}

// ---- SequentialFile ----

Expected<std::unique_ptr<SequentialFile>> SequentialFile::Open(const std::string& path) {
  GMEM_ASSIGN_OR_RETURN(FdChannel channel, OpenFileForRead(path));
  std::unique_ptr<SequentialFile> file(new SequentialFile(std::move(channel)));
  file->direct_ = DirectFileReader::Start(file->channel_);
  return file;
}

Expected<size_t> SequentialFile::Read(MutableByteSpan out) {
  return direct_ != nullptr ? direct_->Read(out) : channel_.Read(out);
}

}  // namespace gmem::transport
