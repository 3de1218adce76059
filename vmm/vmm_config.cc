#include "vmm/vmm_config.h"

#include <charconv>

#include "vmm/guest/guest_abi.h"

namespace gmem::vmm {

std::string_view SlotModeName(SlotMode mode) {
  switch (mode) {
    case SlotMode::kGmem: return "gmem";
    case SlotMode::kHva: return "hva";
  }
  return "invalid";
}

std::string_view CocoModeName(CocoMode mode) {
  switch (mode) {
    case CocoMode::kNone: return "none";
    case CocoMode::kEmulated: return "emulated";
  }
  return "invalid";
}

Expected<SlotMode> ParseSlotMode(std::string_view name) {
  if (name == "gmem") return SlotMode::kGmem;
  if (name == "hva") return SlotMode::kHva;
  return InvalidArgument("unknown slot mode '" + std::string(name) + "' (known: gmem, hva)");
}

Expected<CocoMode> ParseCocoMode(std::string_view name) {
  if (name == "none") return CocoMode::kNone;
  if (name == "emulated") return CocoMode::kEmulated;
  return InvalidArgument("unknown coco mode '" + std::string(name) + "' (known: none, emulated)");
}

Expected<memory::ConversionContent> ParseConversionContent(std::string_view name) {
  using memory::ConversionContent;
  for (ConversionContent c : {ConversionContent::kPreserve, ConversionContent::kZero, ConversionContent::kScramble}) {
    if (name == memory::ConversionContentName(c)) return c;
  }
  return InvalidArgument("unknown conversion contents '" + std::string(name) + "' (known: preserve, zero, scramble)");
}

std::string_view AgentDirtyModeName(AgentDirtyMode mode) {
  switch (mode) {
    case AgentDirtyMode::kHash: return "hash";
    case AgentDirtyMode::kAll: return "all";
  }
  return "invalid";
}

Expected<AgentDirtyMode> ParseAgentDirtyMode(std::string_view name) {
  if (name == "hash") return AgentDirtyMode::kHash;
  if (name == "all") return AgentDirtyMode::kAll;
  return InvalidArgument("unknown agent dirty mode '" + std::string(name) + "' (known: hash, all)");
}

Expected<uint64_t> ParseSize(std::string_view text) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr == text.data()) return InvalidArgument("size '" + std::string(text) + "' is not a number");
  std::string_view suffix(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") shift = 0;
  else if (suffix == "K" || suffix == "KiB" || suffix == "k") shift = 10;
  else if (suffix == "M" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "GiB") shift = 30;
  else if (suffix == "T" || suffix == "TiB") shift = 40;
  else return InvalidArgument("size '" + std::string(text) + "': unknown suffix '" + std::string(suffix) + "'");
  if (shift > 0 && v > (UINT64_MAX >> shift)) return InvalidArgument("size '" + std::string(text) + "' overflows");
  return v << shift;
}

Status ValidateMemorySize(uint64_t mem_bytes, uint32_t regions) {
  constexpr uint64_t k2M = uint64_t{2} << 20;
  if (mem_bytes % k2M != 0 || mem_bytes < 2 * k2M || mem_bytes > GMEM_GUEST_MAX_MEM_BYTES) {
    return InvalidArgument("--mem " + std::to_string(mem_bytes) +
                           ": must be a multiple of 2 MiB between 4 MiB and 8 GiB");
  }
  if (regions < 1 || regions > 16 || mem_bytes / regions < k2M) {
    return InvalidArgument("--regions " + std::to_string(regions) + ": must be 1..16 regions of at least 2 MiB");
  }
  return Status::Ok();
}

Status ValidateConfig(const VmmConfig& c) {
  if (c.guest_id.size() > 256) return InvalidArgument("--guest-id: at most 256 bytes");
  if (c.private_percent > 100) {
    return InvalidArgument("--private " + std::to_string(c.private_percent) + ": must be a percentage, 0..100");
  }
  if (c.private_percent != 0 && c.incoming) {
    return InvalidArgument("--private: not with --incoming (an incoming VM gets its attributes with its memory)");
  }
  if (c.private_percent != 0 && c.coco != CocoMode::kEmulated) {
    return InvalidArgument("--private needs --coco emulated (without private memory every page is shared)");
  }
  if (c.incoming) {
    // The vCPUs and the workload arrive with set-state; the memory is this VM's own if --mem.
    if (c.mem_bytes != 0) return ValidateMemorySize(c.mem_bytes, c.regions);
    if (c.regions != 1) {
      return InvalidArgument("--regions " + std::to_string(c.regions) +
                             ": with --incoming only together with --mem (otherwise the layout comes with "
                             "prepare-incoming)");
    }
    return Status::Ok();
  }
  GMEM_RETURN_IF_ERROR(ValidateMemorySize(c.mem_bytes, c.regions));
  if (c.vcpus < 1 || c.vcpus > GMEM_GUEST_MAX_VCPUS) {
    return InvalidArgument("--vcpus " + std::to_string(c.vcpus) + ": must be 1..16");
  }
  uint64_t data_npages = (c.mem_bytes - GMEM_GUEST_DATA_GPA) / GMEM_GUEST_PAGE;
  if (c.workload.WorkingSet(data_npages) < c.vcpus) {
    return InvalidArgument("--workload: the working set needs at least one page per vCPU");
  }
  return Status::Ok();
}

}  // namespace gmem::vmm
