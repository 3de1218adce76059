#include "vmm/vcpu_runner.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include "memory/kvm_uapi.h"
#include "vmm/conversion.h"
#include "vmm/guest/guest_abi.h"

namespace gmem::vmm {
namespace {

void KickHandler(int) {}

uint64_t Load(volatile uint64_t* p) {
  return std::atomic_ref<uint64_t>(*const_cast<uint64_t*>(p)).load(std::memory_order_acquire);
}
void Store(volatile uint64_t* p, uint64_t v) {
  std::atomic_ref<uint64_t>(*const_cast<uint64_t*>(p)).store(v, std::memory_order_release);
}

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa = {};
    sa.sa_handler = KickHandler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kKickSignal, &sa, nullptr);
  });
}

VcpuRunner::VcpuRunner(Vcpu vcpu, const GuestMemory& memory, EmulatedCoco& coco, RunControl& control, bool finished)
    : vcpu_(std::move(vcpu)), memory_(memory), coco_(coco), control_(control), finished_(finished) {
  page_ = memory_.HostAddress(GMEM_GUEST_VCPU_GPA + uint64_t{vcpu_.id()} * GMEM_GUEST_PAGE, GMEM_GUEST_PAGE);
}

VcpuRunner::~VcpuRunner() {
  if (thread_.joinable()) thread_.join();
}

volatile uint64_t* VcpuRunner::Field(size_t offset) const {
  // SAFETY: page_ is this vCPU's control page (4 KiB inside region 0); offset comes from offsetof
  // on gmem_guest_vcpu, whose fields are 8-byte aligned.
  return reinterpret_cast<volatile uint64_t*>(page_ + offset);
}

void VcpuRunner::Start() { thread_ = std::thread([this] { Loop(); }); }

void VcpuRunner::Kick() {
  if (thread_.joinable()) pthread_kill(thread_.native_handle(), kKickSignal);
}

void VcpuRunner::Join() {
  if (thread_.joinable()) thread_.join();
}

void VcpuRunner::Fail(const Status& status) {
  std::lock_guard<std::mutex> lock(control_.mu);
  if (control_.error.ok()) control_.error = status.WithContext("vCPU " + std::to_string(vcpu_.id()));
  control_.quit = true;
  control_.cv.notify_all();
}

void VcpuRunner::Park(std::unique_lock<std::mutex>& lock) {
  ++control_.parked;
  control_.cv.notify_all();
  control_.cv.wait(lock, [&] { return !control_.pause || control_.quit; });
  --control_.parked;
  if (control_.quit) return;
  vcpu_.SetImmediateExit(false);
  RebaseRateLocked();
  // The pause zeroed the budget; without a rate limit nothing else would raise it.
  if (control_.rate == 0) Store(Field(offsetof(gmem_guest_vcpu, budget)), BudgetCap());
}

void VcpuRunner::RebaseRateLocked() {
  rate_base_time_ = std::chrono::steady_clock::now();
  rate_base_step_ = Load(Field(offsetof(gmem_guest_vcpu, step)));
  rate_epoch_ = control_.rate_epoch;
}

void VcpuRunner::Loop() {
  if (page_ == nullptr) return Fail(Status(Code::kInvalidArgument, "no guest memory for the vCPU control page"));
  {
    // The rate limiter counts from here (or from the last resume or rate change).
    std::lock_guard<std::mutex> lock(control_.mu);
    RebaseRateLocked();
  }
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(control_.mu);
      if (done_exit_ && !needs_completion_) {
        finished_ = true;
        ++control_.finished;
        control_.cv.notify_all();
        done_exit_ = false;
      }
      if (finished_) control_.cv.wait(lock, [&] { return control_.quit; });
      if (control_.quit) break;
      if (control_.pause) {
        // Complete the last exit first (KVM_RUN returns EINTR right after), then park.
        if (needs_completion_) {
          vcpu_.SetImmediateExit(true);
        } else {
          Park(lock);
        }
      }
      if (control_.quit) break;
    }
    int rc = vcpu_.Run();
    Status s = HandleExit(rc);
    if (!s.ok()) {
      Fail(s);
      break;
    }
  }
  std::lock_guard<std::mutex> lock(control_.mu);
  ++control_.stopped;
  control_.cv.notify_all();
}

Status VcpuRunner::HandleExit(int rc) {
  struct kvm_run* run = vcpu_.run();
  if (rc == EINTR) {
    needs_completion_ = false;
    return Status::Ok();
  }
  needs_completion_ = true;
  if (rc == EFAULT || rc == EHWPOISON) {
    if (run->exit_reason == KVM_EXIT_MEMORY_FAULT) return HandleConversionExit();
    return Status(Code::kKvm, "KVM_RUN failed", rc);
  }
  if (rc != 0) return Status(Code::kKvm, "KVM_RUN failed", rc);
  switch (run->exit_reason) {
    case KVM_EXIT_IO: return HandleIo();
    case KVM_EXIT_HYPERCALL: return HandleConversionExit();
    case KVM_EXIT_INTR: needs_completion_ = false; return Status::Ok();
    case KVM_EXIT_HLT: return Status(Code::kKvm, "the guest halted (KVM_EXIT_HLT)");
    case KVM_EXIT_SHUTDOWN: {
      auto regs = vcpu_.GetRegs();
      return Status(Code::kKvm, "the guest crashed (KVM_EXIT_SHUTDOWN, triple fault) at rip " +
                                    (regs.ok() ? Hex(regs->rip) : std::string("?")));
    }
    case KVM_EXIT_INTERNAL_ERROR:
      return Status(Code::kKvm, "KVM_EXIT_INTERNAL_ERROR, suberror " + std::to_string(run->internal.suberror));
    case KVM_EXIT_FAIL_ENTRY:
      return Status(Code::kKvm, "KVM_EXIT_FAIL_ENTRY, reason " + Hex(run->fail_entry.hardware_entry_failure_reason));
    case KVM_EXIT_MMIO:
      return Status(Code::kKvm, "the guest touched unbacked memory (KVM_EXIT_MMIO at " + Hex(run->mmio.phys_addr) + ")");
    default:
      return Status(Code::kKvm, "unexpected exit reason " + std::to_string(run->exit_reason));
  }
}

Status VcpuRunner::HandleIo() {
  struct kvm_run* run = vcpu_.run();
  if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 || run->io.count != 1) {
    return Status(Code::kKvm, "unexpected port I/O at port " + Hex(run->io.port));
  }
  uint32_t value = 0;
  // SAFETY: KVM puts the OUT data at data_offset inside the kvm_run mapping; size is 4.
  std::memcpy(&value, reinterpret_cast<const std::byte*>(run) + run->io.data_offset, sizeof(value));
  if (value != vcpu_.id()) return Status(Code::kKvm, "port I/O names vCPU " + std::to_string(value));
  switch (run->io.port) {
    case GMEM_PORT_YIELD: return HandleYield();
    case GMEM_PORT_DONE: done_exit_ = true; return CompleteLastExit();
    case GMEM_PORT_PSC: return HandlePageStateChange();
    case GMEM_PORT_PANIC:
      return Status(Code::kKvm, "the guest panicked (code " +
                                    std::to_string(Load(Field(offsetof(gmem_guest_vcpu, panic_code)))) + ")");
    default: return Status(Code::kKvm, "OUT to unknown port " + Hex(run->io.port));
  }
}

Status VcpuRunner::CompleteLastExit() {
  vcpu_.SetImmediateExit(true);
  int rc = vcpu_.Run();
  if (rc != EINTR) return Status(Code::kKvm, "KVM_RUN with immediate_exit did not return EINTR", rc);
  needs_completion_ = false;
  return Status::Ok();
}

uint64_t VcpuRunner::BudgetCap() const {
  // The guest checks its target only when it reaches the budget: never let budget pass it.
  uint64_t target = Load(Field(offsetof(gmem_guest_vcpu, steps_target)));
  return target != 0 ? target : UINT64_MAX;
}

Status VcpuRunner::HandleYield() {
  volatile uint64_t* budget = Field(offsetof(gmem_guest_vcpu, budget));
  uint64_t cap = BudgetCap();
  uint64_t step = Load(Field(offsetof(gmem_guest_vcpu, step)));
  std::unique_lock<std::mutex> lock(control_.mu);
  while (!control_.pause && !control_.quit) {
    // A rate change (set-rate) restarts the count, and zeroed the budget to bring us here.
    if (rate_epoch_ != control_.rate_epoch) RebaseRateLocked();
    const uint64_t rate = control_.rate;
    if (rate == 0) {
      Store(budget, cap);
      return Status::Ok();
    }
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - rate_base_time_).count();
    uint64_t allowed = rate_base_step_ + static_cast<uint64_t>(elapsed * static_cast<double>(rate));
    if (allowed > step) {
      Store(budget, allowed < cap ? allowed : cap);
      return Status::Ok();
    }
    double wake_s = static_cast<double>(step + 1 - rate_base_step_) / static_cast<double>(rate);
    control_.cv.wait_until(lock, rate_base_time_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                       std::chrono::duration<double>(wake_s)));
  }
  return Status::Ok();  // paused or quitting: the guest yields again after resume
}

Status VcpuRunner::HandlePageStateChange() {
  uint64_t nr = Load(Field(offsetof(gmem_guest_vcpu, psc_nr)));
  Status result;
  if (nr != GMEM_HC_MAP_GPA_RANGE) {
    result = InvalidArgument("page-state request " + std::to_string(nr) + " is not MAP_GPA_RANGE");
  } else {
    auto request = DecodeMapGpaRange(Load(Field(offsetof(gmem_guest_vcpu, psc_gpa))),
                                     Load(Field(offsetof(gmem_guest_vcpu, psc_npages))),
                                     Load(Field(offsetof(gmem_guest_vcpu, psc_attrs))), ConversionOrigin::kPortIo);
    result = request.ok() ? coco_.Apply(*request) : request.status();
  }
  Store(Field(offsetof(gmem_guest_vcpu, psc_ret)), static_cast<uint64_t>(ConversionResultErrno(result)));
  return Status::Ok();  // a refused request is the guest's problem, not a VMM failure
}

Status VcpuRunner::HandleConversionExit() {
  struct kvm_run* run = vcpu_.run();
  auto request = DecodeConversionExit(*run);
  Status result = request.ok() ? coco_.Apply(*request) : request.status();
  CompleteConversionExit(*run, result);
  // A memory fault that cannot be resolved would fault again forever.
  if (run->exit_reason == KVM_EXIT_MEMORY_FAULT && !result.ok()) return result.WithContext("memory fault");
  return Status::Ok();
}

}  // namespace gmem::vmm
