#include "base/version.h"

#include <string>

#include <gtest/gtest.h>

#include "gmemkit/version.h"

namespace gmem {
namespace {

// GMEM_TEST_PROJECT_VERSION is project(gmemkit VERSION ...) as CMake saw it
// (tests/base/CMakeLists.txt): the generated header and the library must both say it.
TEST(VersionTest, HeaderMacrosAreTheProjectVersion) {
  EXPECT_STREQ(GMEMKIT_VERSION_STRING, GMEM_TEST_PROJECT_VERSION);
  EXPECT_EQ(std::to_string(GMEMKIT_VERSION_MAJOR) + "." + std::to_string(GMEMKIT_VERSION_MINOR) + "." +
                std::to_string(GMEMKIT_VERSION_PATCH),
            GMEMKIT_VERSION_STRING);
}

TEST(VersionTest, TheLibraryReportsTheVersionItWasBuiltAs) {
  EXPECT_EQ(LibraryVersionString(), GMEM_TEST_PROJECT_VERSION);
  EXPECT_EQ(LibraryVersion(), (Version{GMEMKIT_VERSION_MAJOR, GMEMKIT_VERSION_MINOR, GMEMKIT_VERSION_PATCH}));
}

}  // namespace
}  // namespace gmem
