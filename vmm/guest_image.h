#pragma once
// The guest program (vmm/guest/), built by this build and embedded in gmemkit_vmm: a flat binary
// to be copied to guest-physical GMEM_GUEST_CODE_GPA (vmm/guest/guest_abi.h).

#include <cstddef>
#include <span>

namespace gmem::vmm {

std::span<const std::byte> GuestImage();

}  // namespace gmem::vmm
