#pragma once
// CallbackVmm: migrate::VmmControl over the callbacks and memory a VMM hands to the C API
// (capi/gmemkit.h, docs/c-api.md). The engines drive it exactly as they drive the control socket;
// each callback's nonzero return becomes a Status that names the callback, and is remembered so
// the C layer can report it as GMEMKIT_ERR_CALLBACK.
// Thread-safety: one operation at a time (the engine calls it from one thread at a time).

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "capi/gmemkit.h"
#include "migrate/vmm_control.h"

namespace gmem::capi {

class CallbackVmm final : public migrate::VmmControl {
 public:
  // Copies the first callbacks.struct_size bytes of `callbacks` (the rest stays null).
  // REQUIRES: ValidCallbacks(callbacks).
  explicit CallbackVmm(const gmemkit_vmm_callbacks& callbacks);

  // Registers the VM's memory: the layout is checked (FORMAT.md §5.1) and so is each fd's size;
  // the fds are duplicated. On failure the earlier registration stays.
  Status SetMemory(std::span<const gmemkit_region> regions);

  // Forgets the callback failures of an earlier operation.
  void BeginOperation() { callback_failures_.clear(); }
  // Whether `status` (an operation's result) comes from a callback's failure in this operation.
  bool FailedInCallback(const Status& status) const;

  Expected<migrate::VmmInfo> Query() override;
  Status Pause() override;
  Status Resume() override;
  // Calls `discard` (if given): the engines quit a VMM to discard an incoming copy, or the source
  // after the target took over.
  Status Quit() override;
  Expected<format::LayoutRecord> GetMemfds(std::vector<UniqueFd>& fds) override;
  Expected<std::vector<migrate::RegionAttributes>> GetAttributes(const format::LayoutRecord& layout) override;
  Status SetAttributes(const std::vector<migrate::RegionAttributes>& regions) override;
  Expected<std::vector<std::vector<uint64_t>>> DirtyLog(const format::LayoutRecord& layout) override;
  Expected<std::string> GetState() override;
  Status SetState(const std::string& state) override;
  // The `digest` callback's text, or a hash of memory (not private pages, nor the agent area of a
  // VM with an agent), the attributes and the state blob.
  Expected<migrate::VmmDigest> Digest() override;
  // With prepare_incoming: the VMM's new memory (registered from then on). Without: the registered
  // memory, which must have this layout; it is zeroed first (the stream leaves zero pages out).
  Status PrepareIncoming(const format::LayoutRecord& layout, std::vector<UniqueFd>& fds) override;
  // A doorbell that calls agent_doorbell (kUnsupported without it, or when agent_query reports
  // no agent). It refers to this object: REQUIRES it outlives the doorbell (one operation).
  Expected<std::unique_ptr<agent::Doorbell>> ConnectAgentDoorbell() override;

 private:
  // OK for rc == 0; else a kIo Status "VMM callback 'name' failed" with errno rc, remembered.
  Status Check(const char* name, int rc);
  Expected<std::vector<UniqueFd>> DupMemory() const;
  // The agent_query callback's answer; kUnsupported for an agent area this library cannot reach.
  // REQUIRES: callbacks_.agent_query is set.
  Expected<gmemkit_agent_info> QueryAgent();
  Status ZeroMemory();

  gmemkit_vmm_callbacks callbacks_{};
  format::LayoutRecord layout_;
  std::vector<UniqueFd> fds_;  // registered memory, layout order
  bool has_memory_ = false;
  std::string last_state_;  // the state blob last read or written: part of the default digest
  std::vector<std::string> callback_failures_;
};

// Whether `callbacks` can back a VM: struct_size covers at least up to `run_state`, and
// run_state is set. A one-line reason otherwise.
Status ValidCallbacks(const gmemkit_vmm_callbacks* callbacks);

}  // namespace gmem::capi
