#include "tests/snapshot/snapshot_testing.h"

#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <map>

#include "format/image_scanner.h"
#include "format/image_writer.h"
#include "format/keys.h"
#include "migrate/vmm_client.h"
#include "tests/vmm/vmm_process.h"

namespace gmem::snapshot::testing {

format::LayoutRecord Layout(std::vector<std::pair<uint32_t, uint64_t>> regions) {
  format::LayoutRecord layout;
  uint64_t gpa = 0;
  for (auto [id, npages] : regions) {
    layout.regions.push_back(format::Region{id, kPage, gpa, npages * kPage, 0, 3});
    gpa += npages * kPage;
  }
  return layout;
}

Bytes WriteImage(const ImageSpec& spec, const format::KeySource& key) {
  auto keys = format::CreateStream(spec.params, key);
  EXPECT_OK(keys);
  if (!keys.ok()) return {};
  auto shared = std::make_shared<const format::StreamKeys>(std::move(keys).value());
  MemorySink sink;
  auto writer = format::ImageWriter::Create(sink, shared, {});
  EXPECT_OK(writer);
  if (!writer.ok()) return {};
  EXPECT_OK(writer->Begin());
  EXPECT_OK(writer->WriteLayout(spec.layout));
  for (const format::AttrsRecord& a : spec.attrs) {
    EXPECT_OK(writer->WriteAttrs(a));
  }
  for (const Batch& b : spec.batches) {
    format::PageBatchInput in{b.region, b.generation, b.runs, {}};
    for (const Bytes& p : b.pages) in.data.push_back(p);
    EXPECT_OK(writer->WritePages(in));
  }
  if (!spec.state.empty()) {
    EXPECT_OK(writer->WriteState({spec.state}));
  }
  EXPECT_OK(writer->Finish());
  return sink.bytes();
}

std::vector<RecordSpan> RecordSpans(ByteSpan image) {
  std::vector<RecordSpan> spans;
  MemorySource source(image);
  auto scanner = format::ImageScanner::Open(source);
  EXPECT_OK(scanner);
  if (!scanner.ok()) return spans;
  for (;;) {
    auto rec = scanner->Next();
    EXPECT_OK(rec);
    if (!rec.ok() || !rec->has_value()) break;
    const format::Frame& f = (*rec)->frame;
    spans.push_back({f.type, static_cast<size_t>((*rec)->offset),
                     format::kFrameSize + f.public_length + f.sealed_length + format::kTagSize});
  }
  return spans;
}

Bytes SwapRecords(ByteSpan image, size_t i, size_t j) {
  std::vector<RecordSpan> spans = RecordSpans(image);
  EXPECT_LT(i, j);
  EXPECT_LT(j, spans.size());
  if (!(i < j && j < spans.size())) return Bytes(image.begin(), image.end());
  Bytes out(image.begin(), image.begin() + static_cast<ptrdiff_t>(spans[i].offset));
  auto append = [&](size_t from, size_t to) {
    out.insert(out.end(), image.begin() + static_cast<ptrdiff_t>(from), image.begin() + static_cast<ptrdiff_t>(to));
  };
  append(spans[j].offset, spans[j].offset + spans[j].size);
  append(spans[i].offset + spans[i].size, spans[j].offset);
  append(spans[i].offset, spans[i].offset + spans[i].size);
  append(spans[j].offset + spans[j].size, image.size());
  EXPECT_EQ(out.size(), image.size());
  return out;
}

Bytes ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

std::string WriteFileBytes(const std::string& path, ByteSpan bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string VmState(const std::string& socket) {
  auto client = migrate::VmmClient::Connect(socket, 2000);
  if (!client.ok()) return "error: " + client.status().ToString();
  auto state = client->State();
  return state.ok() ? *state : "error: " + state.status().ToString();
}

bool VmCommand(const std::string& socket, const std::string& cmd) {
  auto client = migrate::VmmClient::Connect(socket, 2000);
  return client.ok() && client->Ok({{"cmd", cmd}}).ok();
}

int64_t VcpuSteps(const std::string& socket) {
  auto client = migrate::VmmClient::Connect(socket, 2000);
  if (!client.ok()) return -1;
  auto info = client->Ok({{"cmd", "query"}});
  if (!info.ok() || !(*info).contains("vcpus") || (*info)["vcpus"].empty()) return -1;
  return (*info)["vcpus"][0].value("step", int64_t{-1});
}

int64_t OpenTempFileSize(const std::string& dir, const std::string& base) {
  std::string named_prefix = dir + "/." + base + ".tmp-";
  std::error_code ec;
  for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    std::string pid = proc.path().filename();
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
    std::error_code fd_ec;
    for (const auto& fd : std::filesystem::directory_iterator(proc.path() / "fd", fd_ec)) {
      char target[4096];
      ssize_t n = readlink(fd.path().c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      std::string t(target, static_cast<size_t>(n));
      // An O_TMPFILE shows as "DIR/#INODE (deleted)".
      bool unnamed = t.starts_with(dir + "/#") && t.ends_with(" (deleted)");
      if (!unnamed && !t.starts_with(named_prefix)) continue;
      struct stat st {};
      if (stat(fd.path().c_str(), &st) == 0) return st.st_size;
    }
  }
  return -1;
}

bool WaitForTempFile(const std::string& dir, const std::string& base, int64_t min_bytes, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (OpenTempFileSize(dir, base) >= min_bytes) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

migrate::testing::VmSpec SmallVm(const std::string& slot, const std::string& regions, const std::string& steps,
                                 const std::string& mem) {
  migrate::testing::VmSpec spec;
  spec.mem = mem;
  spec.slot = slot;
  spec.regions = regions;
  spec.steps = steps;
  spec.rate = "1000";
  return spec;
}

std::string Baseline(const migrate::testing::VmSpec& spec) {
  static std::map<std::string, std::string> cache;
  std::string key = spec.mem + "/" + spec.regions + "/" + spec.workload + "/" + spec.seed + "/" + spec.steps;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::string sum = vmm::testing::RunForChecksum(migrate::testing::VmArgs(spec, /*with_rate=*/false));
  if (!sum.empty()) cache[key] = sum;
  return sum;
}

std::string WriteNewKeyFile(const std::string& path) {
  migrate::MigrationKey key = migrate::testing::NewKey();
  migrate::testing::WriteKeyFile(key, path);
  return ToHex(key.key.span());
}

nlohmann::json LastJsonLine(const std::string& out) {
  nlohmann::json last;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    nlohmann::json j = nlohmann::json::parse(out.substr(start, end - start), nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) last = j;
    start = end + 1;
  }
  return last;
}

RestoreOutcome RestoreIntoFreshVmm(const std::string& image, const std::vector<std::string>& key_args,
                                   const std::string& stdin_data, const std::vector<std::string>& vmm_args) {
  gmem::testing::TempDir dir;
  std::string socket = dir.File("dst.sock");
  std::vector<std::string> run = {"run", "--incoming", "--control", socket};
  run.insert(run.end(), vmm_args.begin(), vmm_args.end());
  vmm::testing::VmmProcess vmm(run);
  std::vector<std::string> args = {"restore", "--vmm", socket, "--in", image};
  args.insert(args.end(), key_args.begin(), key_args.end());
  RestoreOutcome out;
  out.tool = gmem::testing::RunTool("gmem-snapshot", args, stdin_data);
  if (out.tool.exit_code == 0) {
    out.state_after = VmState(socket);
    VmCommand(socket, "quit");
  } else {
    // A restore that failed before contacting the VMM left it incoming without memory; one that
    // reached it told it to quit (then it exits by itself).
    auto client = migrate::VmmClient::Connect(socket, 500);
    if (client.ok()) {
      auto info = client->Ok({{"cmd", "query"}});
      out.untouched = info.ok() && (*info).value("state", "") == "incoming" && !(*info).value("memory_ready", true);
      if (out.untouched) client->Quit().IgnoreError();
    }
  }
  out.vmm_exit = vmm.Wait(20000);
  out.vmm_out = vmm.out();
  return out;
}

bool WaitForConnectedProcess(const std::string& arg, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::error_code ec;
    for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
      std::string pid = proc.path().filename();
      if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
      std::ifstream in(proc.path() / "cmdline", std::ios::binary);
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmdline.find(std::string(1, '\0') + arg + std::string(1, '\0')) == std::string::npos) continue;
      std::error_code fd_ec;
      for (const auto& fd : std::filesystem::directory_iterator(proc.path() / "fd", fd_ec)) {
        char target[256];
        ssize_t n = readlink(fd.path().c_str(), target, sizeof target - 1);
        if (n > 0 && std::string(target, static_cast<size_t>(n)).starts_with("socket:")) return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

SmallTmpfs::SmallTmpfs(uint64_t size_bytes) {
  std::string options = "size=" + std::to_string(size_bytes) + ",mode=0700";
  mounted_ = mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0;
}

SmallTmpfs::~SmallTmpfs() {
  if (mounted_) umount2(dir_.path().c_str(), MNT_DETACH);
}

}  // namespace gmem::snapshot::testing
