#include "snapshot/atomic_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <utility>

namespace gmem::snapshot {
namespace {

// "dir/name" -> ("dir", "name"); "name" -> (".", "name"); "/name" -> ("/", "name").
std::pair<std::string, std::string> SplitPath(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::string TempPrefix(const std::string& base) { return "." + base + kTempInfix; }

// Six random name characters, as mkstemp would pick them.
std::string RandomSuffix() {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned char raw[6] = {};
  if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    // Uniqueness is all that matters here (linkat refuses an existing name and we retry).
    uint64_t x = static_cast<uint64_t>(getpid()) * 0x9e3779b97f4a7c15ull ^
                 static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    for (unsigned char& c : raw) c = static_cast<unsigned char>(x >>= 7);
  }
  std::string out;
  for (unsigned char c : raw) out += kChars[c % (sizeof kChars - 1)];
  return out;
}

}  // namespace

bool IsTemporaryName(std::string_view name) {
  // "." + NAME (non-empty) + ".tmp-" + six characters.
  constexpr size_t kInfix = std::char_traits<char>::length(kTempInfix);
  constexpr size_t kSuffix = 6;
  return name.size() >= 2 + kInfix + kSuffix && name.front() == '.' &&
         name.substr(name.size() - kSuffix - kInfix, kInfix) == kTempInfix;
}

AtomicFile::AtomicFile(std::string path, std::string dir, std::string base, UniqueFd dir_fd, UniqueFd fd,
                       std::string temp_name)
    : path_(std::move(path)),
      dir_(std::move(dir)),
      base_(std::move(base)),
      dir_fd_(std::move(dir_fd)),
      fd_(std::move(fd)),
      temp_name_(std::move(temp_name)),
      temp_path_(temp_name_.empty() ? std::string() : dir_ + "/" + temp_name_) {}

Expected<AtomicFile> AtomicFile::Create(const std::string& path, const AtomicFileOptions& options) {
  auto [dir, base] = SplitPath(path);
  if (base.empty() || base == "." || base == "..") return InvalidArgument("'" + path + "' is not a file name");
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return ErrnoStatus(Code::kIo, "cannot open the directory '" + dir + "'");
  struct stat st {};
  if (::fstatat(dir_fd.get(), base.c_str(), &st, 0) == 0 && S_ISDIR(st.st_mode)) {
    return InvalidArgument("'" + path + "' is a directory");
  }
  if (options.allow_unnamed) {
    // An unnamed file in the target directory: it has no name until it is complete, so nothing
    // can be left behind.
    UniqueFd fd(::openat(dir_fd.get(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, options.mode));
    if (fd.valid()) {
      // The umask may have narrowed the mode; a snapshot holds guest memory: say it exactly.
      if (::fchmod(fd.get(), options.mode) != 0) return ErrnoStatus(Code::kIo, "cannot chmod a new file in '" + dir + "'");
      return AtomicFile(path, dir, base, std::move(dir_fd), std::move(fd), "");
    }
    // EOPNOTSUPP: this filesystem has no O_TMPFILE; EISDIR: this kernel does not know the flag.
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
      return ErrnoStatus(Code::kIo, "cannot create a file in '" + dir + "'");
    }
  }
  std::string templ = dir + "/" + TempPrefix(base) + "XXXXXX";
  UniqueFd fd(::mkostemp(templ.data(), O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "cannot create a temporary file in '" + dir + "'");
  std::string temp_name = templ.substr(dir.size() + 1);
  AtomicFile file(path, dir, base, std::move(dir_fd), std::move(fd), temp_name);
  if (::fchmod(file.fd(), options.mode) != 0) return ErrnoStatus(Code::kIo, "cannot chmod '" + file.temp_path() + "'");
  return file;
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      dir_(std::move(other.dir_)),
      base_(std::move(other.base_)),
      dir_fd_(std::move(other.dir_fd_)),
      fd_(std::move(other.fd_)),
      temp_name_(std::exchange(other.temp_name_, std::string())),
      temp_path_(std::exchange(other.temp_path_, std::string())),
      committed_(std::exchange(other.committed_, true)) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    Abandon();
    path_ = std::move(other.path_);
    dir_ = std::move(other.dir_);
    base_ = std::move(other.base_);
    dir_fd_ = std::move(other.dir_fd_);
    fd_ = std::move(other.fd_);
    temp_name_ = std::exchange(other.temp_name_, std::string());
    temp_path_ = std::exchange(other.temp_path_, std::string());
    committed_ = std::exchange(other.committed_, true);
  }
  return *this;
}

AtomicFile::~AtomicFile() { Abandon(); }

void AtomicFile::Abandon() {
  if (!committed_ && !temp_name_.empty() && dir_fd_.valid()) ::unlinkat(dir_fd_.get(), temp_name_.c_str(), 0);
  temp_name_.clear();
  temp_path_.clear();
  fd_.Reset();  // an unnamed temporary disappears with its last fd
}

Status AtomicFile::LinkUnnamed() {
  std::string proc = "/proc/self/fd/" + std::to_string(fd_.get());
  auto link_as = [&](const std::string& name) {
    int r = ::linkat(AT_FDCWD, proc.c_str(), dir_fd_.get(), name.c_str(), AT_SYMLINK_FOLLOW);
    // Without /proc, AT_EMPTY_PATH does the same (it needs CAP_DAC_READ_SEARCH).
    if (r != 0 && errno == ENOENT) r = ::linkat(fd_.get(), "", dir_fd_.get(), name.c_str(), AT_EMPTY_PATH);
    return r;
  };
  // No file there yet: linking is the atomic step.
  if (link_as(base_) == 0) return Status::Ok();
  if (errno != EEXIST) return ErrnoStatus(Code::kIo, "cannot create '" + path_ + "'");
  // linkat never replaces: link under a temporary name, then rename over the old file. Only a
  // crash inside this window can leave a (complete) ".NAME.tmp-XXXXXX" behind.
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = TempPrefix(base_) + RandomSuffix();
    if (link_as(name) != 0) {
      if (errno == EEXIST) continue;
      return ErrnoStatus(Code::kIo, "cannot create a temporary name in '" + dir_ + "'");
    }
    if (::renameat(dir_fd_.get(), name.c_str(), dir_fd_.get(), base_.c_str()) != 0) {
      Status st = ErrnoStatus(Code::kIo, "cannot replace '" + path_ + "'");
      ::unlinkat(dir_fd_.get(), name.c_str(), 0);
      return st;
    }
    return Status::Ok();
  }
  return Status(Code::kIo, "cannot find a free temporary name in '" + dir_ + "'");
}

Status AtomicFile::RenameNamed() {
  if (::renameat(dir_fd_.get(), temp_name_.c_str(), dir_fd_.get(), base_.c_str()) != 0) {
    return ErrnoStatus(Code::kIo, "cannot rename '" + temp_path_ + "' to '" + path_ + "'");
  }
  temp_name_.clear();
  temp_path_.clear();
  return Status::Ok();
}

Status AtomicFile::Commit() {
  if (committed_ || !fd_.valid()) return InvalidArgument("'" + path_ + "': already committed or abandoned");
  if (::fsync(fd_.get()) != 0) {
    Status st = ErrnoStatus(Code::kIo, "cannot fsync '" + path_ + "'");
    Abandon();
    return st;
  }
  Status st = temp_name_.empty() ? LinkUnnamed() : RenameNamed();
  if (!st.ok()) {
    Abandon();
    return st;
  }
  committed_ = true;
  fd_.Reset();
  // The rename is durable only once the directory is.
  if (::fsync(dir_fd_.get()) != 0) {
    return ErrnoStatus(Code::kIo, "'" + path_ + "' is in place but its directory could not be fsynced");
  }
  return Status::Ok();
}

}  // namespace gmem::snapshot
