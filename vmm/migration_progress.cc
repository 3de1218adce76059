#include "vmm/migration_progress.h"

namespace gmem::vmm {

std::string_view MigrationStateName(MigrationState state) {
  switch (state) {
    case MigrationState::kNone: return "none";
    case MigrationState::kActive: return "active";
    case MigrationState::kCompleted: return "completed";
    case MigrationState::kFailed: return "failed";
  }
  return "none";
}

std::optional<MigrationState> ParseMigrationState(std::string_view name) {
  for (MigrationState s : {MigrationState::kNone, MigrationState::kActive, MigrationState::kCompleted,
                           MigrationState::kFailed}) {
    if (MigrationStateName(s) == name) return s;
  }
  return std::nullopt;
}

void MigrationProgressBoard::Set(MigrationProgress progress) {
  std::lock_guard<std::mutex> lock(mu_);
  last_ = std::move(progress);
  at_ = std::chrono::steady_clock::now();
}

std::optional<MigrationProgressBoard::Report> MigrationProgressBoard::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!last_.has_value()) return std::nullopt;
  auto age = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - at_);
  return Report{*last_, static_cast<uint64_t>(age.count())};
}

}  // namespace gmem::vmm
