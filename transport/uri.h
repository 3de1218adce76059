#pragma once
// Stream endpoints as users write them: tcp:HOST:PORT, unix:PATH, fd:N, file:PATH.

#include <cstdint>
#include <string>

#include "base/expected.h"

namespace gmem::transport {

struct Uri {
  enum class Kind { kTcp, kUnix, kFd, kFile };
  Kind kind = Kind::kTcp;
  std::string host;  // kTcp: name or address; "[::1]" style brackets are removed
  uint16_t port = 0;  // kTcp
  std::string path;   // kUnix, kFile
  int fd = -1;        // kFd

  std::string ToString() const;
};

// Parses a URI; the error says which form was expected.
Expected<Uri> ParseUri(const std::string& text);

}  // namespace gmem::transport
