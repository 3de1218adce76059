#include "tools/exit_codes.h"

#include <cstdio>
#include <string>

namespace gmem::tools {

ExitCode ExitCodeFor(Code code) {
  switch (code) {
    case Code::kOk: return kExitOk;
    case Code::kInvalidArgument: return kExitUsage;
    case Code::kCorrupt:
    case Code::kIncompatible: return kExitBadInput;
    case Code::kAuth: return kExitKey;
    case Code::kIo: return kExitIo;
    case Code::kProtocol:
    case Code::kPeerAborted: return kExitPeer;
    case Code::kKvm:
    case Code::kUnsupported: return kExitPlatform;
    case Code::kCancelled: return kExitCancelled;
  }
  return kExitIo;
}

std::span<const ExitCodeDoc> ExitCodeDocs() {
  static constexpr ExitCodeDoc kDocs[] = {
      {kExitOk, "", "success"},
      {kExitUsage, "", "usage: bad flags or arguments"},
      {kExitBadInput, "", "bad input: a corrupt, truncated or incompatible image or stream"},
      {kExitKey, "", "key error: a wrong or unusable key, or authentication failed"},
      {kExitIo, "", "I/O error: a file, a full disk, a socket"},
      {kExitPeer, "", "the peer broke the protocol, aborted or vanished; a migration was left \"in doubt\""},
      {kExitPlatform, "", "platform: a KVM failure or a feature this host lacks (e.g. private pages without a provisioned agent)"},
      {kExitCancelled, "", "cancelled (SIGINT or SIGTERM, or by policy)"},
      {kExitDiffer, "gmem-snapshot", "diff: the images differ"},
      {kExitAnomalies, "gmem-soak", "the soak saw anomalies (listed in its summary and --report)"},
  };
  return kDocs;
}

int Fail(std::string_view tool, std::string_view what, const Status& status) {
  std::string line(tool);
  line += ": ";
  if (!what.empty()) {
    line += what;
    line += ": ";
  }
  line += status.ToString();
  // One line, always: a message never spans lines.
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  return ExitCodeFor(status.code());
}

}  // namespace gmem::tools
