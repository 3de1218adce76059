// gmem-snapshot: offline snapshots: save, restore, inspect, verify, diff (docs/snapshots.md).
// The logic lives in snapshot/; this file parses flags and prints.

#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "format/records.h"
#include "snapshot/diff.h"
#include "snapshot/image_summary.h"
#include "snapshot/restore.h"
#include "snapshot/save.h"
#include "tools/cancel_signals.h"
#include "tools/cli_parse.h"
#include "tools/exit_codes.h"
#include "tools/key_args.h"
#include "tools/report_text.h"
#include "tools/stall_policy.h"
#include "transport/direct_file.h"

namespace gmem::tools {
namespace {

constexpr std::string_view kTool = "gmem-snapshot";

const char* CipherName(format::Cipher c) { return c == format::Cipher::kAes256Gcm ? "aes-256-gcm" : "none"; }
const char* WrapName(format::KeyWrap w) {
  switch (w) {
    case format::KeyWrap::kKeyFile: return "key file";
    case format::KeyWrap::kPassphrase: return "passphrase";
    default: return "no key";
  }
}
const char* WrapId(format::KeyWrap w) {
  switch (w) {
    case format::KeyWrap::kKeyFile: return "key-file";
    case format::KeyWrap::kPassphrase: return "passphrase";
    default: return "none";
  }
}

double Mib(uint64_t bytes) { return static_cast<double>(bytes) / 1048576.0; }
unsigned long long Ull(uint64_t v) { return static_cast<unsigned long long>(v); }

template <typename Json>
void PrintJson(const Json& j) {
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

// ---- inspect, verify ------------------------------------------------------------------------

// Only public, non-secret header fields: ids, algorithms, the key id. Never the salt, the wrap
// nonce or the wrapped key (they are not secret, but nothing a user needs either).
nlohmann::ordered_json SummaryJson(const snapshot::ImageSummary& s, bool verified) {
  const format::ImageHeader& h = s.header;
  auto hex_or_null = [&](const auto& bytes) {
    return h.has_parent() ? nlohmann::ordered_json(ToHex(bytes)) : nlohmann::ordered_json(nullptr);
  };
  nlohmann::ordered_json regions = nlohmann::ordered_json::array();
  if (s.layout) {
    for (const format::Region& r : s.layout->regions) {
      regions.push_back({{"id", r.id}, {"gpa_base", r.gpa_base}, {"size_bytes", r.size_bytes},
                         {"page_size", r.page_size}, {"gmem_offset", r.gmem_offset}});
    }
  }
  nlohmann::ordered_json records = nlohmann::ordered_json::object();
  for (uint8_t t = 1; t <= 7; ++t) {
    records[format::RecordTypeName(static_cast<format::RecordType>(t))] = s.records_by_type[t];
  }
  auto optional = [](const auto& value) {
    return value.has_value() ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
  };
  return {{"version", std::to_string(h.version_major) + "." + std::to_string(h.version_minor)},
          {"stream_id", ToHex(h.stream_id)},
          {"parent", hex_or_null(h.parent_stream_id)},
          {"parent_digest", hex_or_null(h.parent_digest)},
          {"cipher", CipherName(h.cipher)},
          {"key_wrap", WrapId(h.key_wrap)},
          {"compression", h.compression == format::Compression::kZstd ? "zstd" : "none"},
          {"channels", h.channel_count},
          {"verified", verified},
          {"regions", regions},
          {"records", records},
          {"data_pages", s.data_pages},
          {"zero_pages", s.zero_pages},
          {"private_pages", s.private_pages},
          {"unchanged_pages", optional(s.unchanged_pages)},
          {"page_hashes", optional(s.page_hashes)},
          {"raw_bytes", s.raw_bytes},
          {"stored_bytes", verified ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.stored_bytes)},
          {"image_bytes", s.image_bytes}};
}

void PrintText(const std::string& file, const snapshot::ImageSummary& s, bool verified) {
  const format::ImageHeader& h = s.header;
  std::printf("image        %s (%llu bytes)%s\n", file.c_str(), Ull(s.image_bytes),
              verified ? ", verified" : ", not verified (inspect reads no key)");
  std::printf("format       %u.%u\n", h.version_major, h.version_minor);
  std::printf("stream id    %s\n", ToHex(h.stream_id).c_str());
  std::printf("parent       %s\n", h.has_parent() ? ToHex(h.parent_stream_id).c_str() : "none");
  if (h.has_parent()) std::printf("parent digest %s\n", ToHex(h.parent_digest).c_str());
  std::printf("encryption   %s, %s%s\n", CipherName(h.cipher), WrapName(h.key_wrap),
              h.key_wrap == format::KeyWrap::kKeyFile ? (" (key id " + ToHex(h.key_id) + ")").c_str() : "");
  std::printf("compression  %s\n", h.compression == format::Compression::kZstd ? "zstd" : "none");
  if (s.layout) {
    std::printf("layout       %zu regions\n", s.layout->regions.size());
    for (const format::Region& r : s.layout->regions) {
      std::printf("  region %u: gpa 0x%llx, %llu pages of %u bytes, gmem offset 0x%llx\n", r.id, Ull(r.gpa_base),
                  Ull(r.npages()), r.page_size, Ull(r.gmem_offset));
    }
  }
  std::printf("records      %llu:", Ull(s.records));
  for (uint8_t t = 1; t <= 7; ++t) {
    std::printf(" %s %llu", format::RecordTypeName(static_cast<format::RecordType>(t)), Ull(s.records_by_type[t]));
  }
  std::printf("\npages        %llu data, %llu zero, %llu private", Ull(s.data_pages), Ull(s.zero_pages),
              Ull(s.private_pages));
  if (s.unchanged_pages) std::printf(", %llu unchanged (the parent's, not stored)", Ull(*s.unchanged_pages));
  std::printf("\n");
  if (s.page_hashes) {
    std::printf("page hashes  %s\n", *s.page_hashes ? "yes (it can be the parent of an increment)"
                                                     : "no (it cannot be the parent of an increment)");
  }
  if (!verified) std::printf("bytes        raw %llu, stored %llu\n", Ull(s.raw_bytes), Ull(s.stored_bytes));
}

// "a.img <- b.img <- c.img": a chain, oldest first.
template <typename T, typename PathOf>
std::string ChainText(const std::vector<T>& chain, PathOf path_of) {
  std::string out;
  for (const T& image : chain) out += (out.empty() ? "" : " <- ") + path_of(image);
  return out;
}

int RunInspect(const std::string& file, bool json) {
  auto input = transport::SequentialFile::Open(file);
  if (!input.ok()) return Fail(kTool, "inspect", input.status());
  auto summary = snapshot::Summarize(**input);
  if (!summary.ok()) return Fail(kTool, "inspect '" + file + "'", summary.status());
  if (json) {
    PrintJson(SummaryJson(*summary, false));
  } else {
    PrintText(file, *summary, false);
  }
  return kExitOk;
}

int RunVerify(const std::string& file, const std::string& parent_dir, const KeyArgs& key_args, bool json,
              bool quiet) {
  auto key = LoadKey(key_args);
  if (!key.ok()) return Fail(kTool, "verify", key.status());
  auto chain = snapshot::VerifyChain(file, parent_dir, *key, key_args.insecure);
  if (!chain.ok()) return Fail(kTool, "verify '" + file + "'", chain.status());
  const snapshot::ImageSummary& last = chain->back().summary;
  if (json) {
    nlohmann::ordered_json j = SummaryJson(last, true);
    nlohmann::ordered_json images = nlohmann::ordered_json::array();
    for (const snapshot::VerifiedImage& image : *chain) {
      images.push_back({{"file", image.path}, {"stream_id", ToHex(image.summary.header.stream_id)},
                        {"image_bytes", image.summary.image_bytes}});
    }
    j["chain"] = images;
    PrintJson(j);
  } else if (!quiet) {
    PrintText(file, last, true);
    if (chain->size() > 1) {
      std::printf("chain        %zu images, every one verified and every link checked: %s\n", chain->size(),
                  ChainText(*chain, [](const snapshot::VerifiedImage& i) { return i.path; }).c_str());
    }
  }
  return kExitOk;
}

// ---- save, restore ----------------------------------------------------------------------------

// save and restore drive the migration engine, which takes a key file's key, a passphrase (file
// streams only) or none.
Expected<migrate::MigrationKey> LoadMigrationKey(const KeyArgs& args) {
  GMEM_ASSIGN_OR_RETURN(format::KeySource source, LoadKey(args));
  migrate::MigrationKey key;
  switch (source.wrap()) {
    case format::KeyWrap::kPassphrase:
      key.passphrase = SecretBytes::CopyOf(source.secret().span());
      break;
    case format::KeyWrap::kKeyFile:
      key.key = SecretBytes::CopyOf(source.secret().span());
      break;
    default:
      key.insecure = true;
      break;
  }
  return key;
}

// Progress of a save: one constant-width line on a TTY (at most 5 a second), or NDJSON events.
class Reporter final : public migrate::MigrationEvents {
 public:
  Reporter(bool json, bool quiet) : json_(json), quiet_(quiet), tty_(!json && !quiet && isatty(STDERR_FILENO)) {}

  void OnStart(uint64_t total_pages) override { Emit({{"event", "start"}, {"pages", total_pages}}); }
  void OnProgress(uint32_t pass, uint64_t done, uint64_t total, uint64_t wire_bytes) override {
    if (!tty_) return;
    auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double pct = total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / static_cast<double>(total);
    std::fprintf(stderr, "\r%s %5.1f%% of %9llu pages  %9.1f MiB written  %8.1f MiB/s ",
                 pass == 1 ? "save " : "final", pct, Ull(total), Mib(wire_bytes), secs > 0 ? Mib(wire_bytes) / secs : 0.0);
  }
  void OnPass(const migrate::PassStats& p) override {
    Emit({{"event", "pass"}, {"pass", p.pass}, {"final", p.final}, {"data_pages", p.data_pages},
          {"zero_pages", p.zero_pages}, {"unchanged_pages", p.unchanged_pages}, {"raw_bytes", p.raw_bytes},
          {"wire_bytes", p.wire_bytes}, {"elapsed_us", p.elapsed_us}});
  }
  // Every event carries the stream's schema (docs/events.md), as gmem-migrate's do.
  void Emit(nlohmann::ordered_json event) {
    if (!json_) return;
    event["schema"] = 1;
    std::lock_guard<std::mutex> lock(mu_);  // a stall comes from the monitor's thread
    PrintJson(event);
  }
  void EndLine() {
    if (tty_) std::fprintf(stderr, "\r%80s\r", "");
  }
  // A stall (tools/stall_policy.h): the event, or one warning line (not with -q). Any thread.
  void Stall(std::string_view what, const migrate::StallInfo& info, const StallFlags& stall) {
    Emit(StallEvent(info, stall));
    if (json_ || quiet_) return;
    std::lock_guard<std::mutex> lock(mu_);
    EndLine();
    std::fputs(StallWarning(kTool, what, info, stall).c_str(), stderr);
  }
  int Error(std::string_view what, const Status& status) {
    EndLine();
    Emit({{"event", "error"}, {"code", std::string(CodeName(status.code()))}, {"message", status.ToString()}});
    return Fail(kTool, what, status);
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool json_;
  bool quiet_;
  bool tty_;
  std::mutex mu_;  // one line at a time
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_{};
};

struct SaveFlags {
  std::string vmm, out, parent, compress = "auto";
  bool stop = false;
  StallFlags stall;
};

int RunSave(const SaveFlags& flags, const KeyArgs& key_args, bool json, bool quiet) {
  Reporter reporter(json, quiet);
  std::string what = "save '" + flags.out + "'";
  snapshot::SaveOptions options;
  options.vmm_socket = flags.vmm;
  options.out_path = flags.out;
  options.parent_path = flags.parent;
  options.stop = flags.stop;
  if (Status st = ParseCompress(flags.compress, options.compression, options.zstd_level, options.adaptive_compression);
      !st.ok()) return reporter.Error(what, st);
  auto key = LoadMigrationKey(key_args);
  if (!key.ok()) return reporter.Error(what, key.status());
  // SIGINT/SIGTERM: the engine checks the flag between batches (save) or records (restore).
  options.cancel = InstallCancelSignals();
  // The VMM shows the save's progress to 'gmem-migrate status', as it does a send's.
  std::atomic<bool> stalled{false};
  migrate::ProgressMonitor monitor(ReporterMonitorOptions("save", flags.vmm, flags.stall, reporter, stalled));
  options.events = &monitor;
  auto start = std::chrono::steady_clock::now();
  monitor.Start();
  auto saved = snapshot::Save(options, std::move(key).value());
  Status outcome = StallAware(saved.status(), flags.stall, stalled);
  monitor.Finish(outcome);
  if (!outcome.ok()) return reporter.Error(what, outcome);
  reporter.EndLine();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const snapshot::SaveResult& r = *saved;
  uint64_t guest_bytes = r.guest_pages * 4096;
  const char* vm = r.left_paused ? "paused" : "running";
  bool increment = r.header.has_parent();
  reporter.Emit({{"event", "complete"}, {"file", flags.out}, {"stream_id", ToHex(r.header.stream_id)},
                 {"parent", increment ? nlohmann::ordered_json(ToHex(r.header.parent_stream_id)) : nullptr},
                 {"parent_file", increment ? nlohmann::ordered_json(flags.parent) : nullptr},
                 {"file_bytes", r.file_bytes}, {"guest_bytes", guest_bytes}, {"data_pages", r.stats.data_pages},
                 {"zero_pages", r.stats.zero_pages}, {"unchanged_pages", r.stats.unchanged_pages},
                 {"private_pages", r.stats.private_pages}, {"agent_round_trips", r.stats.agent_round_trips},
                 {"agent_ms", r.stats.agent_ms},
                 {"raw_bytes", r.stats.raw_bytes}, {"compression_ratio", r.stats.compression_ratio()},
                 {"pages_records", r.stats.pages_records}, {"zstd_records", r.stats.zstd_records},
                 {"paused_ms", r.paused_ms}, {"total_ms", static_cast<uint64_t>(secs * 1000)},
                 {"digest", r.stats.source_digest.digest}, {"checksum", r.stats.source_digest.checksum}, {"vm", vm}});
  if (!json && !quiet) {
    std::string pages = std::to_string(r.stats.data_pages) + " data + " + std::to_string(r.stats.zero_pages) +
                        " zero" +
                        PrivatePagesText(r.stats.private_pages, r.stats.agent_round_trips, r.stats.agent_ms, "sealed") +
                        " pages";
    if (increment) {
      pages += " changed, " + std::to_string(r.stats.unchanged_pages) + " unchanged since '" + flags.parent + "'";
    }
    std::printf("saved '%s': %.1f MiB (%.2fx), %s%s, of %.0f MiB guest memory, %.2f s "
                "(%.0f MiB/s of guest memory), stream id %s; the VM is %s%s\n",
                flags.out.c_str(), Mib(r.file_bytes), r.stats.compression_ratio(), increment ? "increment: " : "",
                pages.c_str(), Mib(guest_bytes), secs, secs > 0 ? Mib(guest_bytes) / secs : 0.0,
                ToHex(r.header.stream_id).c_str(), vm,
                r.paused_ms > 0 ? (" (paused " + std::to_string(r.paused_ms) + " ms)").c_str() : "");
  }
  return kExitOk;
}

int RunRestore(const std::string& vmm, const std::string& in, const std::string& parent_dir, bool paused,
               const StallFlags& stall, const KeyArgs& key_args, bool json, bool quiet) {
  Reporter reporter(json, quiet);
  std::string what = "restore '" + in + "'";
  auto key = LoadMigrationKey(key_args);
  if (!key.ok()) return reporter.Error(what, key.status());
  snapshot::RestoreOptions options;
  options.vmm_socket = vmm;
  options.in_path = in;
  options.parent_dir = parent_dir;
  options.resume = !paused;
  // SIGINT/SIGTERM: the engine checks the flag between batches (save) or records (restore).
  options.cancel = InstallCancelSignals();
  std::atomic<uint64_t> records{0};
  options.records_seen = &records;
  std::atomic<bool> stalled{false};
  migrate::ProgressMonitorOptions monitor_options = ReporterMonitorOptions("restore", "", stall, reporter, stalled);
  monitor_options.activity = &records;
  migrate::ProgressMonitor monitor(std::move(monitor_options));
  auto start = std::chrono::steady_clock::now();
  monitor.Start();
  auto restored = snapshot::Restore(options, std::move(key).value());
  Status outcome = StallAware(restored.status(), stall, stalled);
  monitor.Finish(outcome);
  if (!outcome.ok()) return reporter.Error(what, outcome);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const snapshot::RestoreResult& r = *restored;
  reporter.Emit({{"event", "complete"}, {"file", in}, {"stream_id", ToHex(r.header.stream_id)}, {"chain", r.chain},
                 {"file_bytes", r.file_bytes}, {"records", r.target.records}, {"data_pages", r.target.data_pages},
                 {"zero_pages", r.target.zero_pages}, {"private_pages", r.target.private_pages},
                 {"agent_round_trips", r.target.agent_round_trips}, {"agent_ms", r.target.agent_ms},
                 {"total_ms", static_cast<uint64_t>(secs * 1000)},
                 {"digest", r.target.digest.digest}, {"checksum", r.target.digest.checksum}, {"resumed", r.target.resumed}});
  if (!json && !quiet) {
    std::string chain = r.chain.size() > 1 ? ", chain of " + std::to_string(r.chain.size()) + " images: " +
                                                 ChainText(r.chain, [](const std::string& p) { return p; })
                                           : "";
    std::printf("restored '%s' (stream id %s%s): %llu records, %llu data pages%s, %.1f MiB in %.2f s, digest %s, "
                "checksum %s; %s\n",
                in.c_str(), ToHex(r.header.stream_id).c_str(), chain.c_str(), Ull(r.target.records),
                Ull(r.target.data_pages),
                PrivatePagesText(r.target.private_pages, r.target.agent_round_trips, r.target.agent_ms, "imported").c_str(),
                Mib(r.file_bytes), secs, r.target.digest.digest.c_str(),
                r.target.digest.checksum.c_str(), r.target.resumed ? "the VM runs" : "the VM is paused (--paused)");
  }
  return kExitOk;
}

// ---- diff -------------------------------------------------------------------------------------

const char* ChangeKind(snapshot::RegionChange::Kind kind) {
  switch (kind) {
    case snapshot::RegionChange::Kind::kAdded: return "added";
    case snapshot::RegionChange::Kind::kRemoved: return "removed";
    case snapshot::RegionChange::Kind::kChanged: return "changed";
  }
  return "changed";
}

nlohmann::ordered_json RegionJson(const format::Region& r) {
  return {{"gpa_base", r.gpa_base}, {"size_bytes", r.size_bytes}, {"page_size", r.page_size},
          {"gmem_offset", r.gmem_offset}, {"flags", r.gmem_flags}};
}

nlohmann::ordered_json DiffJson(const std::string& a, const std::string& b, const snapshot::DiffInputs& in) {
  const snapshot::DiffReport& d = in.report;
  nlohmann::ordered_json changes = nlohmann::ordered_json::array();
  for (const snapshot::RegionChange& c : d.layout_changes) {
    nlohmann::ordered_json j = {{"kind", ChangeKind(c.kind)}, {"id", c.id}};
    if (c.a) j["a"] = RegionJson(*c.a);
    if (c.b) j["b"] = RegionJson(*c.b);
    if (!c.fields.empty()) j["fields"] = c.fields;
    changes.push_back(j);
  }
  nlohmann::ordered_json regions = nlohmann::ordered_json::array();
  for (const snapshot::RegionDiff& r : d.regions) {
    regions.push_back({{"id", r.id}, {"compared_pages", r.compared_pages}, {"differ", r.differ},
                       {"differ_shared", r.differ_shared}, {"differ_private", r.differ_private},
                       {"to_private", r.to_private}, {"to_shared", r.to_shared}});
  }
  auto side = [](const std::string& file, const snapshot::ImageContents& c,
                 const std::vector<snapshot::ChainImage>& chain) {
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const snapshot::ChainImage& image : chain) files.push_back(image.path);
    return nlohmann::ordered_json{{"file", file}, {"stream_id", ToHex(c.header.stream_id)}, {"chain", files}};
  };
  return {{"identical", d.identical()},
          {"a", side(a, in.a, in.chain_a)},
          {"b", side(b, in.b, in.chain_b)},
          {"layout_changes", changes}, {"regions", regions}, {"differ", d.differ},
          {"differ_shared", d.differ_shared}, {"differ_private", d.differ_private},
          {"attr_changes", d.attr_changes}, {"state_differs", d.state_differs}};
}

void PrintDiffText(const std::string& a, const std::string& b, const snapshot::DiffInputs& in) {
  const snapshot::DiffReport& d = in.report;
  auto side = [](const char* name, const std::string& file, const snapshot::ImageContents& c,
                 const std::vector<snapshot::ChainImage>& chain) {
    std::string applied = chain.size() > 1 ? "; with its parent chain " +
                                                 ChainText(chain, [](const snapshot::ChainImage& i) { return i.path; })
                                           : "";
    std::printf("%s            %s (stream id %s%s)\n", name, file.c_str(), ToHex(c.header.stream_id).c_str(),
                applied.c_str());
  };
  side("A", a, in.a, in.chain_a);
  side("B", b, in.b, in.chain_b);
  std::printf("layout       %s\n", d.layout_changes.empty() ? "same" : "differs");
  for (const snapshot::RegionChange& c : d.layout_changes) {
    auto where = [](const format::Region& r) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "gpa 0x%llx, %llu pages of %u bytes", Ull(r.gpa_base), Ull(r.npages()),
                    r.page_size);
      return std::string(buf);
    };
    std::string fields;
    for (const std::string& f : c.fields) fields += (fields.empty() ? " (" : ", ") + f;
    if (!fields.empty()) fields += ")";
    std::string detail = c.a && c.b ? "A: " + where(*c.a) + "; B: " + where(*c.b) : where(c.b ? *c.b : *c.a);
    std::printf("  region %u %s%s: %s\n", c.id, ChangeKind(c.kind), fields.c_str(), detail.c_str());
  }
  for (const snapshot::RegionDiff& r : d.regions) {
    std::printf("region %-5u %llu of %llu pages differ (%llu shared, %llu private), %llu attribute changes "
                "(%llu to private, %llu to shared)\n",
                r.id, Ull(r.differ), Ull(r.compared_pages), Ull(r.differ_shared), Ull(r.differ_private),
                Ull(r.attr_changes()), Ull(r.to_private), Ull(r.to_shared));
  }
  std::printf("state        %s\n", d.state_differs ? "differs" : "same");
  if (d.identical()) {
    std::printf("result       identical\n");
  } else {
    std::printf("result       differ: %llu pages, %llu attribute changes, %zu layout changes, state %s\n",
                Ull(d.differ), Ull(d.attr_changes), d.layout_changes.size(), d.state_differs ? "differs" : "same");
  }
}

int RunDiff(const std::string& a, const std::string& b, const std::string& parent_dir, const KeyArgs& key_args,
            bool json, bool quiet) {
  auto key = LoadKey(key_args);
  if (!key.ok()) return Fail(kTool, "diff", key.status());
  snapshot::ContentsOptions options;
  options.allow_insecure = key_args.insecure;
  auto in = snapshot::DiffFiles(a, b, parent_dir, *key, options);
  if (!in.ok()) return Fail(kTool, "diff", in.status());
  if (json) {
    PrintJson(DiffJson(a, b, *in));
  } else if (!quiet) {
    PrintDiffText(a, b, *in);
  }
  return in->report.identical() ? kExitOk : kExitDiffer;
}

}  // namespace
}  // namespace gmem::tools

int main(int argc, char** argv) {
  using namespace gmem::tools;
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"gmem-snapshot: offline snapshots of guest_memfd VMs (see docs/snapshots.md)"};
  app.require_subcommand(1);
  bool quiet = false;
  bool json = false;
  app.add_flag("-q,--quiet", quiet, "print nothing on success");
  app.add_flag("--json", json, "print JSON (save, restore: NDJSON events) instead of text");
  KeyArgs key_args;

  SaveFlags save_flags;
  std::string parent_dir;
  auto add_parent_dir = [&parent_dir](CLI::App& sub) {
    sub.add_option("--parent-dir", parent_dir,
                   "where the parents of an incremental image are (found by stream id; default: its directory)");
  };
  CLI::App* save = app.add_subcommand("save", "pause a VM, write its image atomically (full or incremental), resume it");
  save->add_option("--vmm", save_flags.vmm, "control socket of the VMM (gmem-vmm run --control)")->required();
  save->add_option("--out", save_flags.out, "the image to write (replaced atomically if it exists)")->required();
  save->add_option("--parent", save_flags.parent,
                   "write an increment: only the pages that differ from this earlier image of the VM");
  save->add_option("--compress", save_flags.compress, "auto (default: zstd:1 for each batch where it pays, from measured throughput), zstd, zstd:LEVEL (-7..19) or none");
  save->add_flag("--stop", save_flags.stop, "leave the VM paused after a successful save");
  AddStallFlags(save, save_flags.stall);
  save->fallthrough();
  AddKeyFlags(*save, key_args);

  std::string vmm, in;
  CLI::App* restore = app.add_subcommand("restore", "rebuild a VM from an image in an incoming VMM and resume it");
  restore->add_option("--vmm", vmm, "control socket of an incoming VMM (gmem-vmm run --incoming --control)")
      ->required();
  restore->add_option("--in", in, "the image (an increment is restored with its parent chain)")->required();
  add_parent_dir(*restore);
  bool restore_paused = false;
  restore->add_flag("--paused", restore_paused, "leave the restored, verified VM paused: resume it on its control socket");
  StallFlags restore_stall;
  AddStallFlags(restore, restore_stall);
  restore->fallthrough();
  AddKeyFlags(*restore, key_args);

  std::string file;
  CLI::App* inspect = app.add_subcommand("inspect", "show an image's header, layout and counts (no key needed)");
  inspect->add_option("FILE", file, "the image")->required();
  inspect->fallthrough();  // -q and --json may follow the subcommand

  CLI::App* verify = app.add_subcommand(
      "verify", "decrypt and check every record and the END digest, of the image and its whole parent chain");
  verify->add_option("FILE", file, "the image")->required();
  add_parent_dir(*verify);
  verify->fallthrough();
  AddKeyFlags(*verify, key_args);

  std::string file_b;
  CLI::App* diff = app.add_subcommand(
      "diff", "pages, attributes, layout and state that differ between two images (exit 0 same, 10 differ)");
  diff->add_option("A", file, "the first image")->required();
  diff->add_option("B", file_b, "the second image")->required();
  add_parent_dir(*diff);
  diff->fallthrough();
  AddKeyFlags(*diff, key_args);

  if (auto code = ParseArgs(app, argc, argv, kTool)) return *code;
  if (save->parsed()) return RunSave(save_flags, key_args, json, quiet);
  if (restore->parsed()) return RunRestore(vmm, in, parent_dir, restore_paused, restore_stall, key_args, json, quiet);
  if (inspect->parsed()) return RunInspect(file, json);
  if (diff->parsed()) return RunDiff(file, file_b, parent_dir, key_args, json, quiet);
  return RunVerify(file, parent_dir, key_args, json, quiet);
}
