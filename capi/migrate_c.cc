// The C API's live migration (capi/gmemkit.h): gmemkit_migrate_send/receive run
// migrate::MigrationSource/MigrationTarget with the vm's CallbackVmm in place of the control socket.

#include <string>

#include "capi/gmemkit.h"
#include "capi/handles.h"
#include "migrate/source.h"
#include "migrate/target.h"

namespace gmem::capi {
namespace {

// The peer's URI: options.uri, or "fd:N" for a connected socket.
Expected<std::string> PeerUri(const gmemkit_migrate_options& options) {
  if (options.uri != nullptr && options.uri[0] != '\0') return std::string(options.uri);
  if (options.fd < 0) return InvalidArgument("options->uri or options->fd (a connected socket) is required");
  return "fd:" + std::to_string(options.fd);
}

Status CheckLiveKey(const migrate::MigrationKey& key) {
  if (!key.passphrase.empty()) {
    return InvalidArgument("a live migration needs a key, not a passphrase (the handshake proves the key)");
  }
  return Status::Ok();
}

Status Send(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_migrate_options& given, gmemkit_migrate_result* result) {
  GMEM_RETURN_IF_ERROR(CheckLiveKey(key->key));
  if (given.compression != GMEMKIT_COMPRESSION_ZSTD && given.compression != GMEMKIT_COMPRESSION_NONE) {
    return InvalidArgument("options->compression: unknown value " + std::to_string(given.compression));
  }
  migrate::SourceOptions source;
  source.vmm = &vm->vmm;
  GMEM_ASSIGN_OR_RETURN(source.to_uri, PeerUri(given));
  if (given.channels != 0) source.channels = static_cast<uint16_t>(std::min<uint32_t>(given.channels, 0xffff));
  if (given.max_downtime_ms != 0) source.convergence.downtime_ms = given.max_downtime_ms;
  if (given.max_passes != 0) source.convergence.max_passes = given.max_passes;
  source.compression = given.compression == GMEMKIT_COMPRESSION_NONE ? format::Compression::kNone : format::Compression::kZstd;
  source.verify_memory = given.verify_memory != 0;
  source.cancel = &vm->cancel;
  GMEM_ASSIGN_OR_RETURN(migrate::MigrationStats stats, migrate::MigrationSource(std::move(source), CopyKey(key->key)).Run());
  if (result != nullptr) {
    *result = gmemkit_migrate_result{};
    result->wire_bytes = stats.wire_bytes;
    result->data_pages = stats.data_pages;
    result->zero_pages = stats.zero_pages;
    result->passes = static_cast<uint32_t>(stats.passes.size());
    result->downtime_ms = stats.downtime_ms;
    result->total_ms = stats.total_ms;
  }
  return Status::Ok();
}

Status Receive(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_migrate_options& given,
               gmemkit_migrate_result* result) {
  GMEM_RETURN_IF_ERROR(CheckLiveKey(key->key));
  migrate::TargetOptions target;
  target.vmm = &vm->vmm;
  GMEM_ASSIGN_OR_RETURN(target.from_uri, PeerUri(given));
  target.accept_timeout_ms = given.timeout_ms > 0 ? given.timeout_ms : -1;
  target.resume = given.leave_paused == 0;
  target.cancel = &vm->cancel;
  GMEM_ASSIGN_OR_RETURN(migrate::TargetResult got, migrate::MigrationTarget(std::move(target), CopyKey(key->key)).Run());
  if (result != nullptr) {
    *result = gmemkit_migrate_result{};
    result->wire_bytes = got.wire_bytes;
    result->data_pages = got.data_pages;
    result->zero_pages = got.zero_pages;
    result->resumed = got.resumed ? 1 : 0;
  }
  return Status::Ok();
}

// Checks the arguments, runs `op` as an operation on `vm` and reports its result.
template <typename Op>
int Run(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_migrate_options* options, gmemkit_error* err, Op op) {
  if (Status st = CheckCall(vm, key); !st.ok()) return Report(err, st);
  gmemkit_migrate_options given;
  if (Status st = CopyOptions(options, given, "gmemkit_migrate_options"); !st.ok()) return Report(err, st);
  BeginOperation(vm);
  return ReportOperation(err, vm, op(given));
}

}  // namespace
}  // namespace gmem::capi

extern "C" {

int gmemkit_migrate_send(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_migrate_options* options,
                         gmemkit_migrate_result* result, gmemkit_error* err) {
  return gmem::capi::Run(vm, key, options, err, [&](const gmemkit_migrate_options& given) {
    return gmem::capi::Send(vm, key, given, result);
  });
}

int gmemkit_migrate_receive(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_migrate_options* options,
                            gmemkit_migrate_result* result, gmemkit_error* err) {
  return gmem::capi::Run(vm, key, options, err, [&](const gmemkit_migrate_options& given) {
    return gmem::capi::Receive(vm, key, given, result);
  });
}

}  // extern "C"
