/* A C program built against an installed gmemkit through pkg-config (tests/install/install_test.sh):
 * it includes <gmemkit/gmemkit.h> (the C API) and <gmemkit/version.h>, links libgmemkit with the C
 * compiler, and calls into the library: its version, a key from bytes, and a key file that does not
 * exist (an I/O error with its message). Prints "gmemkit C API <version> (api <n>) ok" and exits 0
 * when all of that holds; otherwise one line on stderr and exit 1. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <gmemkit/gmemkit.h>
#include <gmemkit/version.h>

static int fail(const char* what) {
  fprintf(stderr, "c_consumer: %s\n", what);
  return 1;
}

int main(void) {
  if (strcmp(gmemkit_version(), GMEMKIT_VERSION_STRING) != 0) return fail("library and header versions differ");
  if (gmemkit_api_version() != GMEMKIT_API_VERSION) return fail("library and header API versions differ");

  unsigned char bytes[32];
  for (size_t i = 0; i < sizeof bytes; ++i) bytes[i] = (unsigned char)(i * 7 + 1);
  gmemkit_key* key = NULL;
  gmemkit_error err;
  if (gmemkit_key_from_bytes(bytes, sizeof bytes, &key, &err) != GMEMKIT_OK || key == NULL) {
    return fail(err.message);
  }
  gmemkit_key_free(key);

  key = NULL;
  int rc = gmemkit_key_from_key_file("/nonexistent/gmemkit.key", &key, &err);
  if (rc != GMEMKIT_ERR_IO || err.code != GMEMKIT_ERR_IO || err.sys_errno != ENOENT || key != NULL) {
    return fail("a missing key file is not an I/O error with ENOENT");
  }
  if (strstr(err.message, "/nonexistent/gmemkit.key") == NULL) return fail("the error does not name the key file");
  if (strcmp(gmemkit_code_name(rc), "io") != 0) return fail("gmemkit_code_name(GMEMKIT_ERR_IO) is not \"io\"");

  printf("gmemkit C API %s (api %d) ok\n", gmemkit_version(), gmemkit_api_version());
  return 0;
}
