#pragma once
// VmState: what `get-state` hands out and `set-state` takes (as base64 in JSON): the workload
// configuration, the layout it ran on, and every vCPU's registers — an opaque blob to the toolkit,
// versioned and little-endian, field by field (docs/control-protocol.md, "State blob").
//
// The workload's position (step, digest, generator state) lives in guest memory (the vCPU
// control pages), so it moves with memory; the blob carries the registers that resume the guest
// exactly there. The guest uses no FPU/SSE state (-mgeneral-regs-only), so none is saved.

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "base/expected.h"
#include "memory/emulated_attribute_source.h"
#include "memory/layout.h"
#include "vmm/vmm_config.h"
#include "vmm/workload.h"

namespace gmem::vmm {

inline constexpr uint64_t kVmStateMagic = 0x4554415453564d47ULL;  // "GMVSTATE"
inline constexpr uint16_t kVmStateMajor = 1;
inline constexpr uint16_t kVmStateMinor = 0;

struct VcpuState {
  struct kvm_regs regs = {};
  struct kvm_sregs sregs = {};
  bool finished = false;  // the vCPU reported DONE: it is not run again
};

struct VmState {
  WorkloadSpec workload;
  uint64_t seed = 0;
  uint64_t steps = 0;
  CocoMode coco = CocoMode::kNone;
  memory::ConversionContent contents = memory::ConversionContent::kPreserve;
  memory::Layout layout;
  std::vector<VcpuState> vcpus;  // index = vCPU id
};

Bytes EncodeVmState(const VmState& state);

// Strict: magic, major version 1 (any minor up to ours), every enum and count in range, no
// trailing bytes. kCorrupt / kIncompatible naming the field otherwise.
Expected<VmState> DecodeVmState(ByteSpan blob);

}  // namespace gmem::vmm
