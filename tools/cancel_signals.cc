#include "tools/cancel_signals.h"

#include <signal.h>

namespace gmem::tools {

namespace {

std::atomic<bool> g_cancel{false};

void OnSignal(int) { g_cancel.store(true); }

}  // namespace

const std::atomic<bool>* InstallCancelSignals() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return &g_cancel;
}

void RequestCancel() { g_cancel.store(true); }

const std::atomic<bool>* CancelFlag() { return &g_cancel; }

}  // namespace gmem::tools
