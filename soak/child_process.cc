#include "soak/child_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

#include "base/unique_fd.h"

namespace gmem::soak {
namespace {

// Opens `path` for the child's output ("" is /dev/null). In the parent, before fork: the child
// only dup2s.
Expected<UniqueFd> OpenOutput(const std::string& path) {
  const char* name = path.empty() ? "/dev/null" : path.c_str();
  int flags = path.empty() ? O_WRONLY : O_WRONLY | O_CREAT | O_TRUNC;
  UniqueFd fd(open(name, flags | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(Code::kIo, "cannot open '" + std::string(name) + "'");
  return fd;
}

// The child between fork and exec: async-signal-safe calls only (the parent may have threads).
[[noreturn]] void ExecChild(char* const* argv, int netns_fd, int in, int out, int err) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // A parent that died before prctl would leave us orphaned for good.
  if (getppid() == 1) _exit(126);
  setpgid(0, 0);  // its own process group: a terminal's ^C reaches the runner, not every child
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) {
    static const char kMsg[] = "cannot enter the network namespace\n";
    (void)!write(err, kMsg, sizeof(kMsg) - 1);
    _exit(126);
  }
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  execvp(argv[0], argv);
  static const char kMsg[] = "cannot execute the program\n";
  (void)!write(2, kMsg, sizeof(kMsg) - 1);
  _exit(127);
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGPIPE: return "SIGPIPE";
    default: return nullptr;
  }
}

}  // namespace

std::string ExitStatus::Describe() const {
  if (exited()) return "exit " + std::to_string(code);
  const char* name = SignalName(signal);
  return std::string("killed by ") + (name != nullptr ? name : "signal " + std::to_string(signal));
}

Expected<ChildProcess> ChildProcess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return InvalidArgument("no program to start");
  UniqueFd in(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return ErrnoStatus(Code::kIo, "cannot open /dev/null");
  GMEM_ASSIGN_OR_RETURN(UniqueFd out, OpenOutput(options.stdout_path));
  UniqueFd err;
  if (!options.stderr_path.empty() && options.stderr_path == options.stdout_path) {
    err.Reset(fcntl(out.get(), F_DUPFD_CLOEXEC, 0));
    if (!err.valid()) return ErrnoStatus(Code::kIo, "dup");
  } else {
    GMEM_ASSIGN_OR_RETURN(err, OpenOutput(options.stderr_path));
  }
  std::vector<char*> argv;
  for (const std::string& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(Code::kIo, "fork");
  if (pid == 0) ExecChild(argv.data(), options.netns_fd, in.get(), out.get(), err.get());
  return ChildProcess(pid);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exit_.has_value()) Kill();
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_(std::exchange(other.exit_, std::nullopt)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !exit_.has_value()) Kill();
    pid_ = std::exchange(other.pid_, -1);
    exit_ = std::exchange(other.exit_, std::nullopt);
  }
  return *this;
}

bool ChildProcess::Reap(int options) {
  if (pid_ <= 0 || exit_.has_value()) return true;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, options);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  ExitStatus e;
  if (r < 0) {
    e.code = -1;  // not our child any more: nothing to wait for
  } else if (WIFEXITED(status)) {
    e.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.signal = WTERMSIG(status);
  }
  exit_ = e;
  return true;
}

bool ChildProcess::Running() { return !Reap(WNOHANG); }

void ChildProcess::Signal(int sig) {
  if (Running()) kill(pid_, sig);
}

std::optional<ExitStatus> ChildProcess::Wait(int timeout_ms) {
  if (timeout_ms < 0) {
    Reap(0);
    return exit_;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto pause = std::chrono::milliseconds(1);
  while (!Reap(WNOHANG)) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
  return exit_;
}

ExitStatus ChildProcess::Kill() {
  if (pid_ <= 0) return ExitStatus{};
  if (!exit_.has_value()) {
    kill(pid_, SIGKILL);
    Reap(0);
  }
  return *exit_;
}

Expected<CommandResult> RunCommand(const std::vector<std::string>& argv, int netns_fd, int timeout_ms) {
  char path[] = "/tmp/gmem-soak-cmd-XXXXXX";
  UniqueFd file(mkstemp(path));
  if (!file.valid()) return ErrnoStatus(Code::kIo, "mkstemp");
  unlink(path);  // nothing to clean up, however this ends
  // The child opens the output by name: our fd's /proc link names the unlinked file.
  std::string output_path = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(file.get());
  SpawnOptions options{argv, netns_fd, output_path, output_path};
  GMEM_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(options));
  CommandResult result;
  std::optional<ExitStatus> done = child.Wait(timeout_ms);
  result.status = done.has_value() ? *done : child.Kill();
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = pread(file.get(), buf, sizeof(buf), static_cast<off_t>(text.size()))) > 0) text.append(buf, n);
  result.output = std::move(text);
  if (!done.has_value()) result.output += "(timed out after " + std::to_string(timeout_ms) + " ms)";
  return result;
}

Status RunChecked(const std::vector<std::string>& argv, int netns_fd, int timeout_ms) {
  GMEM_ASSIGN_OR_RETURN(CommandResult r, RunCommand(argv, netns_fd, timeout_ms));
  if (r.ok()) return Status::Ok();
  std::string command;
  for (const std::string& a : argv) command += (command.empty() ? "" : " ") + a;
  std::string first = r.output.substr(0, r.output.find('\n'));
  return Status(Code::kIo, "'" + command + "' failed (" + r.status.Describe() + ")" + (first.empty() ? "" : ": " + first));
}

}  // namespace gmem::soak
