#include "tests/testutil/testutil.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

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

ToolResult RunTool(const std::string& tool, const std::vector<std::string>& args, const std::string& stdin_data) {
  // The tools are built next to the test binaries (build/bin).
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").parent_path().string() + "/" + tool;
  TempDir io;
  std::string in_path = io.File("stdin"), out_path = io.File("stdout"), err_path = io.File("stderr");
  std::ofstream(in_path) << stdin_data;
  ToolResult result;
  pid_t pid = fork();
  if (pid == 0) {
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
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = Slurp(out_path);
  result.err = Slurp(err_path);
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
