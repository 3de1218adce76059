#include "migrate/progress_monitor.h"

#include <algorithm>

#include "memory/page.h"

namespace gmem::migrate {

namespace {

// How often the stall thread looks: a stall is reported within this of its timeout.
constexpr auto kStallTick = std::chrono::milliseconds(100);
// The rate is the stream's bytes over windows of at least this.
constexpr auto kRateWindow = std::chrono::milliseconds(1000);
// A VMM whose socket is not there (yet, or any more) is not waited for longer than this; the next
// report tries again.
constexpr int kConnectTimeoutMs = 200;

}  // namespace

nlohmann::json ProgressRequest(const ProgressSnapshot& s) {
  nlohmann::json progress = {{"state", s.state},
                             {"role", s.role},
                             {"phase", s.phase},
                             {"pass", s.pass},
                             {"bytes_sent", s.bytes_sent},
                             {"bytes_remaining", s.bytes_remaining},
                             {"dirty_pages", s.dirty_pages},
                             {"rate_bytes_per_second", s.rate_bytes_per_second},
                             {"expected_downtime_ms", s.expected_downtime_ms}};
  if (!s.error.empty()) progress["error"] = s.error;
  return {{"cmd", "migration-progress"}, {"progress", progress}};
}

ProgressMonitor::ProgressMonitor(ProgressMonitorOptions options) : options_(std::move(options)) {
  snapshot_.role = options_.role;
}

ProgressMonitor::~ProgressMonitor() { Stop(); }

void ProgressMonitor::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    start_ = last_progress_ = rate_at_ = Clock::now();
  }
  if (options_.stall_timeout_ms > 0) stall_thread_ = std::thread([this] { StallLoop(); });
  if (!options_.vmm_socket.empty()) publish_thread_ = std::thread([this] { PublishLoop(); });
}

void ProgressMonitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (stall_thread_.joinable()) stall_thread_.join();
  if (publish_thread_.joinable()) publish_thread_.join();
}

void ProgressMonitor::Finish(const Status& status) {
  Stop();
  ProgressSnapshot last;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.state = status.ok() ? "completed" : "failed";
    snapshot_.phase = "done";
    snapshot_.error = status.ok() ? "" : status.ToString();
    for (char& c : snapshot_.error) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    if (status.ok()) snapshot_.bytes_remaining = 0;
    last = snapshot_;
  }
  // One attempt at most: after a live migration the source VMM has quit, and the tool should not
  // wait for it.
  if (!options_.vmm_socket.empty()) Publish(last, /*connect_timeout_ms=*/0);
}

ProgressSnapshot ProgressMonitor::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void ProgressMonitor::MovedLocked() {
  Clock::time_point now = Clock::now();
  last_progress_ = now;
  stalled_ = false;
  if (now - rate_at_ >= kRateWindow) {
    double secs = std::chrono::duration<double>(now - rate_at_).count();
    uint64_t delta = snapshot_.bytes_sent >= rate_bytes_ ? snapshot_.bytes_sent - rate_bytes_ : 0;
    snapshot_.rate_bytes_per_second = static_cast<uint64_t>(static_cast<double>(delta) / secs);
    rate_at_ = now;
    rate_bytes_ = snapshot_.bytes_sent;
  }
}

void ProgressMonitor::OnStart(uint64_t total_pages) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.phase = "precopy";
    snapshot_.dirty_pages = total_pages;
    MovedLocked();
  }
  if (options_.next != nullptr) options_.next->OnStart(total_pages);
}

void ProgressMonitor::OnProgress(uint32_t pass, uint64_t done, uint64_t total, uint64_t wire_bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Anything that moved is progress; the same numbers again (a callback while blocked) are not.
    bool moved = pass != snapshot_.pass || wire_bytes != snapshot_.bytes_sent ||
                 (total - std::min(done, total)) * memory::kPageSize != snapshot_.bytes_remaining;
    snapshot_.pass = pass;
    snapshot_.dirty_pages = total;
    snapshot_.bytes_remaining = (total - std::min(done, total)) * memory::kPageSize;
    snapshot_.bytes_sent = wire_bytes;
    if (moved) MovedLocked();
  }
  if (options_.next != nullptr) options_.next->OnProgress(pass, done, total, wire_bytes);
}

void ProgressMonitor::OnPass(const PassStats& pass) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.pass = pass.pass;
    snapshot_.dirty_pages = pass.dirty_pages;
    snapshot_.bytes_remaining = 0;
    passes_wire_bytes_ += pass.wire_bytes;
    snapshot_.bytes_sent = std::max(snapshot_.bytes_sent, passes_wire_bytes_);
    if (!pass.final) snapshot_.expected_downtime_ms = pass.estimated_downtime_ms;
    // After the final pass the stream ends and the switchover waits for the target's READY.
    if (pass.final) snapshot_.phase = "switchover";
    MovedLocked();
    publish_now_ = true;
  }
  cv_.notify_all();
  if (options_.next != nullptr) options_.next->OnPass(pass);
}

void ProgressMonitor::OnSwitchover(uint64_t dirty_pages, uint64_t estimate_ms, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.phase = "stop-and-copy";
    snapshot_.dirty_pages = dirty_pages;
    snapshot_.bytes_remaining = dirty_pages * memory::kPageSize;
    snapshot_.expected_downtime_ms = estimate_ms;
    MovedLocked();
    publish_now_ = true;
  }
  cv_.notify_all();
  if (options_.next != nullptr) options_.next->OnSwitchover(dirty_pages, estimate_ms, reason);
}

void ProgressMonitor::StallLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto timeout = std::chrono::milliseconds(options_.stall_timeout_ms);
  while (!stop_) {
    cv_.wait_for(lock, kStallTick);
    if (stop_) return;
    if (options_.activity != nullptr) {
      uint64_t now = options_.activity->load();
      if (now == 0 && options_.clock_starts_with_activity) {
        last_progress_ = Clock::now();
        continue;
      }
      if (now != last_activity_) {
        last_activity_ = now;
        MovedLocked();
      }
    }
    Clock::duration idle = Clock::now() - last_progress_;
    if (stalled_ || idle < timeout) continue;
    stalled_ = true;
    StallInfo info{static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(idle).count()),
                   snapshot_};
    lock.unlock();
    if (options_.on_stall) options_.on_stall(info);
    lock.lock();
  }
}

void ProgressMonitor::PublishLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    ProgressSnapshot copy = snapshot_;
    publish_now_ = false;
    lock.unlock();
    Publish(copy, kConnectTimeoutMs);
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(options_.publish_interval_ms), [&] { return stop_ || publish_now_; });
  }
}

void ProgressMonitor::Publish(const ProgressSnapshot& snapshot, int connect_timeout_ms) {
  std::lock_guard<std::mutex> lock(publish_mu_);
  // Progress is for the curious: a failure is never a reason to fail a migration; the next
  // report connects again.
  if (!client_.has_value()) {
    auto client = VmmClient::Connect(options_.vmm_socket, connect_timeout_ms);
    if (!client.ok()) return;
    client_.emplace(std::move(client).value());
  }
  if (!client_->Ok(ProgressRequest(snapshot)).ok()) client_.reset();
}

}  // namespace gmem::migrate
