#include "tools/key_args.h"

#include <CLI/CLI.hpp>

#include "base/secret.h"

namespace gmem::tools {

Expected<SecretBytes> ReadKeyFile(const std::string& path, int fd) {
  Expected<SecretBytes> text =
      fd >= 0 ? ReadSecretFd(fd, format::kKeyFileMaxBytes) : ReadSecretFile(path, format::kKeyFileMaxBytes);
  if (!text.ok()) return text.status();
  auto key = format::ParseKeyFile(text->span());
  if (!key.ok()) {
    std::string where = fd >= 0 ? "--key-fd " + std::to_string(fd) : "key file '" + path + "'";
    return std::move(key).status().WithContext(where);
  }
  return key;
}

Expected<SecretBytes> ReadPassphraseFd(int fd) {
  GMEM_ASSIGN_OR_RETURN(SecretBytes pass, ReadSecretFd(fd, format::kMaxPassphraseBytes + 1));
  // A passphrase piped in usually ends with a newline that is not part of it.
  size_t n = pass.size();
  while (n > 0 && (pass.data()[n - 1] == std::byte{'\n'} || pass.data()[n - 1] == std::byte{'\r'})) --n;
  if (n == 0) return InvalidArgument("the passphrase is empty");
  return SecretBytes::CopyOf(pass.span().first(n));
}

void AddKeyFlags(CLI::App& app, KeyArgs& args) {
  app.add_option("--key-file", args.key_file, "key file written by 'gmem-migrate keygen' (mode 0600)");
  app.add_option("--key-fd", args.key_fd, "read the key file's contents from this inherited fd")->check(CLI::NonNegativeNumber);
  app.add_option("--passphrase-fd", args.passphrase_fd, "read a passphrase from this inherited fd")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--insecure-no-encryption", args.insecure, "no key: for debugging only");
}

Expected<format::KeySource> LoadKey(const KeyArgs& args) {
  int given = (args.key_file.empty() ? 0 : 1) + (args.key_fd >= 0 ? 1 : 0) + (args.passphrase_fd >= 0 ? 1 : 0);
  if (given > 1) return InvalidArgument("give only one of --key-file, --key-fd and --passphrase-fd");
  if (given == 0) {
    if (args.insecure) return format::KeySource::Insecure();
    return InvalidArgument("a key is needed: --key-file FILE, --key-fd N or --passphrase-fd N "
                           "(or --insecure-no-encryption, for debugging only)");
  }
  if (args.insecure) return InvalidArgument("--insecure-no-encryption cannot be combined with a key");
  if (args.passphrase_fd >= 0) {
    GMEM_ASSIGN_OR_RETURN(SecretBytes pass, ReadPassphraseFd(args.passphrase_fd));
    return format::KeySource::FromPassphrase(std::move(pass));
  }
  GMEM_ASSIGN_OR_RETURN(SecretBytes key, ReadKeyFile(args.key_file, args.key_fd));
  return format::KeySource::FromKey(std::move(key));
}

}  // namespace gmem::tools
