#include "tools/man_page.h"

#include <CLI/CLI.hpp>

#include "tests/testutil/testutil.h"

namespace gmem::tools {
namespace {

using ::gmem::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kProse =
    "# NAME\nmove things\n"
    "# DESCRIPTION\n`tool` moves things.\n"
    "# COMMAND send\nMore about send.\n"
    "# SEE ALSO\n`other`(1)\n"
    "# EXAMPLES\n    tool send --to x\n";

// A tool shaped like gmem-migrate: a global flag, subcommands with required, defaulted,
// validated, positional and hidden options.
struct TestApp {
  CLI::App app{"tool: test"};
  bool quiet = false, force = false, secret = false;
  std::string to, file;
  int channels = 2;
  CLI::App* send;
  CLI::App* inspect;

  TestApp() {
    app.require_subcommand(1);
    app.add_flag("-q,--quiet", quiet, "print nothing");
    send = app.add_subcommand("send", "send the VM");
    send->add_option("--to", to, "where to")->required();
    send->add_option("--channels", channels, "connections")->default_val(2)->check(CLI::Range(1, 16));
    send->add_flag("--force", force, "replace `it`");
    send->add_flag("--secret", secret, "hidden")->group("");
    inspect = app.add_subcommand("inspect", "show an image");
    inspect->add_option("FILE", file, "the image")->required();
    inspect->fallthrough();
  }
};

TEST(ManPageTest, ListsEveryVisibleOptionOfEachCommandWithItsNotes) {
  TestApp t;
  auto page = ManPage(t.app, "tool", kProse);
  ASSERT_OK(page);
  EXPECT_THAT(*page, HasSubstr(".TH TOOL 1 \"\" \"gmemkit " + std::string(ManualVersion()) + "\" \"gmemkit manual\"\n"));
  EXPECT_THAT(*page, HasSubstr(".SH NAME\ntool \\- move things\n"));
  EXPECT_THAT(*page, HasSubstr(".SH OPTIONS\n.TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n"));
  EXPECT_THAT(*page, HasSubstr(".TP\n\\fB\\-q\\fR, \\fB\\-\\-quiet\\fR\nprint nothing\n"));
  EXPECT_THAT(*page, HasSubstr(".SS \"tool send\"\n.PP\nsend the VM\n.PP\nMore about send.\n"));
  EXPECT_THAT(*page, HasSubstr(".TP\n\\fB\\-\\-to\\fR \\fITEXT\\fR\nwhere to\n(required)\n"));
  EXPECT_THAT(*page, HasSubstr(".TP\n\\fB\\-\\-channels\\fR \\fIINT\\fR\nconnections\n(default: 2; INT in [1 \\- 16])\n"));
  EXPECT_THAT(*page, HasSubstr(".TP\n\\fB\\-\\-force\\fR\nreplace \\fBit\\fR\n"));
  EXPECT_THAT(*page, Not(HasSubstr("secret")));
  EXPECT_THAT(*page, HasSubstr(".SS \"tool inspect\"\n.PP\nshow an image\n.PP\nThe options of \\fBtool\\fR may follow"));
  EXPECT_THAT(*page, HasSubstr(".TP\n\\fIFILE\\fR\nthe image\n(required)\n"));
}

TEST(ManPageTest, SynopsisNamesEachCommandWithItsRequiredArguments) {
  TestApp t;
  auto page = ManPage(t.app, "tool", kProse);
  ASSERT_OK(page);
  EXPECT_THAT(*page, HasSubstr(".SH SYNOPSIS\n"
                               ".SY \"tool\"\n.RI [ options ]\n.B \"send\"\n\\fB\\-\\-to\\fR \\fITEXT\\fR\n.RI [ options ]\n.YS\n"
                               ".SY \"tool\"\n.RI [ options ]\n.B \"inspect\"\n.RI [ options ]\n\\fIFILE\\fR\n.YS\n"
                               ".SH DESCRIPTION\n"));
}

TEST(ManPageTest, SectionsComeInManPagesOrderWithTheToolsExitCodes) {
  TestApp t;
  auto page = ManPage(t.app, "gmem-soak", kProse);
  ASSERT_OK(page);
  size_t last = 0;
  for (std::string_view heading : {".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH COMMANDS",
                                   ".SH \"EXIT STATUS\"", ".SH \"EXAMPLES\"", ".SH \"SEE ALSO\""}) {
    size_t at = page->find(heading);
    ASSERT_NE(at, std::string::npos) << heading;
    EXPECT_GT(at, last) << heading;
    last = at;
  }
  EXPECT_THAT(*page, HasSubstr(".TP\n.B 11\n"));                 // gmem-soak's own code
  EXPECT_THAT(*page, Not(HasSubstr(".TP\n.B 10\n")));            // gmem-snapshot's
  EXPECT_THAT(*page, Not(HasSubstr("\n\n")));                    // man(7): no blank lines
}

TEST(ManPageTest, RefusesProseThatDoesNotFitTheCommandLine) {
  TestApp t;
  EXPECT_THAT(ManPage(t.app, "tool", "# DESCRIPTION\nx\n").status(), StatusIs(Code::kInvalidArgument, "no NAME"));
  EXPECT_THAT(ManPage(t.app, "tool", "# NAME\nx\n").status(), StatusIs(Code::kInvalidArgument, "no DESCRIPTION"));
  EXPECT_THAT(ManPage(t.app, "tool", "# NAME\nx\n# DESCRIPTION\ny\n# BUGS\nz\n").status(),
              StatusIs(Code::kInvalidArgument, "unknown section 'BUGS'"));
  EXPECT_THAT(ManPage(t.app, "tool", "# NAME\nx\n# NAME\nx\n# DESCRIPTION\ny\n").status(),
              StatusIs(Code::kInvalidArgument, "'NAME' twice"));
  EXPECT_THAT(ManPage(t.app, "tool", "# NAME\nx\n# DESCRIPTION\ny\n# COMMAND recv\nz\n").status(),
              StatusIs(Code::kInvalidArgument, "'recv', which is no command"));
}

TEST(ManPageTest, EveryToolHasItsProse) {
  for (std::string_view tool : {"gmem-migrate", "gmem-snapshot", "gmem-soak", "gmem-vmm"}) {
    EXPECT_THAT(std::string(ManualProse(tool)), HasSubstr("# NAME\n")) << tool;
  }
  EXPECT_TRUE(ManualProse("gmem-nothing").empty());
}

}  // namespace
}  // namespace gmem::tools
