#include "tools/cli_parse.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "base/version.h"
#include "tools/exit_codes.h"
#include "tools/man_page.h"

namespace gmem::tools {
namespace {

int PrintManPage(const CLI::App& app, std::string_view tool) {
  auto page = ManPage(app, tool, ManualProse(tool));
  if (!page.ok()) return Fail(tool, kHelpManFlag, page.status());
  std::fwrite(page->data(), 1, page->size(), stdout);
  return std::fflush(stdout) == 0 ? kExitOk : kExitIo;
}

}  // namespace

std::optional<int> ParseArgs(CLI::App& app, int argc, char** argv, std::string_view tool) {
  // Before the manual page is made, so the page lists it as --help does.
  app.set_version_flag("--version", std::string(tool) + " (gmemkit) " + std::string(LibraryVersionString()),
                       "print the gmemkit version and exit");
  if (argc == 2 && std::string_view(argv[1]) == kHelpManFlag) return PrintManPage(app, tool);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", std::string(tool).c_str(), e.what());
    return kExitUsage;
  }
  return std::nullopt;
}

Status ParseCompress(const std::string& text, format::Compression& compression, int& zstd_level, bool& adaptive) {
  if (text == "auto") {
    compression = format::Compression::kZstd;
    zstd_level = 1;
    adaptive = true;
    return Status::Ok();
  }
  if (text == "none") {
    compression = format::Compression::kNone;
    adaptive = false;
    return Status::Ok();
  }
  if (text == "zstd") {
    compression = format::Compression::kZstd;
    adaptive = false;
    return Status::Ok();
  }
  if (text.starts_with("zstd:")) {
    try {
      size_t used = 0;
      int level = std::stoi(text.substr(5), &used);
      if (used == text.size() - 5 && level >= -7 && level <= 19) {
        compression = format::Compression::kZstd;
        zstd_level = level;
        adaptive = false;
        return Status::Ok();
      }
    } catch (const std::exception&) {
    }
  }
  return InvalidArgument("--compress: expected auto, zstd, zstd:LEVEL (-7..19) or none, not '" + text + "'");
}

}  // namespace gmem::tools
