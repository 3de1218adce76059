// CLI tests of gmem-vmm: bad flags exit 1 with one line on stderr; other failures map to the
// documented exit codes.

#include <unistd.h>

#include "tests/testutil/testutil.h"

namespace gmem {
namespace {

using ::gmem::testing::RunTool;
using ::testing::MatchesRegex;

void ExpectUsageError(const std::vector<std::string>& args, const std::string& regex) {
  auto r = RunTool("gmem-vmm", args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, MatchesRegex(regex));
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(GmemVmmCliTest, BadFlagsExitOneWithOneLine) {
  ExpectUsageError({}, "gmem-vmm: .*\\(see --help\\)\n");
  ExpectUsageError({"run", "--frobnicate"}, "gmem-vmm: .*frobnicate.*\\(see --help\\)\n");
  ExpectUsageError({"run"}, "gmem-vmm: run: --mem SIZE is required \\(unless --incoming\\)\n");
  ExpectUsageError({"run", "--mem", "lots"}, "gmem-vmm: run: size 'lots' is not a number\n");
  ExpectUsageError({"run", "--mem", "3M"}, "gmem-vmm: run: --mem 3145728: must be a multiple of 2 MiB.*\n");
  ExpectUsageError({"run", "--mem", "16M", "--slot", "mmio"}, "gmem-vmm: run: unknown slot mode 'mmio'.*\n");
  ExpectUsageError({"run", "--mem", "16M", "--coco", "snp"}, "gmem-vmm: run: unknown coco mode 'snp'.*\n");
  ExpectUsageError({"run", "--mem", "16M", "--convert-contents", "keep"}, "gmem-vmm: run: unknown conversion contents.*\n");
  ExpectUsageError({"run", "--mem", "16M", "--workload", "stress"}, "gmem-vmm: run: unknown workload 'stress'.*\n");
  ExpectUsageError({"run", "--mem", "16M", "--workload", "dirty:rate=x"}, "gmem-vmm: run: .*is not a number\n");
  ExpectUsageError({"run", "--mem", "16M", "--vcpus", "0"}, "gmem-vmm: run: --vcpus 0: must be 1..16\n");
  ExpectUsageError({"run", "--mem", "16M", "--vcpus", "2", "--steps", "1"}, "gmem-vmm: run: --steps must be at least --vcpus\n");
  ExpectUsageError({"run", "--incoming"}, "gmem-vmm: run: --incoming needs --control PATH\n");
  ExpectUsageError({"run", "--mem", "16M", "--steps", "-5"}, "gmem-vmm: .*\\(see --help\\)\n");
}

TEST(GmemVmmCliTest, PrivateNeedsEmulatedCocoAndAPercentage) {
  ExpectUsageError({"run", "--mem", "16M", "--private", "25"},
                   "gmem-vmm: run: --private needs --coco emulated \\(without private memory every page is shared\\)\n");
  ExpectUsageError({"run", "--mem", "16M", "--coco", "none", "--private", "1"}, "gmem-vmm: run: --private needs --coco emulated.*\n");
  ExpectUsageError({"run", "--mem", "16M", "--coco", "emulated", "--private", "101"},
                   "gmem-vmm: run: --private 101: must be a percentage, 0\\.\\.100\n");
  ExpectUsageError({"run", "--mem", "16M", "--coco", "emulated", "--private", "-1"},
                   "gmem-vmm: --private: must not be negative \\(see --help\\)\n");
  ExpectUsageError({"run", "--mem", "16M", "--coco", "emulated", "--private", "half"},
                   "gmem-vmm: .*--private.*\\(see --help\\)\n");
  ExpectUsageError({"run", "--incoming", "--control", "/nonexistent/ctl", "--coco", "emulated", "--private", "5"},
                   "gmem-vmm: run: --private: not with --incoming.*\n");
}

// `run --incoming --mem SIZE [--regions N]` pre-allocates the target's memory: its sizes are checked
// as a fresh VM's are (before anything is created or listened on).
TEST(GmemVmmCliTest, IncomingMemIsCheckedAsForAFreshVm) {
  const std::vector<std::string> incoming = {"run", "--incoming", "--control", "/nonexistent/ctl"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = incoming;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  ExpectUsageError(with({"--mem", "lots"}), "gmem-vmm: run: size 'lots' is not a number\n");
  ExpectUsageError(with({"--mem", "3M"}), "gmem-vmm: run: --mem 3145728: must be a multiple of 2 MiB.*\n");
  ExpectUsageError(with({"--mem", "0"}), "gmem-vmm: run: --mem 0: must be a multiple of 2 MiB.*\n");
  ExpectUsageError(with({"--mem", "2M"}), "gmem-vmm: run: --mem 2097152: must be .*between 4 MiB and 8 GiB\n");
  ExpectUsageError(with({"--mem", "16G"}), "gmem-vmm: run: --mem 17179869184: must be .*between 4 MiB and 8 GiB\n");
  ExpectUsageError(with({"--mem", "64M", "--regions", "17"}),
                   "gmem-vmm: run: --regions 17: must be 1\\.\\.16 regions of at least 2 MiB\n");
  ExpectUsageError(with({"--mem", "4M", "--regions", "4"}), "gmem-vmm: run: --regions 4: must be 1\\.\\.16.*\n");
  ExpectUsageError(with({"--regions", "2"}),
                   "gmem-vmm: run: --regions 2: with --incoming only together with --mem .*\n");
}

TEST(GmemVmmCliTest, IncomingMemIsAccepted) {
  if (access("/dev/kvm", F_OK) != 0) GTEST_SKIP() << "needs /dev/kvm: the memory is created in a real VM";
  // Accepted flags get as far as the control socket, whose directory does not exist (I/O, exit 4):
  // the memory was created and populated first.
  auto r =
      RunTool("gmem-vmm", {"run", "--incoming", "--mem", "64M", "--regions", "2", "--control", "/nonexistent/ctl"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_THAT(r.err, MatchesRegex("gmem-vmm: run: .*/nonexistent/ctl.*\n"));
}

TEST(GmemVmmCliTest, MissingImageIsAnIoError) {
  if (access("/dev/kvm", F_OK) != 0) GTEST_SKIP() << "needs /dev/kvm: the image is read into a real VM";
  auto r = RunTool("gmem-vmm", {"run", "--mem", "8M", "--steps", "10", "--init-from", "/nonexistent/image"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.err, MatchesRegex("gmem-vmm: run: open image '/nonexistent/image': No such file or directory\n"));
}

TEST(GmemVmmCliTest, HelpExitsZero) {
  auto r = RunTool("gmem-vmm", {"run", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, ::testing::HasSubstr("--workload"));
}

}  // namespace
}  // namespace gmem
