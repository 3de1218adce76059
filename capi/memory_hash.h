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
// has no memory behind it hashes as zeros without being allocated.
// REQUIRES: one fd per region of `layout`, one attribute map per region.
Expected<std::string> HashMemory(const format::LayoutRecord& layout, std::vector<UniqueFd> fds,
                                 const std::vector<migrate::RegionAttributes>& attrs);

// XXH3-128 (hex) of the state blob.
std::string HashState(const std::string& state);

}  // namespace gmem::capi
