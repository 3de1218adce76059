#pragma once
// A tool's manual page (man(7) roff), generated from the CLI::App it parses with, so the page
// lists exactly the subcommands, options, defaults and required arguments --help shows, plus the
// prose of tools/manual/<tool>.txt (compiled in) and the exit codes of tools/exit_codes.h.
// `<tool> --help-man` prints it (ParseArgs); man/CMakeLists.txt writes it to build/man/<tool>.1.

#include <string>
#include <string_view>

#include "base/expected.h"

namespace CLI {
class App;
}

namespace gmem::tools {

// The text of tools/manual/<tool>.txt, or empty when there is none (generated at build time by
// tools/manual/embed.cmake).
std::string_view ManualProse(std::string_view tool);

// The version the pages name (the CMake project's).
std::string_view ManualVersion();

// The page of `tool`, whose command line `app` defines. `prose` holds "# HEADING" sections in
// the markup of RoffFromProse (tools/roff.h):
//   NAME          required: the one-line summary after "<tool> \-"
//   DESCRIPTION   required
//   COMMAND <sub> optional, one a subcommand ("send", or "a b" nested): more about it, printed
//                 before its options
//   ENVIRONMENT, FILES, NOTES, EXAMPLES, SEE ALSO   optional, printed in this order
// SYNOPSIS, OPTIONS, COMMANDS and EXIT STATUS are generated. kInvalidArgument when the prose
// lacks NAME or DESCRIPTION, repeats a section, has one of another name, or describes a
// subcommand `app` does not have (so a renamed command cannot leave stale text behind).
Expected<std::string> ManPage(const CLI::App& app, std::string_view tool, std::string_view prose);

}  // namespace gmem::tools
