#pragma once
// ToolProcess: any build/bin tool as a background child process (gmem-migrate send/recv in the
// fault tests), with stdout/stderr captured to files, signals, and a wait with a timeout.

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/testutil/testutil.h"

namespace gmem::migrate::testing {

class ToolProcess {
 public:
  ToolProcess(const std::string& tool, const std::vector<std::string>& args);
  ~ToolProcess();  // kills the process if it still runs
  ToolProcess(const ToolProcess&) = delete;
  ToolProcess& operator=(const ToolProcess&) = delete;

  void Signal(int sig);
  // The exit code; -1 when killed by a signal, or still running at the timeout (then killed).
  int Wait(int timeout_ms = 120000);
  std::string out() const;
  std::string err() const;

 private:
  gmem::testing::TempDir dir_;
  pid_t pid_ = -1;
};

}  // namespace gmem::migrate::testing
