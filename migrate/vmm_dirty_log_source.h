#pragma once
// VmmDirtyLogSource: KVM's dirty bitmap as the VMM hands it over its control socket
// (`dirty-log`, hva slots). The engine fetches the log and feeds it in with Add(); the tracker
// collects it at the next pass. It sees every guest write to the region's shared pages.
// Thread-safety: Add and Collect from the same thread.

#include <cstdint>
#include <span>

#include "memory/dirty_source.h"

namespace gmem::migrate {

class VmmDirtyLogSource final : public memory::DirtySource {
 public:
  explicit VmmDirtyLogSource(uint64_t npages) : pending_(npages) {}

  memory::DirtySourceKind kind() const override { return memory::DirtySourceKind::kKvmDirtyBitmap; }
  memory::Coverage coverage() const override;
  Status Collect(const memory::CollectContext& context, memory::PageBitmap& changed) override;

  // ORs in one fetched bitmap (KVM layout: bit p % 64 of word p / 64). kInvalidArgument on a size
  // that does not match the region.
  Status Add(std::span<const uint64_t> words);

 private:
  memory::PageBitmap pending_;
};

}  // namespace gmem::migrate
