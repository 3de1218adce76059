#pragma once
// VcpuRunner: the thread that runs one vCPU and handles its exits — the guest's port-I/O
// requests (yield for the rate limiter, done, page-state change, panic), KVM_EXIT_HYPERCALL and
// KVM_EXIT_MEMORY_FAULT conversions, and fatal exits — plus the pause protocol it shares with
// the VMM through RunControl.
//
// Pause protocol: the VMM sets RunControl::pause under its mutex and zeroes every vCPU's budget
// (gmem_guest_vcpu::budget), so each guest stops at its next step boundary with an OUT to
// GMEM_PORT_YIELD: a paused guest never holds a half-done step (its write log and its writes
// agree). A vCPU that does not yield in time — or quit — is kicked: kvm_run.immediate_exit is
// set and the thread gets kKickSignal, so KVM_RUN returns EINTR wherever the guest was.
// Before parking, a thread whose last exit is not yet completed (an OUT, a hypercall) enters
// KVM_RUN once more with immediate_exit set, so KVM finishes the instruction and the registers are
// consistent for get-state (Documentation/virt/kvm/api.rst, KVM_RUN / immediate_exit). On resume
// the thread restores the budget (or the rate limiter does at the next yield).

#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "base/status.h"
#include "vmm/emulated_coco.h"
#include "vmm/guest_memory.h"
#include "vmm/vcpu.h"

namespace gmem::vmm {

// The signal that kicks a vCPU thread out of KVM_RUN. Its handler does nothing.
inline constexpr int kKickSignal = SIGUSR1;
// Installs the no-op handler (without SA_RESTART) once per process.
void InstallKickHandler();

// State shared by the VMM and all its vCPU threads; every field guarded by `mu`.
struct RunControl {
  std::mutex mu;
  std::condition_variable cv;
  bool pause = true;
  bool quit = false;
  uint32_t parked = 0;    // threads waiting in the pause state
  uint32_t finished = 0;  // threads whose vCPU reported DONE
  uint32_t stopped = 0;   // threads that left their loop (quit or error)
  uint32_t vcpus = 0;     // threads started
  uint64_t rate = 0;      // steps per second per vCPU (0: unlimited); `set-rate` changes it
  uint64_t rate_epoch = 0;  // bumped at every rate change: the runners restart their count
  Status error;           // the first fatal error of any vCPU
};

class VcpuRunner {
 public:
  // `finished`: the vCPU already reported DONE (a restored VM); it is never run.
  // REQUIRES: memory, coco and control outlive the runner.
  // The rate limit is RunControl::rate.
  VcpuRunner(Vcpu vcpu, const GuestMemory& memory, EmulatedCoco& coco, RunControl& control, bool finished);
  ~VcpuRunner();
  VcpuRunner(const VcpuRunner&) = delete;
  VcpuRunner& operator=(const VcpuRunner&) = delete;

  // Starts the thread (which parks while RunControl::pause is set).
  void Start();
  // Sends kKickSignal to the thread. REQUIRES: the caller set pause or quit and immediate_exit.
  void Kick();
  // Joins the thread. REQUIRES: RunControl::quit was set and the threads kicked.
  void Join();

  Vcpu& vcpu() { return vcpu_; }
  // Guarded by RunControl::mu.
  bool finished() const { return finished_; }

 private:
  void Loop();
  void Park(std::unique_lock<std::mutex>& lock);
  Status HandleExit(int rc);
  Status HandleIo();
  Status HandleYield();
  Status HandlePageStateChange();
  Status HandleConversionExit();
  // Re-enters KVM_RUN with immediate_exit set so KVM completes the last exit.
  Status CompleteLastExit();
  // The largest budget the guest may get: its steps_target, or unlimited.
  uint64_t BudgetCap() const;
  // Restarts the rate limiter's count at the guest's current step. REQUIRES: RunControl::mu.
  void RebaseRateLocked();
  void Fail(const Status& status);
  volatile uint64_t* Field(size_t offset) const;

  Vcpu vcpu_;
  const GuestMemory& memory_;
  EmulatedCoco& coco_;
  RunControl& control_;
  std::byte* page_ = nullptr;     // this vCPU's gmem_guest_vcpu in guest memory
  bool finished_ = false;         // guarded by control_.mu
  bool needs_completion_ = false; // only the thread touches it
  bool done_exit_ = false;        // only the thread touches it: the guest said DONE
  // The rate limiter's origin (guarded by RunControl::mu): steps are allowed at RunControl::rate
  // since this time and step, reset at each resume and rate change.
  std::chrono::steady_clock::time_point rate_base_time_;
  uint64_t rate_base_step_ = 0;
  uint64_t rate_epoch_ = 0;
  std::thread thread_;
};

}  // namespace gmem::vmm
