#include "base/secret.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/unique_fd.h"

namespace gmem {

void SecureWipe(void* p, size_t n) {
  if (p != nullptr && n != 0) explicit_bzero(p, n);
}

SecretBytes::SecretBytes(size_t size) : data_(new std::byte[size]()), size_(size) {}

SecretBytes::~SecretBytes() { Wipe(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::move(other.data_)), size_(other.size_) {
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::move(other.data_);
    size_ = other.size_;
    other.size_ = 0;
  }
  return *this;
}

void SecretBytes::Wipe() {
  SecureWipe(data_.get(), size_);
  data_.reset();
  size_ = 0;
}

SecretBytes SecretBytes::CopyOf(std::span<const std::byte> bytes) {
  SecretBytes s(bytes.size());
  if (!bytes.empty()) memcpy(s.data(), bytes.data(), bytes.size());
  return s;
}

Expected<SecretBytes> ReadSecretFd(int fd, size_t max_bytes) {
  // One byte more than allowed, so an oversize secret is detected rather than cut.
  SecretBytes buf(max_bytes + 1);
  size_t used = 0;
  while (used < buf.size()) {
    ssize_t n = read(fd, buf.data() + used, buf.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(Code::kIo, "cannot read secret");
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > max_bytes) {
    return InvalidArgument("secret is longer than " + std::to_string(max_bytes) + " bytes");
  }
  return SecretBytes::CopyOf(buf.span().first(used));
}

Expected<SecretBytes> ReadSecretFile(const std::string& path, size_t max_bytes) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "cannot open key file '" + path + "'");
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(Code::kIo, "cannot stat '" + path + "'");
  if (!S_ISREG(st.st_mode)) return InvalidArgument("key file '" + path + "' is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return InvalidArgument("key file '" + path + "' has mode " + mode +
                           ": group or others may read it; run chmod 600");
  }
  auto secret = ReadSecretFd(fd.get(), max_bytes);
  if (!secret.ok()) return std::move(secret).status().WithContext("key file '" + path + "'");
  return secret;
}

namespace {

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAllFd(int fd, std::span<const std::byte> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(Code::kIo, "write failed");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Status WriteSecretFile(const std::string& path, std::span<const std::byte> secret, bool overwrite) {
  std::string dir = DirName(path);
  // An unnamed file in the target directory: it has no name until it is complete.
  UniqueFd fd(open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "cannot create a file in '" + dir + "'");
  if (fchmod(fd.get(), 0600) != 0) return ErrnoStatus(Code::kIo, "cannot chmod new key file");
  GMEM_RETURN_IF_ERROR(WriteAllFd(fd.get(), secret).WithContext("'" + path + "'"));
  if (fsync(fd.get()) != 0) return ErrnoStatus(Code::kIo, "cannot fsync '" + path + "'");
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  if (!overwrite) {
    if (linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      if (errno == EEXIST) return Status(Code::kIo, "'" + path + "' already exists (use --force to replace it)");
      return ErrnoStatus(Code::kIo, "cannot create '" + path + "'");
    }
  } else {
    // Link under a temporary name, then rename over the old file atomically.
    std::string tmp = path + ".tmp-" + std::to_string(getpid());
    if (linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return ErrnoStatus(Code::kIo, "cannot create '" + tmp + "'");
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) {
      Status st = ErrnoStatus(Code::kIo, "cannot replace '" + path + "'");
      unlink(tmp.c_str());
      return st;
    }
  }
  UniqueFd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid()) fsync(dfd.get());
  return Status::Ok();
}

}  // namespace gmem
