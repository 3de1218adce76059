#include "migrate/page_versions.h"

#include <gtest/gtest.h>

namespace gmem::migrate {
namespace {

TEST(PageVersionsTest, TheNewestPassWinsWhateverTheArrivalOrder) {
  PageVersions v(4);
  EXPECT_TRUE(v.Claim(0, 2, false));
  EXPECT_FALSE(v.Claim(0, 1, false));  // an older pass arriving late on another channel
  EXPECT_TRUE(v.Claim(0, 2, false));   // the same pass again (a page sent twice) still applies
  EXPECT_TRUE(v.Claim(0, 3, false));
}

// The race a second channel makes possible: the shared copy of a page leaves in pass k, the guest
// converts it to private and writes it, the agent exports it in the same pass k; if the shared
// batch arrives after the private blob, the blob must stay.
TEST(PageVersionsTest, APrivateBlobOutranksTheSharedCopyOfItsOwnPass) {
  PageVersions v(4);
  EXPECT_TRUE(v.Claim(1, 5, /*is_private=*/true));
  EXPECT_FALSE(v.Claim(1, 5, /*is_private=*/false));
  EXPECT_TRUE(v.Claim(1, 6, /*is_private=*/false));  // converted back and sent in the next pass
  EXPECT_FALSE(v.Claim(1, 5, /*is_private=*/true));
}

TEST(PageVersionsTest, ResetStartsANewImage) {
  PageVersions v(2);
  EXPECT_TRUE(v.Claim(0, 7, true));
  v.Reset();
  EXPECT_TRUE(v.Claim(0, 1, false));
}

}  // namespace
}  // namespace gmem::migrate
