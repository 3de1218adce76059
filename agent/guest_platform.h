#pragma once
// GuestPlatform: what the agent needs from the confidential-computing platform it runs on — the
// access to private pages that the host lacks (docs/agent-protocol.md §9). An SVSM service would
// implement it with the RMP and PVALIDATE; gmem-vmm's emulated CoCo implements it in
// vmm/emulated_agent.cc. The agent calls it from one thread at a time.

#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "base/expected.h"

namespace gmem::agent {

class GuestPlatform {
 public:
  virtual ~GuestPlatform() = default;

  // One past the highest guest frame number of guest RAM.
  virtual uint64_t gfn_limit() const = 0;
  // Whether page `gfn` is private now. REQUIRES: gfn < gfn_limit().
  virtual bool IsPrivate(uint64_t gfn) const = 0;
  // The first private gfn >= `gfn`, or gfn_limit() when there is none (FINISH, §4.7, walks the
  // private pages with it). The default asks IsPrivate of every page; a platform with a sparse
  // view of its private pages may answer faster.
  virtual uint64_t NextPrivate(uint64_t gfn) const {
    for (; gfn < gfn_limit(); ++gfn) {
      if (IsPrivate(gfn)) return gfn;
    }
    return gfn_limit();
  }
  // Copies private page `gfn` into `out` (agent-private memory, kPageBytes).
  virtual Status ReadPrivatePage(uint64_t gfn, MutableByteSpan out) = 0;
  // Makes page `gfn` private — an acceptance, not a conversion: no contents policy applies — and
  // writes `in` (kPageBytes) into it. The page is private before its contents are written.
  virtual Status WritePrivatePage(uint64_t gfn, ByteSpan in) = 0;

  // ---- dirty tracking of private pages (DIRTY, §4.5) ----
  // False when the platform cannot tell which private pages the guest wrote: DIRTY answers ALL.
  virtual bool tracks_private_writes() const = 0;
  // A new export session begins: no page counts as exported any more.
  virtual void ResetExportBaseline() = 0;
  // Page `gfn` was just exported with contents `page`.
  virtual void NoteExported(uint64_t gfn, ByteSpan page) = 0;
  // Appends, ascending, up to `max` private gfns >= `cursor` whose contents differ from their last
  // NoteExported (or that were never exported in this session). Returns the gfn to continue from
  // (gfn_limit() when the scan is complete).
  virtual Expected<uint64_t> CollectDirty(uint64_t cursor, uint32_t max, std::vector<uint64_t>& out) = 0;
};

}  // namespace gmem::agent
