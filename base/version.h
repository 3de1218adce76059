#pragma once
// The version of the gmemkit library itself, as compiled into it. The GMEMKIT_VERSION_* macros
// of the generated <gmemkit/version.h> tell the version of the headers a program was compiled
// against; these functions tell the version of the library it was linked with or, for
// libgmemkit.so, loaded at run time. Comparing the two catches a mismatched library.

#include <string_view>

namespace gmem {

struct Version {
  int major = 0;
  int minor = 0;
  int patch = 0;
  bool operator==(const Version&) const = default;
};

// The library's version: GMEMKIT_VERSION_MAJOR, _MINOR, _PATCH as the library was built.
Version LibraryVersion();
// The same as "MAJOR.MINOR.PATCH" (GMEMKIT_VERSION_STRING as the library was built). The view
// refers to static storage.
std::string_view LibraryVersionString();

}  // namespace gmem
