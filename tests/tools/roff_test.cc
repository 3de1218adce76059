#include "tools/roff.h"

#include "tests/testutil/testutil.h"

namespace gmem::tools {
namespace {

using ::gmem::testing::StatusIs;

TEST(RoffEscapeTest, EscapesBackslashesOptionDashesAndLeadingControlCharacters) {
  EXPECT_EQ(RoffEscape("a\\b"), "a\\eb");
  EXPECT_EQ(RoffEscape("--key-file -q -7..19 (-x) zstd:-7"), "\\-\\-key\\-file \\-q \\-7..19 (\\-x) zstd:\\-7");
  EXPECT_EQ(RoffEscape("64-bit read-only"), "64-bit read-only");  // hyphens inside words stay
  EXPECT_EQ(RoffEscape("--parent-dir x-y"), "\\-\\-parent\\-dir x-y");  // but not inside an option
  EXPECT_EQ(RoffEscape(".hidden\n'quote\nplain"), "\\&.hidden\n\\&'quote\nplain");
}

TEST(RoffInlineTest, BacktickIsBoldStarIsItalicAndUnpairedMarksStay) {
  EXPECT_EQ(RoffInline("run `--to URI` to *HOST*"), "run \\fB\\-\\-to URI\\fR to \\fIHOST\\fR");
  EXPECT_EQ(RoffInline("/tmp/gmem-soak-* and a ` alone"), "/tmp/gmem-soak-* and a ` alone");
  EXPECT_EQ(RoffInline("2 * 3 * 4"), "2 * 3 * 4");  // a '*' before a space opens nothing
  EXPECT_EQ(RoffInline("`gmem-vmm run` or gmem-vmm"), "\\fBgmem\\-vmm run\\fR or gmem-vmm");  // code: minus signs
  EXPECT_EQ(RoffInline("`.x` first"), "\\fB.x\\fR first");
}

TEST(RoffQuotedTest, QuotesAndEscapesAMacroArgument) {
  EXPECT_EQ(RoffQuoted("gmem-migrate send"), "\"gmem-migrate send\"");
  EXPECT_EQ(RoffQuoted("say \"x\" --y"), "\"say \\(dqx\\(dq \\-\\-y\"");
}

TEST(SplitProseTest, SplitsAtHeadingsAndRefusesTextBeforeTheFirst) {
  auto sections = SplitProse("\n# NAME\nx\n#  COMMAND send\na\n\nb\n");
  ASSERT_OK(sections);
  ASSERT_EQ(sections->size(), 2u);
  EXPECT_EQ((*sections)[0].heading, "NAME");
  EXPECT_EQ((*sections)[0].body, "x\n");
  EXPECT_EQ((*sections)[1].heading, "COMMAND send");
  EXPECT_EQ((*sections)[1].body, "a\n\nb\n");
  EXPECT_THAT(SplitProse("loose\n# NAME\n").status(), StatusIs(Code::kInvalidArgument, "before the first"));
  EXPECT_THAT(SplitProse("# NAME\n#\n").status(), StatusIs(Code::kInvalidArgument, "without a heading"));
}

TEST(RoffFromProseTest, ParagraphsBulletsTermsAndExamples) {
  std::string markup =
      "First line\nsecond line.\n"
      "\n"
      "- one\n  goes on\n- two\n"
      "\n"
      ": *KEY*\nthe key\n"
      "\n"
      "    gmem-migrate keygen --out k\n"
      "\n"
      "    .hidden \\n\n"
      "after\n";
  EXPECT_EQ(RoffFromProse(markup),
            ".PP\nFirst line\nsecond line.\n"
            ".IP \\(bu 2\none\ngoes on\n"
            ".IP \\(bu 2\ntwo\n"
            ".TP\n\\fIKEY\\fR\nthe key\n"
            ".PP\n.RS 4\n.EX\ngmem\\-migrate keygen \\-\\-out k\n\\&\n\\&.hidden \\en\n.EE\n.RE\n"
            ".PP\nafter\n");
}

TEST(RoffFromProseTest, AnIndentedLineGoesOnWithItsParagraphAndNeverWritesABlankLine) {
  EXPECT_EQ(RoffFromProse("text\n    more\n\n\n"), ".PP\ntext\nmore\n");
}

}  // namespace
}  // namespace gmem::tools
