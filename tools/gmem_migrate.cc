// gmem-migrate: live migration front end. Subcommands so far: keygen.
// The engine lives in migrate/; this file only parses flags and reports.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "base/secret.h"
#include "format/keys.h"
#include "tools/exit_codes.h"

namespace gmem::tools {
namespace {

constexpr std::string_view kTool = "gmem-migrate";

int RunKeygen(const std::string& out, bool force, bool quiet) {
  auto key = format::GenerateKey();
  if (!key.ok()) return Fail(kTool, "keygen", key.status());
  SecretBytes text = format::FormatKeyFile(*key);
  Status st = WriteSecretFile(out, text.span(), force);
  if (!st.ok()) return Fail(kTool, "keygen", st);
  auto id = format::KeySource::FromKey(std::move(key).value()).KeyId();
  if (!id.ok()) return Fail(kTool, "keygen", id.status());
  // The key id names the key without revealing it; the key itself is never printed.
  if (!quiet) std::printf("wrote key file '%s' (mode 0600, key id %s)\n", out.c_str(), ToHex(*id).c_str());
  return kExitOk;
}

}  // namespace
}  // namespace gmem::tools

int main(int argc, char** argv) {
  using namespace gmem::tools;
  CLI::App app{"gmem-migrate: live-migrate a guest_memfd VM (see README.md)"};
  app.require_subcommand(1);
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "print nothing on success");

  CLI::App* keygen = app.add_subcommand("keygen", "write a new random key file (mode 0600) for --key-file");
  std::string out;
  bool force = false;
  keygen->add_option("--out", out, "path of the new key file")->required();
  keygen->add_flag("--force", force, "replace an existing file");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", std::string(kTool).c_str(), e.what());
    return kExitUsage;
  }
  if (keygen->parsed()) return RunKeygen(out, force, quiet);
  return kExitUsage;
}
