#pragma once
// The C API's default VM digest (gmemkit_vmm_callbacks::digest left NULL): a hash of every page
// of guest memory and its attribute, read through the registered fds, and of the state blob. A
// restore is right when the rebuilt VM's digest equals the one saved with the image.

#include <string>
#include <vector>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "format/records.h"
#include "migrate/vmm_control.h"

namespace gmem::capi {

// XXH3-128 (hex) over each region's id, attributes and page contents, layout order. A page that
// has no memory behind it hashes as zeros without being allocated. A private page's contents are
// never read (the host may not, and a hash of them would leave the source in the image): only its
// attribute counts here; the agent's FINISH manifest vouches for the contents. With
// `skip_agent_area` (the VM has a guest agent) the agent area's contents are left out too: its
// mailbox is the agent's scratch space, which no save or migration carries.
// REQUIRES: one fd per region of `layout`, one attribute map per region.
Expected<std::string> HashMemory(const format::LayoutRecord& layout, std::vector<UniqueFd> fds,
                                 const std::vector<migrate::RegionAttributes>& attrs, bool skip_agent_area);

// XXH3-128 (hex) of the state blob.
std::string HashState(const std::string& state);

}  // namespace gmem::capi
