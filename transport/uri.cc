#include "transport/uri.h"

#include <charconv>

namespace gmem::transport {
namespace {

bool ParseNumber(std::string_view text, uint64_t max, uint64_t& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && out <= max;
}

Status Bad(const std::string& text, const char* why) {
  return InvalidArgument("bad endpoint '" + text + "': " + why +
                         " (expected tcp:HOST:PORT, unix:PATH, fd:N or file:PATH)");
}

}  // namespace

std::string Uri::ToString() const {
  switch (kind) {
    case Kind::kTcp:
      return "tcp:" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    case Kind::kUnix: return "unix:" + path;
    case Kind::kFd: return "fd:" + std::to_string(fd);
    case Kind::kFile: return "file:" + path;
  }
  return "?";
}

Expected<Uri> ParseUri(const std::string& text) {
  size_t colon = text.find(':');
  if (colon == std::string::npos) return Bad(text, "no scheme");
  std::string scheme = text.substr(0, colon);
  std::string rest = text.substr(colon + 1);
  Uri uri;
  if (scheme == "unix" || scheme == "file") {
    if (rest.empty()) return Bad(text, "empty path");
    uri.kind = scheme == "unix" ? Uri::Kind::kUnix : Uri::Kind::kFile;
    uri.path = rest;
    return uri;
  }
  if (scheme == "fd") {
    uint64_t fd = 0;
    if (!ParseNumber(rest, INT32_MAX, fd)) return Bad(text, "fd must be a non-negative number");
    uri.kind = Uri::Kind::kFd;
    uri.fd = static_cast<int>(fd);
    return uri;
  }
  if (scheme == "tcp") {
    size_t port_colon = rest.rfind(':');
    if (port_colon == std::string::npos) return Bad(text, "no port");
    std::string host = rest.substr(0, port_colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) return Bad(text, "empty host");
    uint64_t port = 0;
    if (!ParseNumber(rest.substr(port_colon + 1), 65535, port)) return Bad(text, "port must be 0..65535");
    uri.kind = Uri::Kind::kTcp;
    uri.host = host;
    uri.port = static_cast<uint16_t>(port);
    return uri;
  }
  return Bad(text, "unknown scheme");
}

}  // namespace gmem::transport
