#include "tests/migrate/migrate_testing.h"

#include <chrono>
#include <thread>

#include "format/keys.h"
#include "migrate/target.h"
#include "migrate/vmm_client.h"

namespace gmem::migrate::testing {

std::vector<std::string> VmArgs(const VmSpec& spec, bool with_rate) {
  std::string separator = spec.workload.find(':') == std::string::npos ? ":" : ",";
  std::string workload = spec.workload + (with_rate ? separator + "rate=" + spec.rate : "");
  return {"run", "--mem", spec.mem, "--regions", spec.regions, "--slot", spec.slot, "--workload", workload,
          "--seed", spec.seed, "--steps", spec.steps};
}

VmPair::VmPair(const VmSpec& spec) {
  source_socket = dir.File("src.sock");
  target_socket = dir.File("dst.sock");
  auto args = VmArgs(spec, true);
  args.insert(args.end(), {"--control", source_socket});
  source = std::make_unique<vmm::testing::VmmProcess>(args);
  target = std::make_unique<vmm::testing::VmmProcess>(
      std::vector<std::string>{"run", "--incoming", "--control", target_socket});
}

bool WaitForConversions(const std::string& socket, uint64_t count, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto client = VmmClient::Connect(socket, timeout_ms);
  if (!client.ok()) return false;
  while (std::chrono::steady_clock::now() < deadline) {
    auto info = client->Ok({{"cmd", "query"}});
    if (!info.ok()) return false;
    if (info->value("conversions", uint64_t{0}) >= count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::future<Expected<TargetResult>> StartTarget(TargetOptions options, const MigrationKey& key) {
  return std::async(std::launch::async, [options = std::move(options), k = CopyKey(key)]() mutable {
    return MigrationTarget(std::move(options), std::move(k)).Run();
  });
}

MigrationKey NewKey() {
  MigrationKey key;
  auto k = format::GenerateKey();
  EXPECT_OK(k);
  if (k.ok()) key.key = std::move(k).value();
  return key;
}

MigrationKey CopyKey(const MigrationKey& key) {
  MigrationKey copy;
  copy.key = SecretBytes::CopyOf(key.key.span());
  copy.passphrase = SecretBytes::CopyOf(key.passphrase.span());
  copy.insecure = key.insecure;
  return copy;
}

void WriteKeyFile(const MigrationKey& key, const std::string& path) {
  SecretBytes text = format::FormatKeyFile(key.key);
  EXPECT_OK(WriteSecretFile(path, text.span(), /*overwrite=*/true));
}

}  // namespace gmem::migrate::testing
