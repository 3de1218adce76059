#include "base/status.h"

#include <cstring>

namespace gmem {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kIo: return "io";
    case Code::kCorrupt: return "corrupt";
    case Code::kAuth: return "auth";
    case Code::kIncompatible: return "incompatible";
    case Code::kProtocol: return "protocol";
    case Code::kPeerAborted: return "peer-aborted";
    case Code::kKvm: return "kvm";
    case Code::kUnsupported: return "unsupported";
    case Code::kInvalidArgument: return "invalid-argument";
    case Code::kCancelled: return "cancelled";
  }
  return "unknown";
}

Status Status::WithContext(std::string_view context) const& {
  Status copy = *this;
  return std::move(copy).WithContext(context);
}

Status Status::WithContext(std::string_view context) && {
  if (!ok() && !context.empty()) {
    std::string prefixed(context);
    prefixed += ": ";
    prefixed += message_;
    message_ = std::move(prefixed);
  }
  return std::move(*this);
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out = message_;
  if (errno_ != 0) {
    out += ": ";
    out += std::strerror(errno_);
  }
  return out;
}

Status ErrnoStatus(Code code, std::string message) {
  return Status(code, std::move(message), errno);
}

}  // namespace gmem
