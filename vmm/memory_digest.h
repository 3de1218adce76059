#pragma once
// The VMM's digest of guest memory and attributes, and the final checksum of a run.
//
// MemoryDigest covers what the workload determines: the layout, every data page (guest-physical
// GMEM_GUEST_DATA_GPA and up), the guest's record of its private pages, and the attribute table.
// It leaves out the rest of the boot area, whose vCPU control pages hold timing-dependent values
// (the rate limiter's budget); the guest's results from there enter the checksum separately.
// Pages that were never touched (not resident in the guest_memfd) are hashed as the zeros they
// read as, without faulting them in.
//
// Checksum = XXH3-64 over ("gmemkit-checksum-v1", each vCPU's step count and running digest, the
// memory digest). It depends only on (workload, seed, steps, layout, vCPUs, --private): rate, pauses,
// snapshots and migrations leave it alone, and any page a migration got wrong changes it.

#include <cstdint>
#include <span>
#include <vector>

#include "memory/attribute_map.h"
#include "vmm/guest_memory.h"

namespace gmem::vmm {

struct VcpuResult {
  uint64_t step = 0;
  uint64_t digest = 0;
};

// REQUIRES: `attrs` has one map per region of `memory`, in layout order.
uint64_t MemoryDigest(const GuestMemory& memory, const std::vector<memory::AttributeMap>& attrs);

uint64_t FinalChecksum(std::span<const VcpuResult> vcpus, uint64_t memory_digest);

// 16 lowercase hex digits.
std::string DigestHex(uint64_t digest);

}  // namespace gmem::vmm
