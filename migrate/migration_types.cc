#include "migrate/migration_types.h"

namespace gmem::migrate {

format::KeySource StreamKeySource(const MigrationKey& key) {
  if (key.insecure) return format::KeySource::Insecure();
  if (!key.passphrase.empty()) return format::KeySource::FromPassphrase(SecretBytes::CopyOf(key.passphrase.span()));
  return format::KeySource::FromKey(SecretBytes::CopyOf(key.key.span()));
}

}  // namespace gmem::migrate
