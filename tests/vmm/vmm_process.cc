#include "tests/vmm/vmm_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace gmem::vmm::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

VmmProcess::VmmProcess(const std::vector<std::string>& args) {
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").parent_path().string() + "/gmem-vmm";
  std::string out = dir_.File("stdout"), err = dir_.File("stderr");
  pid_ = fork();
  if (pid_ == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
}

VmmProcess::~VmmProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

int VmmProcess::Wait(int timeout_ms) {
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

std::string VmmProcess::out() const { return Slurp(dir_.File("stdout")); }
std::string VmmProcess::err() const { return Slurp(dir_.File("stderr")); }

std::string ChecksumIn(const std::string& out) {
  size_t at = out.rfind("checksum=");
  if (at == std::string::npos) return "";
  size_t end = out.find('\n', at);
  return out.substr(at + 9, end == std::string::npos ? std::string::npos : end - at - 9);
}

std::string RunForChecksum(const std::vector<std::string>& args) {
  VmmProcess p(args);
  int rc = p.Wait();
  std::string sum = ChecksumIn(p.out());
  if (rc != 0 || sum.size() != 16) {
    ADD_FAILURE() << "gmem-vmm exited " << rc << ", stdout '" << p.out() << "', stderr '" << p.err() << "'";
    return "";
  }
  return sum;
}

}  // namespace gmem::vmm::testing
