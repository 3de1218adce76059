#pragma once
// The exit codes every gmemkit tool uses, and the one place that turns a Status into a one-line
// message and an exit code (STYLE.md, "Errors"). Documented in README.md, "Exit codes".

#include <span>
#include <string_view>

#include "base/status.h"

namespace gmem::tools {

enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,       // bad flags or arguments
  kExitBadInput = 2,    // corrupt, truncated or incompatible image or stream
  kExitKey = 3,         // wrong or unusable key, authentication failed
  kExitIo = 4,          // I/O error: file, disk full, socket
  kExitPeer = 5,        // the peer broke the protocol, aborted or vanished
  kExitPlatform = 6,    // KVM failure or a feature this host lacks
  kExitCancelled = 7,   // cancelled by the user (SIGINT) or by policy
  // gmem-snapshot diff only: the images differ. Like cmp(1)'s 1, but 1 is "usage" here; it keeps
  // clear of codes this table may add. No Status maps to it.
  kExitDiffer = 10,
  // gmem-soak only: the soak ran and saw anomalies (its report lists them). No Status maps to it.
  kExitAnomalies = 11,
};

// What an exit code means, as the manual pages state it (EXIT STATUS). `tool` empty: every tool
// uses it; else only that tool does.
struct ExitCodeDoc {
  ExitCode code;
  std::string_view tool;
  std::string_view meaning;
};

// Every ExitCode, in increasing order.
std::span<const ExitCodeDoc> ExitCodeDocs();

ExitCode ExitCodeFor(Code code);

// Prints "<tool>: <what>: <status>" on stderr as one line and returns the exit code.
int Fail(std::string_view tool, std::string_view what, const Status& status);

}  // namespace gmem::tools
