#pragma once
// VmmProcess: a gmem-vmm child process for end-to-end tests — started in the background (unlike
// testutil's RunTool), with stdout/stderr captured to files, waited for with a timeout and killed
// if the test ends first.

#include <string>
#include <vector>

#include "tests/testutil/testutil.h"

namespace gmem::vmm::testing {

// Skips the current test when this machine has no /dev/kvm (and only then).
#define GMEM_VMM_SKIP_WITHOUT_KVM()                                         \
  do {                                                                      \
    if (::access("/dev/kvm", F_OK) != 0)                                    \
      GTEST_SKIP() << "needs /dev/kvm: runs a real KVM guest";              \
  } while (0)

// Starts build/bin/gmem-vmm with `args` (see gmem::testing::ToolProcess).
class VmmProcess : public gmem::testing::ToolProcess {
 public:
  explicit VmmProcess(const std::vector<std::string>& args) : ToolProcess("gmem-vmm", args) {}
};

// Runs gmem-vmm to its end and returns the hex of its `checksum=` line ("" on failure, with the
// reason added as a test failure).
std::string RunForChecksum(const std::vector<std::string>& args);

// The checksum in `out` (the last `checksum=` line), or "".
std::string ChecksumIn(const std::string& out);

}  // namespace gmem::vmm::testing
