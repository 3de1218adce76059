#include "base/version.h"

#include "gmemkit/version.h"

namespace gmem {

// Compiled into the library, so a program that calls these gets the version of the library it
// runs with, not of the headers it was compiled against.
Version LibraryVersion() { return {GMEMKIT_VERSION_MAJOR, GMEMKIT_VERSION_MINOR, GMEMKIT_VERSION_PATCH}; }

std::string_view LibraryVersionString() { return GMEMKIT_VERSION_STRING; }

}  // namespace gmem
