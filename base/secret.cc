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

}  // namespace gmem
