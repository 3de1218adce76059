// The C API (capi/gmemkit.h): version, code names, keys, vms and their memory, and the calls into
// snapshot::Save/Restore with a CallbackVmm in place of the control socket.

#include "capi/gmemkit.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <new>
#include <string>

#include "base/secret.h"
#include "base/version.h"
#include "capi/buffer.h"
#include "capi/handles.h"
#include "format/keys.h"
#include "snapshot/restore.h"
#include "snapshot/save.h"

namespace gmem::capi {
namespace {

int NewKey(Expected<migrate::MigrationKey> key, gmemkit_key** out, gmemkit_error* err) {
  if (!key.ok()) return Report(err, key.status());
  auto* made = new (std::nothrow) gmemkit_key{std::move(key).value()};
  if (made == nullptr) return NoMemory(err);
  *out = made;
  return Report(err, Status::Ok());
}

Expected<migrate::MigrationKey> KeyOf(Expected<SecretBytes> key_file_text, const std::string& where) {
  if (!key_file_text.ok()) return key_file_text.status().WithContext(where);
  auto key = format::ParseKeyFile(key_file_text->span());
  if (!key.ok()) return key.status().WithContext(where);
  migrate::MigrationKey out;
  out.key = std::move(key).value();
  return out;
}

}  // namespace
}  // namespace gmem::capi

using gmem::Code;
using gmem::InvalidArgument;
using gmem::Status;
using gmem::capi::Report;

extern "C" {

// LibraryVersionString views a string literal: NUL-terminated.
const char* gmemkit_version(void) { return gmem::LibraryVersionString().data(); }

int gmemkit_api_version(void) { return GMEMKIT_API_VERSION; }

const char* gmemkit_code_name(int code) {
  switch (code) {
    case GMEMKIT_OK: return "ok";
    case GMEMKIT_ERR_IO: return "io";
    case GMEMKIT_ERR_CORRUPT: return "corrupt";
    case GMEMKIT_ERR_AUTH: return "auth";
    case GMEMKIT_ERR_INCOMPATIBLE: return "incompatible";
    case GMEMKIT_ERR_PROTOCOL: return "protocol";
    case GMEMKIT_ERR_PEER_ABORTED: return "peer-aborted";
    case GMEMKIT_ERR_KVM: return "kvm";
    case GMEMKIT_ERR_UNSUPPORTED: return "unsupported";
    case GMEMKIT_ERR_INVALID_ARGUMENT: return "invalid-argument";
    case GMEMKIT_ERR_CANCELLED: return "cancelled";
    case GMEMKIT_ERR_CALLBACK: return "callback";
    case GMEMKIT_ERR_NO_MEMORY: return "no-memory";
    default: return "unknown";
  }
}

int gmemkit_key_from_bytes(const void* key, size_t len, gmemkit_key** out, gmemkit_error* err) {
  if (key == nullptr || out == nullptr) return Report(err, InvalidArgument("key and out must not be NULL"));
  if (len != gmem::format::kKeySize) {
    return Report(err, InvalidArgument("a key has " + std::to_string(gmem::format::kKeySize) + " bytes, not " +
                                       std::to_string(len)));
  }
  gmem::migrate::MigrationKey made;
  made.key = gmem::SecretBytes::CopyOf({static_cast<const std::byte*>(key), len});
  return gmem::capi::NewKey(std::move(made), out, err);
}

int gmemkit_key_from_key_fd(int fd, gmemkit_key** out, gmemkit_error* err) {
  if (fd < 0 || out == nullptr) return Report(err, InvalidArgument("a key fd >= 0 and out are required"));
  return gmem::capi::NewKey(
      gmem::capi::KeyOf(gmem::ReadSecretFd(fd, gmem::format::kKeyFileMaxBytes), "key fd " + std::to_string(fd)), out,
      err);
}

int gmemkit_key_from_key_file(const char* path, gmemkit_key** out, gmemkit_error* err) {
  if (path == nullptr || out == nullptr) return Report(err, InvalidArgument("path and out must not be NULL"));
  return gmem::capi::NewKey(gmem::capi::KeyOf(gmem::ReadSecretFile(path, gmem::format::kKeyFileMaxBytes),
                                              std::string("key file '") + path + "'"),
                            out, err);
}

int gmemkit_key_from_passphrase(const void* passphrase, size_t len, gmemkit_key** out, gmemkit_error* err) {
  if (passphrase == nullptr || out == nullptr) return Report(err, InvalidArgument("passphrase and out must not be NULL"));
  if (len == 0 || len > gmem::format::kMaxPassphraseBytes) {
    return Report(err, InvalidArgument("a passphrase has 1.." + std::to_string(gmem::format::kMaxPassphraseBytes) +
                                       " bytes, not " + std::to_string(len)));
  }
  gmem::migrate::MigrationKey made;
  made.passphrase = gmem::SecretBytes::CopyOf({static_cast<const std::byte*>(passphrase), len});
  return gmem::capi::NewKey(std::move(made), out, err);
}

void gmemkit_key_free(gmemkit_key* key) { delete key; }  // SecretBytes zero themselves

int gmemkit_buffer_append(gmemkit_buffer* buffer, const void* data, size_t len) {
  if (buffer == nullptr || (data == nullptr && len != 0)) return EINVAL;
  try {
    buffer->bytes.append(static_cast<const char*>(data), len);
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  return 0;
}

int gmemkit_vm_new(const gmemkit_vmm_callbacks* callbacks, gmemkit_vm** out, gmemkit_error* err) {
  if (out == nullptr) return Report(err, InvalidArgument("out is NULL"));
  if (Status st = gmem::capi::ValidCallbacks(callbacks); !st.ok()) return Report(err, st);
  auto* vm = new (std::nothrow) gmemkit_vm(*callbacks);
  if (vm == nullptr) return gmem::capi::NoMemory(err);
  *out = vm;
  return Report(err, Status::Ok());
}

void gmemkit_vm_free(gmemkit_vm* vm) { delete vm; }

int gmemkit_vm_set_memory(gmemkit_vm* vm, const gmemkit_region* regions, size_t count, gmemkit_error* err) {
  if (vm == nullptr) return Report(err, InvalidArgument("vm is NULL"));
  if (regions == nullptr || count == 0) return Report(err, InvalidArgument("at least one region is required"));
  return Report(err, vm->vmm.SetMemory({regions, count}));
}

void gmemkit_vm_cancel(gmemkit_vm* vm) {
  if (vm != nullptr) vm->cancel.store(true);
}

int gmemkit_snapshot_save(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_save_options* options,
                          gmemkit_save_result* result, gmemkit_error* err) {
  if (Status st = gmem::capi::CheckCall(vm, key); !st.ok()) return Report(err, st);
  gmemkit_save_options given;
  if (Status st = gmem::capi::CopyOptions(options, given, "gmemkit_save_options"); !st.ok()) return Report(err, st);
  if (given.path == nullptr || given.path[0] == '\0') return Report(err, InvalidArgument("options->path is required"));
  if (given.compression != GMEMKIT_COMPRESSION_ZSTD && given.compression != GMEMKIT_COMPRESSION_NONE) {
    return Report(err, InvalidArgument("options->compression: unknown value " + std::to_string(given.compression)));
  }
  gmem::snapshot::SaveOptions save;
  save.vmm = &vm->vmm;
  save.out_path = given.path;
  if (given.parent_path != nullptr) save.parent_path = given.parent_path;
  save.compression =
      given.compression == GMEMKIT_COMPRESSION_NONE ? gmem::format::Compression::kNone : gmem::format::Compression::kZstd;
  save.stop = given.stop != 0;
  save.cancel = &vm->cancel;
  gmem::capi::BeginOperation(vm);
  auto saved = gmem::snapshot::Save(save, gmem::capi::CopyKey(key->key));
  if (!saved.ok()) return gmem::capi::ReportOperation(err, vm, saved.status());
  if (result != nullptr) {
    *result = gmemkit_save_result{};
    result->file_bytes = saved->file_bytes;
    result->guest_pages = saved->guest_pages;
    result->data_pages = saved->stats.data_pages;
    result->zero_pages = saved->stats.zero_pages;
    result->paused_ms = saved->paused_ms;
    result->left_paused = saved->left_paused ? 1 : 0;
  }
  return Report(err, Status::Ok());
}

int gmemkit_snapshot_restore(gmemkit_vm* vm, const gmemkit_key* key, const gmemkit_restore_options* options,
                             gmemkit_restore_result* result, gmemkit_error* err) {
  if (Status st = gmem::capi::CheckCall(vm, key); !st.ok()) return Report(err, st);
  gmemkit_restore_options given;
  if (Status st = gmem::capi::CopyOptions(options, given, "gmemkit_restore_options"); !st.ok()) return Report(err, st);
  gmem::snapshot::RestoreOptions restore;
  if (given.path != nullptr) {
    restore.in_path = given.path;
  } else if (given.fd >= 0) {
    // A path of its own to the same file: the engine reads from offset 0 with its own offset,
    // and the caller's fd is left as it was.
    restore.in_path = "/proc/self/fd/" + std::to_string(given.fd);
    // An increment's parents are looked for beside the file the fd is open on (not in
    // /proc/self/fd, the directory of the path above).
    std::error_code ec;
    std::filesystem::path file = std::filesystem::read_symlink(restore.in_path, ec);
    if (!ec && file.is_absolute()) restore.parent_dir = file.parent_path().string();
  } else {
    return Report(err, InvalidArgument("options->path or options->fd is required"));
  }
  if (given.parent_dir != nullptr) restore.parent_dir = given.parent_dir;
  restore.vmm = &vm->vmm;
  restore.resume = given.leave_paused == 0;
  restore.cancel = &vm->cancel;
  gmem::capi::BeginOperation(vm);
  auto restored = gmem::snapshot::Restore(restore, gmem::capi::CopyKey(key->key));
  if (!restored.ok()) return gmem::capi::ReportOperation(err, vm, restored.status());
  if (result != nullptr) {
    *result = gmemkit_restore_result{};
    result->file_bytes = restored->file_bytes;
    result->data_pages = restored->target.data_pages;
    result->zero_pages = restored->target.zero_pages;
    result->images = restored->chain.size();
    result->resumed = restored->target.resumed ? 1 : 0;
  }
  return Report(err, Status::Ok());
}

}  // extern "C"
