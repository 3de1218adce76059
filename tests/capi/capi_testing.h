#pragma once
// What the C API tests' VMMs share: a KVM VM to create guest_memfds in, the run state, state blob
// and counters the engine's basic callbacks serve (with switches that make them fail), the six
// callbacks themselves, and RAII holders for a gmemkit_vm handle and a key.

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "gmemkit.h"
#include "memory/kvm_system.h"
#include "memory/vm.h"

#define SKIP_WITHOUT_KVM() \
  if (!gmem::memory::KvmSystem::Available()) GTEST_SKIP() << "/dev/kvm is absent"

namespace gmem::capi_testing {

inline constexpr uint8_t kTestKeyFill = 0x42;

// A fresh KVM VM (REQUIRES: /dev/kvm; a failure is a test failure).
inline std::optional<memory::Vm> NewKvmVm() {
  auto kvm = memory::KvmSystem::Open();
  EXPECT_TRUE(kvm.ok()) << kvm.status().ToString();
  if (!kvm.ok()) return std::nullopt;
  auto vm = memory::Vm::Create(*kvm);
  EXPECT_TRUE(vm.ok()) << vm.status().ToString();
  if (!vm.ok()) return std::nullopt;
  return std::move(vm).value();
}

// The part of a test VMM the basic callbacks serve. A test VMM derives from it.
struct VmmBasics {
  VmmBasics(int state, std::string blob) : run_state(state), state(std::move(blob)) {}

  std::mutex mu;  // held by the test's guest while it writes (and its agent), and by the run-state callbacks
  int run_state;
  std::string state;
  int pauses = 0, resumes = 0, discards = 0, set_states = 0;
  // Non-zero: the callback fails with this errno.
  int fail_pause = 0, fail_get_state = 0, fail_set_state = 0;
  gmemkit_vm* cancel_in_get_state = nullptr;  // cancelled from inside get_state
  std::function<void()> on_set_state;         // runs once set_state has stored the blob
};

// run_state, pause, resume, discard, get_state and set_state for `vm` (ctx = &vm); the VMM adds
// its own (memory attributes, the agent) to what this returns.
template <typename Vm>
gmemkit_vmm_callbacks BasicCallbacks(Vm& vm) {
  gmemkit_vmm_callbacks cb{};
  cb.struct_size = sizeof(cb);
  cb.ctx = &vm;
  cb.run_state = [](void* ctx, int* state) {
    auto* v = static_cast<Vm*>(ctx);
    std::lock_guard<std::mutex> lock(v->mu);
    *state = v->run_state;
    return 0;
  };
  cb.pause = [](void* ctx) {
    auto* v = static_cast<Vm*>(ctx);
    if (v->fail_pause != 0) return v->fail_pause;
    std::lock_guard<std::mutex> lock(v->mu);  // when pause returns, the guest writes nothing
    v->run_state = GMEMKIT_RUN_PAUSED;
    ++v->pauses;
    return 0;
  };
  cb.resume = [](void* ctx) {
    auto* v = static_cast<Vm*>(ctx);
    std::lock_guard<std::mutex> lock(v->mu);
    v->run_state = GMEMKIT_RUN_RUNNING;
    ++v->resumes;
    return 0;
  };
  cb.discard = [](void* ctx) {
    ++static_cast<Vm*>(ctx)->discards;
    return 0;
  };
  cb.get_state = [](void* ctx, gmemkit_buffer* out) {
    auto* v = static_cast<Vm*>(ctx);
    if (v->cancel_in_get_state != nullptr) gmemkit_vm_cancel(v->cancel_in_get_state);
    if (v->fail_get_state != 0) return v->fail_get_state;
    return gmemkit_buffer_append(out, v->state.data(), v->state.size());
  };
  cb.set_state = [](void* ctx, const void* data, size_t len) {
    auto* v = static_cast<Vm*>(ctx);
    if (v->fail_set_state != 0) return v->fail_set_state;
    v->state.assign(static_cast<const char*>(data), len);
    if (v->on_set_state) v->on_set_state();
    ++v->set_states;
    return 0;
  };
  return cb;
}

// A gmemkit_vm handle over a test VMM (its callbacks as `tweak` changes them, its memory
// registered unless told not to), freed on destruction.
template <typename Vm>
struct VmHandle {
  explicit VmHandle(Vm& vm, bool register_memory = true, void (*tweak)(gmemkit_vmm_callbacks&) = nullptr) {
    gmemkit_vmm_callbacks cb = vm.Callbacks();
    if (tweak != nullptr) tweak(cb);
    EXPECT_EQ(gmemkit_vm_new(&cb, &handle, nullptr), GMEMKIT_OK);
    if (register_memory) {
      auto regions = vm.Regions();
      EXPECT_EQ(gmemkit_vm_set_memory(handle, regions.data(), regions.size(), nullptr), GMEMKIT_OK);
    }
  }
  ~VmHandle() { gmemkit_vm_free(handle); }
  VmHandle(const VmHandle&) = delete;
  VmHandle& operator=(const VmHandle&) = delete;
  gmemkit_vm* handle = nullptr;
};

// The options point into `path`: keep it alive while they are used.
inline gmemkit_save_options SaveTo(const std::string& path) {
  gmemkit_save_options o{};
  o.struct_size = sizeof(o);
  o.path = path.c_str();
  return o;
}

inline gmemkit_restore_options RestoreFrom(const std::string& path) {
  gmemkit_restore_options o{};
  o.struct_size = sizeof(o);
  o.path = path.c_str();
  o.fd = -1;
  return o;
}

// A key of 32 bytes of `fill`, freed on destruction.
struct TestKey {
  explicit TestKey(uint8_t fill = kTestKeyFill) {
    std::vector<uint8_t> bytes(32, fill);
    EXPECT_EQ(gmemkit_key_from_bytes(bytes.data(), bytes.size(), &key, nullptr), GMEMKIT_OK);
  }
  ~TestKey() { gmemkit_key_free(key); }
  TestKey(const TestKey&) = delete;
  TestKey& operator=(const TestKey&) = delete;
  gmemkit_key* key = nullptr;
};

}  // namespace gmem::capi_testing
