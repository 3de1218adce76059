#include "tools/cli_parse.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "tools/exit_codes.h"

namespace gmem::tools {

std::optional<int> ParseArgs(CLI::App& app, int argc, char** argv, std::string_view tool) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", std::string(tool).c_str(), e.what());
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace gmem::tools
