#pragma once
// SIGINT/SIGTERM as a cancel request: the tools hand the flag to the engines, which check it
// between batches or records and then undo what they started (resume a VM, discard a copy).

#include <atomic>

namespace gmem::tools {

// Installs handlers that set the returned flag on SIGINT and SIGTERM, and ignores SIGPIPE (a
// peer that hangs up is an error the engines report, not a reason to die).
const std::atomic<bool>* InstallCancelSignals();

// Sets the same flag from a policy (a stall with --on-stall abort): the engines undo what they
// started exactly as after SIGINT. Safe from any thread.
void RequestCancel();

// The flag, without handlers (a tool whose blocking reads a signal must still end by default).
const std::atomic<bool>* CancelFlag();

}  // namespace gmem::tools
