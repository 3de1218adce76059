#pragma once
// Shared test helpers: status matchers, fakes and byte surgery (STYLE.md, "Tests").

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "base/bytes.h"
#include "base/expected.h"
#include "base/io.h"

namespace gmem::testing {

// EXPECT_OK(status_or_expected)
#define EXPECT_OK(expr) EXPECT_TRUE(::gmem::testing::StatusOf(expr).ok()) << ::gmem::testing::StatusOf(expr).ToString()
#define ASSERT_OK(expr) ASSERT_TRUE(::gmem::testing::StatusOf(expr).ok()) << ::gmem::testing::StatusOf(expr).ToString()

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Expected<T>& e) { return e.status(); }

// Matches a Status or Expected whose code is `code` and whose message contains `substr`.
MATCHER_P2(StatusIs, code, substr,
           std::string("has code ") + std::string(::gmem::CodeName(code)) + " and message containing '" +
               std::string(substr) + "'") {
  const ::gmem::Status& s = ::gmem::testing::StatusOf(arg);
  *result_listener << "status is [" << ::gmem::CodeName(s.code()) << "] " << s.ToString();
  return s.code() == code && s.message().find(substr) != std::string::npos;
}

// A sink that accepts `limit` bytes and then fails every write (a full disk, a dropped peer).
class FailingSink final : public ByteSink {
 public:
  explicit FailingSink(size_t limit) : limit_(limit) {}
  Status Write(ByteSpan data) override;
  const Bytes& bytes() const { return bytes_; }

 private:
  size_t limit_;
  Bytes bytes_;
};

// Deterministic pseudo-random bytes.
Bytes RandomBytes(std::mt19937_64& rng, size_t n);

// Byte surgery.
Bytes FlipByte(ByteSpan in, size_t offset, uint8_t mask = 0x01);
Bytes Truncate(ByteSpan in, size_t size);

// Runs a tool from the test binary's own directory (build/bin) with `args`, with
// `stdin_data` on its standard input, and captures what it printed and how it exited.
struct ToolResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};
ToolResult RunTool(const std::string& tool, const std::vector<std::string>& args, const std::string& stdin_data = "");

// A fresh empty directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A tool from the test binary's own directory (build/bin) as a background child process: stdin
// from `stdin_data`, stdout/stderr captured to files, signals, and a wait with a timeout.
class ToolProcess {
 public:
  ToolProcess(const std::string& tool, const std::vector<std::string>& args, const std::string& stdin_data = "");
  ~ToolProcess();  // kills the process if it still runs
  ToolProcess(const ToolProcess&) = delete;
  ToolProcess& operator=(const ToolProcess&) = delete;

  void Signal(int sig);
  // The exit code; -1 when killed by a signal, or still running at the timeout (then killed).
  int Wait(int timeout_ms = 120000);
  std::string out() const;
  std::string err() const;

 private:
  TempDir dir_;
  int pid_ = -1;
};

}  // namespace gmem::testing
