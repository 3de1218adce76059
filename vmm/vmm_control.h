#pragma once
// VmmControl: serves control-protocol requests (vmm/control_protocol.h) on a Vmm — the handler a
// ControlServer calls for each line. Malformed requests and failed operations become error
// replies; the VM keeps running either way.

#include <string_view>

#include "vmm/control_server.h"
#include "vmm/vmm.h"

namespace gmem::vmm {

// Handles one request line. REQUIRES: `vmm` outlives the call.
ControlReply HandleControlLine(Vmm& vmm, std::string_view line);

}  // namespace gmem::vmm
