#pragma once
// Guest workloads (`--workload NAME[:k=v,...]`) and how they map onto the guest's parameters.
// All are deterministic for a seed; the rate never changes what they compute.
//
//   dirty    each step changes a few words of one pseudo-random page
//   convert  writes plus shared<->private page-state requests, with page markers
//   idle     each step reads one word; memory is not written
//
// Options: rate=N (steps per second per vCPU; 0 = as fast as it runs), pages=N (working set:
// the first N data pages; default all, convert: 2048), words=N (1..8 words per step, default 4),
// every=N (convert: one step in about N converts, default 4), log=0|1 (test mode: the guest logs
// the gfn of every page it writes).

#include <cstdint>
#include <string>
#include <string_view>

#include "base/expected.h"

namespace gmem::vmm {

enum class WorkloadKind : uint8_t { kDirty = 1, kConvert = 2, kIdle = 3 };

std::string_view WorkloadKindName(WorkloadKind kind);

struct WorkloadSpec {
  WorkloadKind kind = WorkloadKind::kDirty;
  uint64_t rate = 0;
  uint64_t pages = 0;  // 0 = the default for the kind
  uint32_t words = 4;
  uint32_t convert_every = 4;
  bool log_writes = false;

  // The working set for `data_npages` data pages.
  uint64_t WorkingSet(uint64_t data_npages) const;
  // "dirty:rate=100,pages=0,words=4,every=4,log=0" (every option, so it parses back the same).
  std::string ToString() const;
  bool operator==(const WorkloadSpec&) const = default;
};

// Parses NAME[:k=v,...]. kInvalidArgument naming the bad part.
Expected<WorkloadSpec> ParseWorkload(std::string_view text);

}  // namespace gmem::vmm
