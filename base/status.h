#pragma once
// The one error model of gmemkit (STYLE.md, "Errors"): a [[nodiscard]] Status with a closed set
// of codes, an errno where one applies, a message, and context that each layer prepends.

#include <string>
#include <string_view>
#include <utility>

namespace gmem {

enum class Code : int {
  kOk = 0,
  kIo,               // the OS said no: read/write/open/mmap failed
  kCorrupt,          // bytes are malformed: bad magic, bad length, truncated, out of range
  kAuth,             // authentication failed: wrong key, tampered record
  kIncompatible,     // well-formed but not for us: newer version, unknown cipher
  kProtocol,         // a peer broke the rules: out-of-order records, unexpected message
  kPeerAborted,      // the peer said it gave up
  kKvm,              // a KVM ioctl failed
  kUnsupported,      // this kernel/build lacks the feature
  kInvalidArgument,  // the caller passed something wrong
  kCancelled,        // stopped on request
};

// Stable lowercase name of a code ("corrupt", "auth", ...), for messages and JSON.
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message, int err = 0)
      : code_(code), errno_(err), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }

  // Returns this status with "context: " prepended to the message (no-op when OK).
  Status WithContext(std::string_view context) const&;
  Status WithContext(std::string_view context) &&;

  // "message" plus ": strerror(errno)" when an errno is set.
  std::string ToString() const;

  // Marks an intentionally ignored status.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string message_;
};

// Status from the current errno: message + the errno value.
Status ErrnoStatus(Code code, std::string message);

// Shorthands for the common codes.
inline Status CorruptError(std::string m) { return Status(Code::kCorrupt, std::move(m)); }
inline Status AuthError(std::string m) { return Status(Code::kAuth, std::move(m)); }
inline Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status ProtocolError(std::string m) { return Status(Code::kProtocol, std::move(m)); }
inline Status Unsupported(std::string m) { return Status(Code::kUnsupported, std::move(m)); }
inline Status IncompatibleError(std::string m) { return Status(Code::kIncompatible, std::move(m)); }

}  // namespace gmem

// Propagates a non-OK Status from the enclosing function.
#define GMEM_RETURN_IF_ERROR(expr)                \
  do {                                            \
    ::gmem::Status gmem_status_ = (expr);         \
    if (!gmem_status_.ok()) return gmem_status_;  \
  } while (0)

#define GMEM_CONCAT_INNER_(a, b) a##b
#define GMEM_CONCAT_(a, b) GMEM_CONCAT_INNER_(a, b)

// `GMEM_ASSIGN_OR_RETURN(auto x, MakeX());` unwraps an Expected or returns its error.
#define GMEM_ASSIGN_OR_RETURN(lhs, expr) \
  GMEM_ASSIGN_OR_RETURN_IMPL_(GMEM_CONCAT_(gmem_expected_, __LINE__), lhs, expr)
#define GMEM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()
