#pragma once
// Expected<T>: a value or a non-OK Status, shaped like C++23 std::expected (which our C++20
// toolchains do not all provide).

#include <cassert>
#include <optional>
#include <utility>

#include "base/status.h"

namespace gmem {

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Expected built from an OK status");
    if (status_.ok()) status_ = Status(Code::kInvalidArgument, "Expected from OK status");
  }

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }

  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace gmem
