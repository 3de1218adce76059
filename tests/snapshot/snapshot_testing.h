#pragma once
// Shared pieces of the snapshot tests: image byte surgery that needs the record structure
// (testutil has flip and truncate), file helpers, the VMM's state, and a small tmpfs for
// "disk full".

#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "format/keys.h"
#include "format/page_batch.h"
#include "format/records.h"
#include "format/stream_keys.h"
#include "format/wire.h"
#include "tests/migrate/migrate_testing.h"
#include "tests/testutil/testutil.h"

namespace gmem::snapshot::testing {

// ---- synthetic images ----

inline constexpr uint32_t kPage = 4096;

// Regions {id, npages} of 4 KiB pages, back to back from gpa 0.
format::LayoutRecord Layout(std::vector<std::pair<uint32_t, uint64_t>> regions);

// One PAGES record: its runs and the DATA pages in run order.
struct Batch {
  uint32_t region = 0;
  uint64_t generation = 1;
  std::vector<format::PageRun> runs;
  std::vector<Bytes> pages;
};

// What an image holds, in writing order: LAYOUT, the ATTRS, the batches, one STATE, END.
struct ImageSpec {
  format::LayoutRecord layout = Layout({{0, 64}});
  std::vector<format::AttrsRecord> attrs;
  std::vector<Batch> batches;
  std::vector<format::StateEntry> state = {{"vmm-state", Bytes(32, std::byte{7})}};
  format::StreamParams params;  // compression, stream id, parent
};
Bytes WriteImage(const ImageSpec& spec, const format::KeySource& key);

// Where each record of an image starts and how long it is (frame + public + sealed + tag).
struct RecordSpan {
  format::RecordType type = format::RecordType::kInvalid;
  size_t offset = 0;
  size_t size = 0;
};
std::vector<RecordSpan> RecordSpans(ByteSpan image);
// `image` with records i and j (i < j) exchanged.
Bytes SwapRecords(ByteSpan image, size_t i, size_t j);

Bytes ReadFileBytes(const std::string& path);
std::string WriteFileBytes(const std::string& path, ByteSpan bytes);
// Names in `dir`, sorted, without "." and "..".
std::vector<std::string> ListDir(const std::string& dir);

// The VMM's `query` state ("running", "paused", "incoming", ...), or "error: ..." when it cannot
// be asked (e.g. it exited).
std::string VmState(const std::string& socket);
// Sends `cmd` ("resume", "pause", "quit"); true on an ok reply.
bool VmCommand(const std::string& socket, const std::string& cmd);
// Steps the (single) vCPU has completed, or -1.
int64_t VcpuSteps(const std::string& socket);

// The size of a file that some process holds open in `dir` (an O_TMPFILE or a named temporary
// of `base`), or -1 when there is none. Scans /proc/*/fd.
int64_t OpenTempFileSize(const std::string& dir, const std::string& base);
// Waits (up to `timeout_ms`) until OpenTempFileSize() >= min_bytes; false at the timeout.
bool WaitForTempFile(const std::string& dir, const std::string& base, int64_t min_bytes, int timeout_ms);

// ---- end-to-end helpers (real gmem-vmm processes) ----

// A small guest for the CLI tests: `mem`, the dirty workload at 1000 steps/s (the uninterrupted
// baseline runs without the rate), 3000 steps (0: runs until told to quit).
migrate::testing::VmSpec SmallVm(const std::string& slot = "gmem", const std::string& regions = "1",
                                 const std::string& steps = "3000", const std::string& mem = "64M");
// The checksum of an uninterrupted run of `spec` (cached: it depends on neither slot nor rate).
std::string Baseline(const migrate::testing::VmSpec& spec);
// Writes a fresh random key file (mode 0600) at `path` and returns its 64 hex digits.
std::string WriteNewKeyFile(const std::string& path);
// The last line of `out` that parses as a JSON object (null if none).
nlohmann::json LastJsonLine(const std::string& out);

// `gmem-snapshot restore` of `image` into a fresh `gmem-vmm run --incoming`, and what became of
// that VMM: whether it was still incoming afterwards (never touched; the test then tells it to
// quit), its exit code and its stdout (a "checksum=" line there means the guest ran).
struct RestoreOutcome {
  gmem::testing::ToolResult tool;
  bool untouched = false;
  std::string state_after;  // after a successful restore (the VMM is then told to quit)
  int vmm_exit = -1;
  std::string vmm_out;
};
// `args` follow "--in IMAGE" (key flags, --parent-dir ...); `stdin_data` feeds --passphrase-fd 0;
// `vmm_args` follow "gmem-vmm run --incoming" (e.g. the agent's --platform-key).
RestoreOutcome RestoreIntoFreshVmm(const std::string& image, const std::vector<std::string>& args,
                                   const std::string& stdin_data = "", const std::vector<std::string>& vmm_args = {});

// Waits (up to `timeout_ms`) until a process whose command line contains `arg` as one argument
// has a socket open (e.g. gmem-snapshot connected to its VMM). False at the timeout.
bool WaitForConnectedProcess(const std::string& arg, int timeout_ms);

// A tmpfs of `size_bytes` mounted on a new directory (needs root), unmounted on destruction.
class SmallTmpfs {
 public:
  explicit SmallTmpfs(uint64_t size_bytes);
  ~SmallTmpfs();
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& path() const { return dir_.path(); }
  std::string File(const std::string& name) const { return dir_.File(name); }

 private:
  gmem::testing::TempDir dir_;
  bool mounted_ = false;
};

}  // namespace gmem::snapshot::testing
