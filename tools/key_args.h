#pragma once
// The key flags every tool takes, and turning them into a KeySource: keys come only from a file
// (--key-file, mode 0600 or stricter) or an inherited fd (--key-fd, --passphrase-fd), never from
// argv, and are never printed.

#include <string>

#include "base/expected.h"
#include "base/secret.h"
#include "format/keys.h"

namespace CLI {
class App;
}

namespace gmem::tools {

struct KeyArgs {
  std::string key_file;
  int key_fd = -1;
  int passphrase_fd = -1;
  bool insecure = false;  // --insecure-no-encryption
};

// Adds --key-file, --key-fd, --passphrase-fd and --insecure-no-encryption to `app`.
void AddKeyFlags(CLI::App& app, KeyArgs& args);

// Reads and parses a key file from `fd` when fd >= 0, else from `path` (which must not be
// readable by group or others). Errors name where the key came from.
Expected<SecretBytes> ReadKeyFile(const std::string& path, int fd);

// Reads a passphrase from `fd` (to EOF, at most format::kMaxPassphraseBytes), without the line
// ending a pipe or a file usually adds; an empty passphrase is refused.
Expected<SecretBytes> ReadPassphraseFd(int fd);

// The KeySource the flags name. Exactly one of the key flags, or --insecure-no-encryption.
Expected<format::KeySource> LoadKey(const KeyArgs& args);

}  // namespace gmem::tools
