#include "tests/testutil/testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace gmem::testing {

Status FailingSink::Write(ByteSpan data) {
  if (bytes_.size() + data.size() > limit_) {
    size_t room = limit_ - bytes_.size();
    bytes_.insert(bytes_.end(), data.begin(), data.begin() + static_cast<ptrdiff_t>(room));
    return Status(Code::kIo, "injected write failure after " + std::to_string(limit_) + " bytes", 28 /*ENOSPC*/);
  }
  bytes_.insert(bytes_.end(), data.begin(), data.end());
  return Status::Ok();
}

Bytes RandomBytes(std::mt19937_64& rng, size_t n) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>(rng() & 0xff);
  return out;
}

Bytes FlipByte(ByteSpan in, size_t offset, uint8_t mask) {
  Bytes out(in.begin(), in.end());
  out.at(offset) ^= static_cast<std::byte>(mask);
  return out;
}

Bytes Truncate(ByteSpan in, size_t size) { return Bytes(in.begin(), in.begin() + static_cast<ptrdiff_t>(size)); }

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

ToolProcess::ToolProcess(const std::string& tool, const std::vector<std::string>& args,
                         const std::string& stdin_data) {
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").parent_path().string() + "/" + tool;
  std::string in_path = dir_.File("stdin"), out_path = dir_.File("stdout"), err_path = dir_.File("stderr");
  std::ofstream(in_path) << stdin_data;
  pid_ = fork();
  if (pid_ == 0) {
    int in = open(in_path.c_str(), O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
}

ToolProcess::~ToolProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void ToolProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int ToolProcess::Wait(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (pid_ > 0) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

std::string ToolProcess::out() const { return Slurp(dir_.File("stdout")); }
std::string ToolProcess::err() const { return Slurp(dir_.File("stderr")); }

ToolResult RunTool(const std::string& tool, const std::vector<std::string>& args, const std::string& stdin_data) {
  ToolProcess p(tool, args, stdin_data);
  ToolResult result;
  result.exit_code = p.Wait();
  result.out = p.out();
  result.err = p.err();
  return result;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/gmemtest_XXXXXX";
  const char* made = mkdtemp(tmpl);
  path_ = made != nullptr ? made : "/tmp";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (path_ != "/tmp") std::filesystem::remove_all(path_, ec);
}

}  // namespace gmem::testing
