#include "capi/handles.h"

#include <cerrno>

namespace gmem::capi {

namespace {

int CodeOf(Code code) {
  switch (code) {
    case Code::kOk: return GMEMKIT_OK;
    case Code::kIo: return GMEMKIT_ERR_IO;
    case Code::kCorrupt: return GMEMKIT_ERR_CORRUPT;
    case Code::kAuth: return GMEMKIT_ERR_AUTH;
    case Code::kIncompatible: return GMEMKIT_ERR_INCOMPATIBLE;
    case Code::kProtocol: return GMEMKIT_ERR_PROTOCOL;
    case Code::kPeerAborted: return GMEMKIT_ERR_PEER_ABORTED;
    case Code::kKvm: return GMEMKIT_ERR_KVM;
    case Code::kUnsupported: return GMEMKIT_ERR_UNSUPPORTED;
    case Code::kInvalidArgument: return GMEMKIT_ERR_INVALID_ARGUMENT;
    case Code::kCancelled: return GMEMKIT_ERR_CANCELLED;
  }
  return GMEMKIT_ERR_IO;
}

}  // namespace

static_assert(std::atomic<bool>::is_always_lock_free, "gmemkit_vm_cancel must be async-signal-safe");

int Report(gmemkit_error* err, int code, int sys_errno, const std::string& message) {
  if (err == nullptr) return code;
  err->code = code;
  err->sys_errno = sys_errno;
  size_t n = std::min(message.size(), sizeof(err->message) - 1);
  std::memcpy(err->message, message.data(), n);
  if (n < message.size()) std::memcpy(err->message + n - 3, "...", 3);
  err->message[n] = '\0';
  return code;
}

int Report(gmemkit_error* err, const Status& status) {
  return Report(err, CodeOf(status.code()), status.sys_errno(), status.ToString());
}

int ReportOperation(gmemkit_error* err, gmemkit_vm* vm, const Status& status) {
  if (!status.ok() && vm->vmm.FailedInCallback(status)) {
    return Report(err, GMEMKIT_ERR_CALLBACK, status.sys_errno(), status.ToString());
  }
  return Report(err, status);
}

int NoMemory(gmemkit_error* err) { return Report(err, GMEMKIT_ERR_NO_MEMORY, ENOMEM, "out of memory"); }

void BeginOperation(gmemkit_vm* vm) {
  vm->cancel.store(false);
  vm->vmm.BeginOperation();
}

Status CheckCall(const gmemkit_vm* vm, const gmemkit_key* key) {
  if (vm == nullptr) return InvalidArgument("vm is NULL");
  if (key == nullptr) return InvalidArgument("key is NULL");
  return Status::Ok();
}

migrate::MigrationKey CopyKey(const migrate::MigrationKey& key) {
  migrate::MigrationKey out;
  out.key = SecretBytes::CopyOf(key.key.span());
  out.passphrase = SecretBytes::CopyOf(key.passphrase.span());
  out.insecure = key.insecure;
  return out;
}

}  // namespace gmem::capi
