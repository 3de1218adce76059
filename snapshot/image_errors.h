#pragma once
// How the snapshot commands classify errors of an image read from a file.

#include "base/status.h"

namespace gmem::snapshot {

// The format reports a record out of sequence, on another channel or after END as a protocol
// error (FORMAT.md §9): on a live stream a peer broke the rules. In a file there is no peer —
// records were swapped, dropped or appended — so the file is damaged: kCorrupt, same message.
inline Status AsFileError(Status status) {
  if (status.code() != Code::kProtocol) return status;
  return Status(Code::kCorrupt, status.message(), status.sys_errno());
}

}  // namespace gmem::snapshot
