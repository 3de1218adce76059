// gmem-migrate: live migration front end: keygen, send, recv, resolve (docs/migration.md).
// The engine lives in migrate/; this file only parses flags and reports.

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "base/secret.h"
#include "format/keys.h"
#include "migrate/progress_monitor.h"
#include "migrate/source.h"
#include "migrate/target.h"
#include "tools/cancel_signals.h"
#include "tools/cli_parse.h"
#include "tools/exit_codes.h"
#include "tools/key_args.h"
#include "tools/report_text.h"
#include "tools/stall_policy.h"
#include "transport/uri.h"

namespace gmem::tools {
namespace {

constexpr std::string_view kTool = "gmem-migrate";
// The --json event stream's schema (docs/events.md): every event carries it. Bumped when a field
// changes meaning or goes away; new events and new fields do not bump it.
constexpr int kEventSchema = 1;

int RunKeygen(const std::string& out, bool force, bool quiet) {
  auto key = format::GenerateKey();
  if (!key.ok()) return Fail(kTool, "keygen", key.status());
  SecretBytes text = format::FormatKeyFile(*key);
  Status st = WriteSecretFile(out, text.span(), force);
  if (!st.ok()) return Fail(kTool, "keygen", st);
  auto id = format::KeySource::FromKey(std::move(key).value()).KeyId();
  if (!id.ok()) return Fail(kTool, "keygen", id.status());
  // The key id names the key without revealing it; the key itself is never printed.
  if (!quiet) std::printf("wrote key file '%s' (mode 0600, key id %s)\n", out.c_str(), ToHex(*id).c_str());
  return kExitOk;
}

struct KeyFlags {
  std::string key_file;
  int key_fd = -1;
  int passphrase_fd = -1;
  bool insecure = false;
};

// A passphrase seals a stream written to or read from a file (`uri`: file:PATH, or fd:N open on
// anything but a socket). A live migration authenticates both ends with the key itself in the
// channel handshake (docs/transport.md), which a passphrase cannot do without a salt both know.
Status CheckPassphraseStream(const std::string& uri_text) {
  auto uri = transport::ParseUri(uri_text);
  if (!uri.ok()) return uri.status();
  bool file = uri->kind == transport::Uri::Kind::kFile;
  if (uri->kind == transport::Uri::Kind::kFd) {
    struct stat st {};
    file = ::fstat(uri->fd, &st) == 0 && !S_ISSOCK(st.st_mode);
  }
  if (file) return Status::Ok();
  return InvalidArgument("--passphrase-fd protects file streams only (file:PATH); a live migration needs --key-file "
                         "or --key-fd");
}

Expected<migrate::MigrationKey> LoadKey(const KeyFlags& flags, const std::string& uri) {
  migrate::MigrationKey key;
  int given = (flags.key_file.empty() ? 0 : 1) + (flags.key_fd >= 0 ? 1 : 0) + (flags.passphrase_fd >= 0 ? 1 : 0);
  if (given > 1) return InvalidArgument("give only one of --key-file, --key-fd and --passphrase-fd");
  if (flags.insecure) {
    if (given != 0) return InvalidArgument("--insecure-no-encryption and a key are mutually exclusive");
    key.insecure = true;
    return key;
  }
  if (given == 0) return InvalidArgument("no key: give --key-file (see 'keygen') or --insecure-no-encryption");
  if (flags.passphrase_fd >= 0) {
    GMEM_RETURN_IF_ERROR(CheckPassphraseStream(uri));
    GMEM_ASSIGN_OR_RETURN(key.passphrase, ReadPassphraseFd(flags.passphrase_fd));
    return key;
  }
  GMEM_ASSIGN_OR_RETURN(key.key, ReadKeyFile(flags.key_file, flags.key_fd));
  return key;
}

Expected<uint64_t> ParseRate(const std::string& text) {
  if (text.empty()) return uint64_t{0};
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return InvalidArgument("--bandwidth: '" + text + "' is not a rate (e.g. 50M, bytes per second)");
  }
  std::string unit = text.substr(used);
  if (unit.ends_with("/s")) unit.resize(unit.size() - 2);
  if (unit.ends_with("B") || unit.ends_with("b")) unit.pop_back();
  double scale = unit.empty() ? 1 : unit == "K" || unit == "k" ? 1024.0 : unit == "M" ? 1048576.0
                                  : unit == "G" ? 1073741824.0 : -1;
  if (scale < 0 || value <= 0) return InvalidArgument("--bandwidth: '" + text + "' is not a rate (e.g. 50M)");
  return static_cast<uint64_t>(value * scale);
}

double Mib(uint64_t bytes) { return static_cast<double>(bytes) / 1048576.0; }

// Progress: a constant-width line on a TTY (at most 5 times a second), or NDJSON events.
class Reporter final : public migrate::MigrationEvents {
 public:
  Reporter(bool json, bool quiet) : json_(json), quiet_(quiet), tty_(!json && !quiet && isatty(STDERR_FILENO)) {}

  void OnStart(uint64_t total_pages) override {
    start_ = Clock::now();
    Emit({{"event", "start"}, {"pages", total_pages}});
  }
  void OnProgress(uint32_t pass, uint64_t done, uint64_t total, uint64_t wire_bytes) override {
    if (!tty_) return;
    auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    if (pass != pass_) {
      pass_ = pass;
      pass_start_ = now;
    }
    double secs = std::chrono::duration<double>(now - start_).count();
    double pass_secs = std::chrono::duration<double>(now - pass_start_).count();
    double mbps = secs > 0 ? Mib(wire_bytes) / secs : 0;
    double pct = total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / static_cast<double>(total);
    // ETA of this pass at its own page rate so far; later passes are usually much smaller.
    double eta = done == 0 || total < done ? 0 : pass_secs * static_cast<double>(total - done) / static_cast<double>(done);
    std::fprintf(stderr, "\rpass %3u  %5.1f%% of %8llu pages  %8.1f MiB/s  dirtied %7.1f MiB/s  ETA %5.1fs ", pass,
                 pct, static_cast<unsigned long long>(total), mbps, dirty_rate_, eta);
  }
  void OnPass(const migrate::PassStats& p) override {
    // What the guest dirtied while the previous pass ran: this pass's dirty set over its time.
    if (p.pass >= 2 && prev_elapsed_us_ > 0) {
      dirty_rate_ = Mib(p.dirty_pages * 4096) / (static_cast<double>(prev_elapsed_us_) / 1e6);
    }
    prev_elapsed_us_ = p.elapsed_us;
    Emit({{"event", "pass"}, {"pass", p.pass}, {"final", p.final}, {"dirty_pages", p.dirty_pages},
          {"data_pages", p.data_pages}, {"zero_pages", p.zero_pages}, {"raw_bytes", p.raw_bytes},
          {"wire_bytes", p.wire_bytes}, {"elapsed_us", p.elapsed_us}});
  }
  void OnSwitchover(uint64_t dirty_pages, uint64_t estimate_ms, const std::string& reason) override {
    Emit({{"event", "switchover"}, {"reason", reason}, {"dirty_pages", dirty_pages}, {"estimate_ms", estimate_ms}});
  }
  // Safe from any thread (a stall is reported from the monitor's).
  void Emit(nlohmann::json event) {
    if (!json_) return;
    event["schema"] = kEventSchema;
    std::lock_guard<std::mutex> lock(mu_);
    std::printf("%s\n", event.dump().c_str());
    std::fflush(stdout);
  }
  // A stall: an event, or one warning line on stderr in text mode (unless -q).
  void Stall(std::string_view what, const migrate::StallInfo& info, const StallFlags& stall) {
    Emit(StallEvent(info, stall));
    if (json_ || quiet_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (tty_) std::fprintf(stderr, "\r%92s\r", "");
    std::fputs(StallWarning(kTool, what, info, stall).c_str(), stderr);
  }
  void EndLine() {
    if (tty_) std::fprintf(stderr, "\r%92s\r", "");
  }
  bool json() const { return json_; }

 private:
  using Clock = std::chrono::steady_clock;
  bool json_;
  bool quiet_;
  bool tty_;
  std::mutex mu_;  // one line at a time
  double dirty_rate_ = 0;  // MiB/s the guest dirtied during the last complete pass
  uint64_t prev_elapsed_us_ = 0;
  uint32_t pass_ = 0;
  Clock::time_point start_ = Clock::now();
  Clock::time_point pass_start_ = Clock::now();
  Clock::time_point last_{};
};

int ReportError(Reporter& reporter, std::string_view what, const Status& status) {
  reporter.EndLine();
  reporter.Emit({{"event", "error"}, {"code", std::string(CodeName(status.code()))}, {"message", status.ToString()}});
  return Fail(kTool, what, status);
}

struct SendFlags {
  std::string vmm, to, compress = "auto", bandwidth;
  uint64_t downtime_ms = 300;
  uint32_t max_passes = 30;
  uint16_t channels = 2;
  bool verify_memory = false;
  bool json = false;
  StallFlags stall;
};

int RunSend(const SendFlags& flags, const KeyFlags& key_flags, bool quiet) {
  Reporter reporter(flags.json, quiet);
  migrate::SourceOptions options;
  options.vmm_socket = flags.vmm;
  options.vmm_connect_timeout_ms = 2000;
  options.to_uri = flags.to;
  options.convergence = {flags.downtime_ms, flags.max_passes};
  options.channels = flags.channels;
  options.verify_memory = flags.verify_memory;
  Status st = ParseCompress(flags.compress, options.compression, options.zstd_level, options.adaptive_compression);
  if (!st.ok()) return ReportError(reporter, "send", st);
  auto rate = ParseRate(flags.bandwidth);
  if (!rate.ok()) return ReportError(reporter, "send", rate.status());
  options.bandwidth_bytes_per_second = *rate;
  auto key = LoadKey(key_flags, flags.to);
  if (!key.ok()) return ReportError(reporter, "send", key.status());
  options.cancel = InstallCancelSignals();
  std::atomic<bool> stalled{false};
  migrate::ProgressMonitor monitor(ReporterMonitorOptions("send", flags.vmm, flags.stall, reporter, stalled));
  options.events = &monitor;
  migrate::MigrationSource source(std::move(options), std::move(key).value());
  monitor.Start();
  auto stats = source.Run();
  Status outcome = StallAware(stats.status(), flags.stall, stalled);
  // The VMM shows the outcome to `status` (after a completed live migration it has quit).
  monitor.Finish(outcome);
  if (!outcome.ok()) return ReportError(reporter, "send to '" + flags.to + "'", outcome);
  reporter.EndLine();
  const migrate::MigrationStats& s = *stats;
  double secs = static_cast<double>(s.total_ms) / 1000.0;
  reporter.Emit({{"event", "complete"}, {"passes", s.passes.size()}, {"channels", s.channels}, {"wire_bytes", s.wire_bytes},
                 {"raw_bytes", s.raw_bytes}, {"data_pages", s.data_pages}, {"zero_pages", s.zero_pages},
                 {"private_pages", s.private_pages}, {"agent_round_trips", s.agent_round_trips},
                 {"agent_ms", s.agent_ms},
                 {"compression_ratio", s.compression_ratio()}, {"pages_records", s.pages_records},
                 {"zstd_records", s.zstd_records}, {"downtime_ms", s.downtime_ms},
                 {"total_ms", s.total_ms}, {"pass_limit_hit", s.pass_limit_hit},
                 {"stop_reason", s.stop_reason}, {"estimated_downtime_ms", s.estimated_downtime_ms}, {"acknowledged", s.acknowledged},
                 {"digest", s.source_digest.digest}, {"checksum", s.source_digest.checksum}});
  if (!flags.json && !quiet) {
    std::string private_text = PrivatePagesText(s.private_pages, s.agent_round_trips, s.agent_ms, "sealed");
    std::printf("migrated: %zu passes%s, %u channel(s), %.1f MiB on the wire (%.2fx), %llu data + %llu zero%s pages, "
                "%.1f MiB/s, downtime %llu ms, total %.2f s%s\n",
                s.passes.size(), s.stop_reason == "converged" ? "" : (" (" + s.stop_reason + ")").c_str(), unsigned{s.channels}, Mib(s.wire_bytes), s.compression_ratio(),
                static_cast<unsigned long long>(s.data_pages), static_cast<unsigned long long>(s.zero_pages),
                private_text.c_str(),
                secs > 0 ? Mib(s.wire_bytes) / secs : 0.0, static_cast<unsigned long long>(s.downtime_ms), secs,
                s.acknowledged ? "" : "; no acknowledgement: the source VM stays paused");
  }
  return kExitOk;
}

struct RecvFlags {
  std::string vmm, from;
  int timeout_s = -1;
  bool verify_memory = false;
  bool paused = false;
  bool json = false;
  StallFlags stall;
};

// systemd socket activation, sd_listen_fds(3)'s protocol: LISTEN_PID names this process,
// LISTEN_FDS counts the sockets handed over from fd 3 on. We take exactly one (a .socket unit with
// one Listen*= line): a listening socket (Accept=no, every channel is accepted on it) or one
// connection (Accept=yes: --channels 1 only). The variables are removed, as sd_listen_fds(1) does,
// so that nothing we start inherits them.
Expected<std::string> SystemdFrom() {
  constexpr int kListenFdsStart = 3;
  const char* fds = std::getenv("LISTEN_FDS");
  const char* pid = std::getenv("LISTEN_PID");
  if (fds == nullptr) {
    return InvalidArgument("--from systemd: LISTEN_FDS is not set (start recv from a socket unit: contrib/README.md)");
  }
  if (pid == nullptr || std::to_string(::getpid()) != pid) {
    return InvalidArgument(std::string("--from systemd: LISTEN_PID (") + (pid == nullptr ? "unset" : pid) +
                           ") is not this process");
  }
  if (std::string(fds) != "1") {
    return InvalidArgument(std::string("--from systemd: expected one socket (LISTEN_FDS=1), got LISTEN_FDS=") + fds);
  }
  int flags = ::fcntl(kListenFdsStart, F_GETFD);
  if (flags < 0) return ErrnoStatus(Code::kInvalidArgument, "--from systemd: fd 3");
  if (::fcntl(kListenFdsStart, F_SETFD, flags | FD_CLOEXEC) != 0) return ErrnoStatus(Code::kIo, "--from systemd: fd 3");
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return "fd:" + std::to_string(kListenFdsStart);
}

int RunRecv(RecvFlags flags, const KeyFlags& key_flags, bool quiet) {
  Reporter reporter(flags.json, quiet);
  if (flags.from.empty() && std::getenv("LISTEN_FDS") != nullptr) flags.from = "systemd";
  if (flags.from.empty()) {
    return ReportError(reporter, "recv", InvalidArgument("give --from (or start recv by systemd socket activation)"));
  }
  std::string from_uri = flags.from;
  if (flags.from == "systemd") {
    auto uri = SystemdFrom();
    if (!uri.ok()) return ReportError(reporter, "recv", uri.status());
    from_uri = *uri;
  }
  auto key = LoadKey(key_flags, from_uri);
  if (!key.ok()) return ReportError(reporter, "recv", key.status());
  signal(SIGPIPE, SIG_IGN);
  migrate::TargetOptions options;
  options.vmm_socket = flags.vmm;
  options.vmm_connect_timeout_ms = 2000;
  options.from_uri = from_uri;
  options.accept_timeout_ms = flags.timeout_s < 0 ? -1 : flags.timeout_s * 1000;
  options.require_memory_check = flags.verify_memory;
  options.resume = !flags.paused;
  // No SIGINT handler: a recv blocked in a read ends on SIGINT as it always did. The stall policy
  // sets the flag, which the engine checks between records.
  options.cancel = CancelFlag();
  std::atomic<uint64_t> records{0};
  options.records_seen = &records;
  std::atomic<bool> stalled{false};
  std::atomic<bool> done{false};
  migrate::ProgressMonitorOptions monitor_options = ReporterMonitorOptions("recv", "", flags.stall, reporter, stalled);
  monitor_options.activity = &records;
  monitor_options.clock_starts_with_activity = true;
  monitor_options.on_stall = [what = "recv from '" + flags.from + "'", inner = monitor_options.on_stall, &reporter, &done,
                              stall = flags.stall](const migrate::StallInfo& info) {
    inner(info);
    if (!stall.abort()) return;
    // A recv blocked in a read (the source stopped sending) never reaches the next record: if the
    // engine has not ended within a grace second, leave. The closed connection tells the source,
    // which keeps (or resumes) its VM; this incoming VM never got COMMIT, so it does not run.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (done.load()) return;
    ReportError(reporter, what,
                Status(Code::kCancelled, "stalled: no progress for " + std::to_string(stall.timeout_s) +
                                             " s (--on-stall abort): cancelled"));
    std::fflush(stdout);
    std::_Exit(kExitCancelled);
  };
  migrate::ProgressMonitor monitor(std::move(monitor_options));
  migrate::MigrationTarget target(std::move(options), std::move(key).value());
  monitor.Start();
  auto result = target.Run();
  done.store(true);
  Status outcome = StallAware(result.status(), flags.stall, stalled);
  monitor.Finish(outcome);
  if (!outcome.ok()) return ReportError(reporter, "recv from '" + flags.from + "'", outcome);
  reporter.Emit({{"event", "complete"}, {"records", result->records}, {"wire_bytes", result->wire_bytes},
                 {"data_pages", result->data_pages}, {"zero_pages", result->zero_pages},
                 {"private_pages", result->private_pages}, {"agent_round_trips", result->agent_round_trips},
                 {"agent_ms", result->agent_ms},
                 {"digest", result->digest.digest}, {"checksum", result->digest.checksum},
                 {"resumed", result->resumed}});
  if (!flags.json && !quiet) {
    std::string check = result->digest.digest.empty()
                            ? std::string("memory digest not compared (send --verify-memory)")
                            : "digest " + result->digest.digest + ", checksum " + result->digest.checksum + " (equal to the source's)";
    std::printf("received: %llu records%s, %.1f MiB, %s; %s\n",
                static_cast<unsigned long long>(result->records),
                PrivatePagesText(result->private_pages, result->agent_round_trips, result->agent_ms, "imported").c_str(),
                Mib(result->wire_bytes), check.c_str(),
                result->resumed ? "the VM runs here now" : "the VM is here, paused (--paused)");
  }
  return kExitOk;
}

// Resolves an "in doubt" switchover on one side (docs/migration.md): resume this copy, or discard
// it. The operator runs it on both sides, resuming exactly one.
int RunResolve(const std::string& vmm_socket, bool resume, bool discard, bool quiet) {
  if (resume == discard) return Fail(kTool, "resolve", InvalidArgument("give exactly one of --resume and --discard"));
  auto client = migrate::VmmClient::Connect(vmm_socket, 2000);
  if (!client.ok()) return Fail(kTool, "resolve", client.status());
  auto state = client->State();
  if (!state.ok()) return Fail(kTool, "resolve", state.status());
  if (resume && *state != "paused") {
    return Fail(kTool, "resolve", InvalidArgument("the VM is " + *state + ", not paused: nothing to resume"));
  }
  Status st = resume ? client->Resume() : client->Quit();
  if (!st.ok()) return Fail(kTool, "resolve", st);
  if (!quiet) std::printf("%s the VM (it was %s)\n", resume ? "resumed" : "discarded", state->c_str());
  return kExitOk;
}

// The migration in flight on `vmm_socket`, as the engine last reported it (query-migration).
int RunStatus(const std::string& vmm_socket, bool json) {
  auto client = migrate::VmmClient::Connect(vmm_socket, 2000);
  if (!client.ok()) return Fail(kTool, "status", client.status());
  auto reply = client->Ok({{"cmd", "query-migration"}});
  if (!reply.ok()) return Fail(kTool, "status", reply.status());
  nlohmann::json r = *reply;
  std::string state = r.value("state", std::string("none"));
  if (json) {
    r.erase("id");
    r.erase("ok");
    r["event"] = "status";
    r["schema"] = kEventSchema;
    std::printf("%s\n", r.dump().c_str());
    return kExitOk;
  }
  if (state == "none") {
    std::printf("migration: none\n");
    return kExitOk;
  }
  double age_s = static_cast<double>(r.value("age_ms", uint64_t{0})) / 1000.0;
  std::string role = r.value("role", std::string());
  if (state == "failed") {
    std::printf("migration: failed (%s): %s; reported %.1f s ago\n", role.c_str(),
                r.value("error", std::string()).c_str(), age_s);
    return kExitOk;
  }
  uint64_t downtime = r.value("expected_downtime_ms", uint64_t{0});
  std::string downtime_text = downtime == 0 ? "not estimated yet" : std::to_string(downtime) + " ms";
  std::printf("migration: %s (%s), phase %s, pass %llu: %.1f MiB sent, %.1f MiB remaining (%llu dirty pages), "
              "%.1f MiB/s, expected downtime %s; reported %.1f s ago\n",
              state.c_str(), role.c_str(), r.value("phase", std::string()).c_str(),
              static_cast<unsigned long long>(r.value("pass", uint64_t{0})), Mib(r.value("bytes_sent", uint64_t{0})),
              Mib(r.value("bytes_remaining", uint64_t{0})),
              static_cast<unsigned long long>(r.value("dirty_pages", uint64_t{0})),
              Mib(r.value("rate_bytes_per_second", uint64_t{0})), downtime_text.c_str(), age_s);
  return kExitOk;
}

void AddKeyFlags(CLI::App* cmd, KeyFlags& flags) {
  cmd->add_option("--key-file", flags.key_file, "key file shared by both ends (see keygen)");
  cmd->add_option("--key-fd", flags.key_fd, "read the key file's text from this open fd");
  cmd->add_option("--passphrase-fd", flags.passphrase_fd,
                  "read a passphrase from this open fd instead of a key (file streams only: file:PATH)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--insecure-no-encryption", flags.insecure,
                "no key: null cipher, unauthenticated (both ends must say so; debugging only)");
}

}  // namespace
}  // namespace gmem::tools

int main(int argc, char** argv) {
  using namespace gmem::tools;
  CLI::App app{"gmem-migrate: live-migrate a guest_memfd VM (see README.md)"};
  app.require_subcommand(1);
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "print nothing on success");

  CLI::App* keygen = app.add_subcommand("keygen", "write a new random key file (mode 0600) for --key-file");
  std::string out;
  bool force = false;
  keygen->add_option("--out", out, "path of the new key file")->required();
  keygen->add_flag("--force", force, "replace an existing file");

  KeyFlags key_flags;
  SendFlags send_flags;
  CLI::App* send = app.add_subcommand("send", "live-migrate the VM behind a VMM control socket to a target");
  send->add_option("--vmm", send_flags.vmm, "control socket of the source VMM")->required();
  send->add_option("--to", send_flags.to, "tcp:HOST:PORT, unix:PATH, fd:N or file:PATH")->required();
  send->add_option("--channels", send_flags.channels, "TCP/Unix connections, one sending thread each (default 2)")
      ->check(CLI::Range(1, 16));
  send->add_option("--compress", send_flags.compress, "auto (default: zstd:1 for each batch where it pays, from measured throughput), zstd, zstd:LEVEL (-7..19) or none");
  send->add_option("--downtime-ms", send_flags.downtime_ms, "stop precopy when the rest fits this (default 300)");
  send->add_option("--max-passes", send_flags.max_passes, "precopy passes at most (default 30)")
      ->check(CLI::Range(1, 1000));
  send->add_option("--bandwidth", send_flags.bandwidth, "limit the stream to RATE bytes/s (K, M, G suffixes)");
  send->add_flag("--verify-memory", send_flags.verify_memory,
                 "also compare both VMs' memory digests before the target runs (costs a hash of all memory in the downtime)");
  send->add_flag("--json", send_flags.json, "NDJSON events on stdout instead of text (docs/events.md)");
  AddStallFlags(send, send_flags.stall);
  AddKeyFlags(send, key_flags);

  RecvFlags recv_flags;
  CLI::App* recv = app.add_subcommand("recv", "receive a migration into an incoming VMM (gmem-vmm run --incoming)");
  recv->add_option("--vmm", recv_flags.vmm, "control socket of the incoming target VMM")->required();
  recv->add_option("--from", recv_flags.from,
                   "tcp:HOST:PORT or unix:PATH to listen on, fd:N, file:PATH, or systemd (socket activation: the "
                   "default when LISTEN_FDS is set)");
  recv->add_option("--timeout", recv_flags.timeout_s, "seconds to wait for the source to connect (default: forever)");
  recv->add_flag("--verify-memory", recv_flags.verify_memory, "refuse a source that does not send --verify-memory");
  recv->add_flag("--paused", recv_flags.paused,
                 "after COMMIT leave the VM paused (it is the guest now): resume it on its control socket");
  recv->add_flag("--json", recv_flags.json, "NDJSON events on stdout instead of text (docs/events.md)");
  AddStallFlags(recv, recv_flags.stall);
  AddKeyFlags(recv, key_flags);

  std::string status_vmm;
  bool status_json = false;
  CLI::App* status = app.add_subcommand("status", "show the migration in flight on a source VMM (or its outcome)");
  status->add_option("--vmm", status_vmm, "control socket of the VMM")->required();
  status->add_flag("--json", status_json, "one JSON object instead of text (docs/events.md, 'status')");

  std::string resolve_vmm;
  bool resolve_resume = false, resolve_discard = false;
  CLI::App* resolve = app.add_subcommand("resolve", "after an 'in doubt' switchover: resume or discard one copy");
  resolve->add_option("--vmm", resolve_vmm, "control socket of the VMM to resolve")->required();
  resolve->add_flag("--resume", resolve_resume, "resume this copy (only one of the two!)");
  resolve->add_flag("--discard", resolve_discard, "tell this VMM to quit: the other copy is the guest");

  if (auto code = ParseArgs(app, argc, argv, kTool)) return *code;
  if (keygen->parsed()) return RunKeygen(out, force, quiet);
  if (send->parsed()) return RunSend(send_flags, key_flags, quiet);
  if (recv->parsed()) return RunRecv(recv_flags, key_flags, quiet);
  if (status->parsed()) return RunStatus(status_vmm, status_json);
  if (resolve->parsed()) return RunResolve(resolve_vmm, resolve_resume, resolve_discard, quiet);
  return kExitUsage;
}
