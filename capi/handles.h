#pragma once
// What the C API's handles are (gmemkit_vm, gmemkit_key) and the helpers every C entry point
// shares: turning a Status into a gmemkit_error, reading size-versioned option structs, starting
// an operation on a vm.

#include <atomic>
#include <cstring>
#include <string>

#include "base/status.h"
#include "capi/callback_vmm.h"
#include "capi/gmemkit.h"
#include "migrate/migration_types.h"

struct gmemkit_key {
  gmem::migrate::MigrationKey key;
};

struct gmemkit_vm {
  explicit gmemkit_vm(const gmemkit_vmm_callbacks& callbacks) : vmm(callbacks) {}
  gmem::capi::CallbackVmm vmm;
  std::atomic<bool> cancel{false};  // gmemkit_vm_cancel(): lock-free, async-signal-safe
};

namespace gmem::capi {

// Fills `err` (if not null) and returns `code`. The message is cut with "..." to fit.
int Report(gmemkit_error* err, int code, int sys_errno, const std::string& message);
int Report(gmemkit_error* err, const Status& status);
// An operation's result on `vm`: a failure that one of its callbacks caused is GMEMKIT_ERR_CALLBACK.
int ReportOperation(gmemkit_error* err, gmemkit_vm* vm, const Status& status);
int NoMemory(gmemkit_error* err);

// A fresh start for an operation on `vm`: no cancel pending, no callback failure remembered.
void BeginOperation(gmemkit_vm* vm);
// kInvalidArgument naming what is NULL.
Status CheckCall(const gmemkit_vm* vm, const gmemkit_key* key);
// The engines take their key by value; a gmemkit_key stays the caller's.
migrate::MigrationKey CopyKey(const migrate::MigrationKey& key);

// Reads the first `struct_size` bytes of a caller's options struct over zeroed defaults (a
// program built against an older header passes a shorter struct). `name` is the struct's type.
template <typename T>
Status CopyOptions(const T* given, T& out, const char* name) {
  out = T{};
  if (given == nullptr) return InvalidArgument(std::string(name) + " is NULL");
  if (given->struct_size < sizeof(size_t)) {
    return InvalidArgument(std::string(name) + "->struct_size is not set: set it to sizeof(" + name + ")");
  }
  std::memcpy(&out, given, std::min(given->struct_size, sizeof(T)));
  return Status::Ok();
}

}  // namespace gmem::capi
