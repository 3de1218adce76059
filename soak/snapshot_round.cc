// A snapshot round: save the guest (an increment of the chain, or a full image) with --stop, then
// restore the chain into an incoming VMM on the other host, --paused; the restored VM takes over
// only if its digest is the saved one. Faults: a full filesystem, a killed or cancelled save or
// restore, a killed target VMM, a flipped byte in the stored image (docs/soak.md, "Rounds").

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/xxh3.h"
#include "soak/soak_context.h"

namespace gmem::soak {
namespace {

constexpr int kToolTimeoutMs = 240000;
constexpr size_t kMaxChain = 6;

namespace fs = std::filesystem;

// Content hash of a file ("" when it cannot be read).
std::string FileHash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  std::vector<char> buf(1 << 20);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    XXH3_64bits_update(state, buf.data(), static_cast<size_t>(in.gcount()));
  }
  uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return std::to_string(h);
}

// Flips bit 0 of the byte at `offset` (again: flips it back).
Status FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  char c = 0;
  if (!f.seekg(static_cast<std::streamoff>(offset)) || !f.read(&c, 1)) return Status(Code::kIo, "cannot read " + path);
  c = static_cast<char>(c ^ 1);
  if (!f.seekp(static_cast<std::streamoff>(offset)) || !f.write(&c, 1) || !f.flush()) {
    return Status(Code::kIo, "cannot write " + path);
  }
  return Status::Ok();
}

// Takes all but `leave` bytes of the filesystem at `dir` with one file.
Status Fill(const std::string& dir, const std::string& filler, uint64_t leave) {
  struct statvfs sv{};
  if (statvfs(dir.c_str(), &sv) != 0) return ErrnoStatus(Code::kIo, "statvfs " + dir);
  uint64_t free_bytes = uint64_t{sv.f_bavail} * sv.f_frsize;
  if (free_bytes <= leave) return Status::Ok();
  int fd = open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(Code::kIo, "create " + filler);
  int rc = posix_fallocate(fd, 0, static_cast<off_t>(free_bytes - leave));
  close(fd);
  if (rc != 0) return Status(Code::kIo, "fallocate " + filler, rc);
  return Status::Ok();
}

struct SnapshotRound : RoundState {
  using RoundState::RoundState;
  std::string image, filler;
  std::map<std::string, std::string> hashes;  // of every older image, before the save

  bool Save();
  void Restore(const std::string& digest, const std::string& checksum);
  void CheckOlderImages();
  void CheckFailedTool(const ToolRun& run);
  void ResumeSource();
};

void SnapshotRound::CheckFailedTool(const ToolRun& run) {
  ExitStatus e = run.Exit();
  if (run.killed) return;
  if (!e.exited()) return ctx.Anomaly(plan.round, "crash", run.name + " " + e.Describe());
  std::string why = CheckOneLineError(run.Err(), "gmem-snapshot");
  if (!why.empty()) ctx.Anomaly(plan.round, "unclear-error", run.name + ": " + why);
  if (!IsFaultExitCode(e.code)) ctx.Anomaly(plan.round, "unexpected-exit-code", run.name + " " + e.Describe() + ": " + run.Err());
  std::string err = run.Err();
  rec.detail = err.substr(0, err.find('\n'));
}

void SnapshotRound::CheckOlderImages() {
  for (const auto& [path, hash] : hashes) {
    if (FileHash(path) != hash) ctx.Anomaly(plan.round, "old-snapshot-damaged", path + " changed");
  }
  for (const auto& entry : fs::directory_iterator(ctx.snapshot_dir)) {
    std::string name = entry.path().filename().string();
    if (name.find(".tmp-") != std::string::npos) {
      // Documented for a save killed on a filesystem without O_TMPFILE; a tmpfs has it.
      ctx.Anomaly(plan.round, "temporary-left", name);
      fs::remove(entry.path());
    }
  }
}

void SnapshotRound::ResumeSource() {
  if (ctx.guest->State() == "paused") {
    Status st = ctx.Resolve(*ctx.guest, /*resume=*/true);
    if (!st.ok()) ctx.Anomaly(plan.round, "resolve", st.ToString());
  }
}

// True when the image was saved and the source is paused at it.
bool SnapshotRound::Save() {
  bool full = ctx.chain.empty() || plan.full_image || ctx.chain.size() >= kMaxChain;
  std::vector<std::string> args = {"save", "--vmm", ctx.guest->socket, "--out", image, "--key-file", ctx.key_file,
                                   "--compress", plan.compress, "--stop", "--json"};
  if (!full) args.insert(args.end(), {"--parent", ctx.chain.back()});
  for (const std::string& p : ctx.chain) hashes[p] = FileHash(p);
  if (plan.fault == Fault::kDiskFull) {
    Status st = Fill(ctx.snapshot_dir, filler, plan.free_bytes);
    if (!st.ok()) ctx.Anomaly(plan.round, "fault-injection", st.ToString());
  }
  auto save = ctx.StartTool("gmem-snapshot", "save", plan.round, args, s);
  if (!save.ok()) {
    ctx.Anomaly(plan.round, "setup", save.status().ToString());
    return false;
  }
  int64_t at = static_cast<int64_t>(plan.fault_at * static_cast<double>(ctx.ExpectedMs(ctx.save_ms, 1000)));
  std::vector<TimedAction> actions;
  if (plan.fault == Fault::kKillSaver) actions.push_back({at, [&] { save->killed = true; save->process.Signal(SIGKILL); }});
  if (plan.fault == Fault::kCancelSaver) actions.push_back({at, [&] { save->process.Signal(SIGINT); }});
  if (!Supervise({&*save}, actions, kToolTimeoutMs)) {
    ctx.Anomaly(plan.round, "hang", "save still running");
    save->process.Kill();
  }
  if (!filler.empty()) fs::remove(filler);
  CheckOlderImages();
  if (save->Exit().code != 0) {
    CheckFailedTool(*save);
    if (fs::exists(image)) {
      // Killed after the rename: a complete image, which must verify; not part of the chain.
      auto v = RunCommand({ctx.Tool("gmem-snapshot"), "verify", image, "--key-file", ctx.key_file}, -1, 120000);
      if (!v.ok() || !v->ok()) ctx.Anomaly(plan.round, "partial-image", image + " exists after a failed save and does not verify");
      fs::remove(image);
    }
    ResumeSource();
    rec.outcome = plan.fault == Fault::kNone ? "save failed, source kept" : "save failed as injected, source kept";
    return false;
  }
  nlohmann::json done = save->Event("complete");
  rec.save_ms = done.value("total_ms", uint64_t{0});
  ctx.save_ms.push_back(*rec.save_ms);
  rec.bytes = done.value("file_bytes", uint64_t{0});
  if (full) {
    for (const std::string& p : ctx.chain) fs::remove(p);  // a new chain: the old one goes
    ctx.chain.clear();
  }
  ctx.chain.push_back(image);
  // The source waits, paused at the saved state (--stop): its digest is the image's.
  auto d = ctx.guest->Digest();
  if (!d.ok() || ctx.guest->State() != "paused") {
    ctx.Anomaly(plan.round, "save-stop", "the source is not paused after save --stop");
  } else if (d->digest != done.value("digest", "") || d->checksum != done.value("checksum", "")) {
    ctx.Anomaly(plan.round, "digest-mismatch", "save reported " + done.value("digest", "") + ", the paused source has " + d->digest);
  }
  Restore(done.value("digest", ""), done.value("checksum", ""));
  return true;
}

void SnapshotRound::Restore(const std::string& digest, const std::string& checksum) {
  uint64_t corrupt_at = 0;
  if (plan.fault == Fault::kCorrupt) {
    corrupt_at = fs::file_size(image) * plan.corrupt_ppm / 1000000;
    Status st = FlipByte(image, corrupt_at);
    if (!st.ok()) ctx.Anomaly(plan.round, "fault-injection", st.ToString());
  }
  auto target = ctx.StartIncoming(t, plan.target_slot);
  if (!target.ok()) {
    ctx.Anomaly(plan.round, "setup", target.status().ToString());
    return ResumeSource();
  }
  auto restore = ctx.StartTool("gmem-snapshot", "restore", plan.round,
                               {"restore", "--vmm", (*target)->socket, "--in", image, "--key-file", ctx.key_file,
                                "--paused", "--json"},
                               t);
  if (!restore.ok()) return ctx.Anomaly(plan.round, "setup", restore.status().ToString());
  int64_t at = static_cast<int64_t>(plan.fault_at * static_cast<double>(ctx.ExpectedMs(ctx.restore_ms, 1000)));
  std::vector<TimedAction> actions;
  if (plan.fault == Fault::kKillRestorer) actions.push_back({at, [&] { restore->killed = true; restore->process.Signal(SIGKILL); }});
  if (plan.fault == Fault::kKillTargetVmm) {
    actions.push_back({at, [&] {
                         if (restore->process.Running()) (*target)->process.Kill();
                       }});
  }
  if (!Supervise({&*restore}, actions, kToolTimeoutMs)) {
    ctx.Anomaly(plan.round, "hang", "restore still running");
    restore->process.Kill();
  }
  if (plan.fault == Fault::kCorrupt) FlipByte(image, corrupt_at).IgnoreError();
  SoakVmm& vmm = **target;
  if (restore->Exit().code == 0 && plan.fault == Fault::kKillTargetVmm && !vmm.process.Running()) {
    // The kill landed after the restore was done, before its process ended: that copy is gone,
    // but it never ran and the source still waits, paused at the image.
    ResumeSource();
    rec.outcome = "restored copy killed before takeover, source kept";
    return;
  }
  if (restore->Exit().code == 0) {
    if (plan.fault == Fault::kCorrupt) {
      ctx.Anomaly(plan.round, "corruption-missed", "restore accepted " + image + " with byte " + std::to_string(corrupt_at) + " flipped");
    }
    rec.restore_ms = restore->Event("complete").value("total_ms", uint64_t{0});
    ctx.restore_ms.push_back(*rec.restore_ms);
    auto d = vmm.Digest();
    if (!d.ok() || vmm.State() != "paused") {
      ctx.Anomaly(plan.round, "restore-paused", "the restored VM is not paused after restore --paused");
    } else if (d->digest != digest || d->checksum != checksum) {
      ctx.Anomaly(plan.round, "digest-mismatch", "restored " + d->digest + "/" + d->checksum + ", saved " + digest + "/" + checksum);
    }
    Status st = ctx.Resolve(*ctx.guest, /*resume=*/false);
    if (!st.ok()) ctx.Anomaly(plan.round, "resolve", st.ToString());
    st = vmm.Command("resume");
    if (!st.ok()) ctx.Anomaly(plan.round, "resume", st.ToString());
    ctx.guest = std::move(*target);
    rec.guest_moved = true;
    rec.outcome = "restored";
    return;
  }
  CheckFailedTool(*restore);
  std::string ts = vmm.State();
  if (ts == "running" || ts == "finished") ctx.Anomaly(plan.round, "split-brain", "the failed restore's VM is " + ts);
  vmm.Quit();
  ResumeSource();
  rec.outcome = plan.fault == Fault::kCorrupt ? "corruption detected, source kept" : "restore failed, source kept";
}

}  // namespace

RoundRecord RunSnapshotRound(SoakContext& ctx, const RoundPlan& plan) {
  SnapshotRound r(ctx, plan);
  char name[32];
  std::snprintf(name, sizeof(name), "/gen-%04u.img", plan.round);
  r.image = ctx.snapshot_dir + name;
  r.filler = plan.fault == Fault::kDiskFull ? ctx.snapshot_dir + "/filler" : "";
  auto start = std::chrono::steady_clock::now();
  r.Save();
  r.rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r.rec;
}

}  // namespace gmem::soak
