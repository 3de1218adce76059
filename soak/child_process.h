#pragma once
// ChildProcess: a program the soak runner starts — a gmem-vmm host, a gmem-migrate or
// gmem-snapshot run, an `ip`/`tc`/`nft` command — optionally inside a network namespace, with its
// output going to files, signalled and waited for with a timeout, and killed when its owner goes.
//
// Every child gets PR_SET_PDEATHSIG(SIGKILL): it dies with the thread that spawned it, so a
// runner that is killed leaves no VMM behind. REQUIRES: spawn from a thread that outlives the
// child (the runner's main thread).

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/expected.h"

namespace gmem::soak {

// How a child ended.
struct ExitStatus {
  int code = -1;   // exit code, or -1 when a signal ended it
  int signal = 0;  // the signal that ended it, or 0
  bool exited() const { return signal == 0; }
  // "exit 3" or "killed by SIGKILL".
  std::string Describe() const;
};

struct SpawnOptions {
  // argv[0] is the program: a path, or a name looked up in PATH.
  std::vector<std::string> argv = {};
  // A network namespace (an fd of /proc/PID/ns/net) the child enters before exec; -1: ours.
  int netns_fd = -1;
  // Where stdout and stderr go (created or truncated, mode 0600); "" is /dev/null. The same path
  // for both interleaves them.
  std::string stdout_path = {};
  std::string stderr_path = {};
};

class ChildProcess {
 public:
  // Forks and execs. A program that cannot be executed ends with exit code 127 (its stderr says
  // why); a namespace that cannot be entered with 126.
  static Expected<ChildProcess> Spawn(const SpawnOptions& options);

  ChildProcess() = default;
  ~ChildProcess();  // SIGKILL and reap a child that still runs
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // True until the child has exited and been reaped (Running() reaps without blocking).
  bool Running();
  // Sends `sig` if the child still runs.
  void Signal(int sig);
  // Waits up to `timeout_ms` (-1: forever); nullopt if it still runs then.
  std::optional<ExitStatus> Wait(int timeout_ms);
  // SIGKILL (if still running) and reap.
  ExitStatus Kill();
  // How it ended, once reaped.
  const std::optional<ExitStatus>& exit_status() const { return exit_; }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  bool Reap(int options);

  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_;
};

// A short command run to its end with stdout and stderr captured together.
struct CommandResult {
  ExitStatus status;
  std::string output;
  bool ok() const { return status.exited() && status.code == 0; }
};

// Runs `argv` (inside `netns_fd` unless -1) and waits up to `timeout_ms`; a command still running
// then is killed and reported as such. An error only when the command could not be started.
Expected<CommandResult> RunCommand(const std::vector<std::string>& argv, int netns_fd = -1, int timeout_ms = 10000);

// Like RunCommand, but a command that did not exit 0 is an error naming it and its output's first
// line.
Status RunChecked(const std::vector<std::string>& argv, int netns_fd = -1, int timeout_ms = 10000);

}  // namespace gmem::soak
