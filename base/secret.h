#pragma once
// SecretBytes: a fixed-size buffer for key material. Allocated once (never reallocated, so no
// stale copies are left behind), zeroed on destruction, move-only, and never printed.

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "base/expected.h"

namespace gmem {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // A copy of `bytes`; the caller wipes its own.
  static SecretBytes CopyOf(std::span<const std::byte> bytes);

  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<std::byte> span() { return {data_.get(), size_}; }
  std::span<const std::byte> span() const { return {data_.get(), size_}; }

 private:
  void Wipe();
  std::unique_ptr<std::byte[]> data_;
  size_t size_ = 0;
};

// Zeroes memory in a way the compiler may not elide.
void SecureWipe(void* p, size_t n);

// Reads a small secret (key file, passphrase) from a path or an open fd, at most max_bytes.
// ReadSecretFile refuses files that group or others may read, naming the file and its mode.
// REQUIRES: the caller closes `fd`; ReadSecretFd reads it to EOF.
Expected<SecretBytes> ReadSecretFile(const std::string& path, size_t max_bytes);
Expected<SecretBytes> ReadSecretFd(int fd, size_t max_bytes);

// Writes a secret to a new file with mode 0600: created under a temporary name in the same
// directory, fsynced, then linked into place (so a crash never leaves a partial key file).
// Refuses to replace an existing file unless `overwrite`.
Status WriteSecretFile(const std::string& path, std::span<const std::byte> secret, bool overwrite);

}  // namespace gmem
