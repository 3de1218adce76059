#pragma once
// What a gmem-vmm VM is made of: memory size and regions, vCPUs, memslot and CoCo modes, the
// workload. Filled from the command line (tools/gmem_vmm.cc) or, for an incoming VM, from the
// layout and state blob the control socket delivers.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/expected.h"
#include "memory/emulated_attribute_source.h"
#include "vmm/workload.h"

namespace gmem::agent {
class PlatformKey;
}

namespace gmem::vmm {

// How guest memory reaches KVM (DESIGN.md, "What this machine really offers").
enum class SlotMode : uint8_t {
  kGmem = 1,  // KVM_MEM_GUEST_MEMFD memslots: KVM keeps no dirty log
  kHva = 2,   // classic memslots over the guest_memfd mapping, dirty logging on
};
// Whether pages can be private.
enum class CocoMode : uint8_t {
  kNone = 1,      // every page shared; page-state requests fail
  kEmulated = 2,  // the VMM's attribute table, fed by the guest's page-state requests
};

// How the emulated guest agent answers DIRTY (vmm/emulated_agent.h).
enum class AgentDirtyMode : uint8_t {
  kHash = 1,  // fingerprints of exported pages: the private pages changed since their export
  kAll = 2,   // "cannot track": ALL, every time
};

std::string_view SlotModeName(SlotMode mode);
std::string_view CocoModeName(CocoMode mode);
Expected<SlotMode> ParseSlotMode(std::string_view name);
Expected<CocoMode> ParseCocoMode(std::string_view name);
Expected<memory::ConversionContent> ParseConversionContent(std::string_view name);
std::string_view AgentDirtyModeName(AgentDirtyMode mode);
Expected<AgentDirtyMode> ParseAgentDirtyMode(std::string_view name);

struct VmmConfig {
  // Guest RAM split into `regions` (GuestMemory::MakeLayout). An incoming VM with mem_bytes != 0
  // creates and populates that memory up front and accepts only that layout from
  // prepare-incoming; with 0 it takes whatever layout prepare-incoming brings.
  uint64_t mem_bytes = 0;
  uint32_t regions = 1;
  uint32_t vcpus = 1;
  SlotMode slot = SlotMode::kGmem;
  bool slot_given = false;  // --slot was on the command line (an incoming VM keeps it)
  CocoMode coco = CocoMode::kNone;
  memory::ConversionContent contents = memory::ConversionContent::kPreserve;
  // --private: percent (0..100) of the data pages the VM starts with private, in runs of
  // kBootPrivateRunPages chosen from the seed (vmm/initial_contents.h, BootPrivateRuns). Emulated
  // CoCo only; not a conversion (no contents policy, not counted).
  uint32_t private_percent = 0;
  WorkloadSpec workload;
  uint64_t seed = 0;
  uint64_t steps = 0;       // total over all vCPUs; 0 = run until quit
  std::string init_from;    // raw image of guest memory, or empty: contents from the seed
  bool incoming = false;    // wait for prepare-incoming / set-state / resume on the control socket
  // The emulated guest agent (docs/agent-protocol.md): its platform key (null: not provisioned),
  // the identity field that enters its measurement, and how it answers DIRTY.
  std::shared_ptr<const agent::PlatformKey> platform_key;
  std::string guest_id;
  AgentDirtyMode agent_dirty = AgentDirtyMode::kHash;
};

// Limits: memory a multiple of 2 MiB in [4 MiB, 8 GiB]; 1..16 regions of at least 2 MiB each;
// 1..16 vCPUs; the workload's working set non-empty and at least one page per vCPU; --guest-id at
// most 256 bytes; --private 0..100, and other than 0 only with --coco emulated and not --incoming
// (an incoming VM's attributes arrive with its memory). An incoming VM gets its vCPUs and
// workload from set-state: only its memory is checked, when it has one (mem_bytes != 0), and
// --regions other than 1 needs --mem.
Status ValidateConfig(const VmmConfig& config);

// The memory part of ValidateConfig: `mem_bytes` a multiple of 2 MiB in [4 MiB, 8 GiB], split
// into 1..16 regions of at least 2 MiB. kInvalidArgument naming --mem or --regions otherwise.
Status ValidateMemorySize(uint64_t mem_bytes, uint32_t regions);

// "256M", "1G", "4096", "64KiB" -> bytes. kInvalidArgument for anything else or overflow.
Expected<uint64_t> ParseSize(std::string_view text);

}  // namespace gmem::vmm
