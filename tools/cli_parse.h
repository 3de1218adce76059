#pragma once
// Flag parsing shared by the tools: CLI11's exceptions stay here.

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "format/wire.h"

namespace CLI {
class App;
}

namespace gmem::tools {

// The one argument that makes ParseArgs print the manual page (tools/man_page.h) instead: not a
// CLI11 flag, so --help does not list it; the build runs it to write build/man/<tool>.1.
inline constexpr std::string_view kHelpManFlag = "--help-man";

// Parses argv into `app` (adding --version). Returns nullopt when the command should run; otherwise
// the exit code to return at once: 0 after --help or --version (printed) or kHelpManFlag alone
// (the page printed), kExitUsage
// after a bad flag, reported as one line "<tool>: <problem> (see --help)".
std::optional<int> ParseArgs(CLI::App& app, int argc, char** argv, std::string_view tool);

// --compress: "zstd" (level unchanged), "zstd:LEVEL" (-7..19) or "none"; kInvalidArgument
// otherwise, naming the flag.
// --compress: auto (zstd level 1, each batch compressed only where it pays: `adaptive` true),
// zstd, zstd:LEVEL or none. Changes nothing on error.
Status ParseCompress(const std::string& text, format::Compression& compression, int& zstd_level, bool& adaptive);

}  // namespace gmem::tools
