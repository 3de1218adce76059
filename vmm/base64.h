#pragma once
// Base64 (RFC 4648, standard alphabet, with padding) for the opaque blobs of the control protocol
// (docs/control-protocol.md): vCPU state and dirty bitmaps travel as base64 strings in JSON.

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/expected.h"

namespace gmem::vmm {

std::string Base64Encode(ByteSpan data);

// Strict: length a multiple of 4, only alphabet characters, '=' only as 1-2 final padding
// characters, and zero unused bits. Anything else is kInvalidArgument naming the position.
Expected<Bytes> Base64Decode(std::string_view text);

}  // namespace gmem::vmm
