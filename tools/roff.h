#pragma once
// Turning text into roff for the manual pages (man(7) macros): escaping, the inline markup the
// tools' help texts and tools/manual/*.txt share, and the block markup of those prose files.

#include <string>
#include <string_view>
#include <vector>

#include "base/expected.h"

namespace gmem::tools {

// `text` as roff text: backslashes escaped; a '-' that starts a word (an option, a negative
// number), and every '-' of a word that starts with one ("--parent-dir"), written as the minus
// sign \- so it can be copied and searched for, while hyphens inside words ("read-only") stay;
// a '.' or '\'' at the start of a line kept from being read as a request. No markup.
std::string RoffEscape(std::string_view text);

// RoffEscape plus inline markup: `code` in bold (every '-' in it a minus sign), *term* in
// italics. A '`' or '*' without its closing partner on the same line is kept as it is.
std::string RoffInline(std::string_view text);

// `text` as the argument of a macro, in double quotes.
std::string RoffQuoted(std::string_view text);

// One "# HEADING" section of a prose file; `body` is its markup, without the heading line.
struct ProseSection {
  std::string heading;
  std::string body;
};

// Splits a prose file into its sections. Text before the first heading is an error, as is a
// heading with nothing after "#".
Expected<std::vector<ProseSection>> SplitProse(std::string_view prose);

// Block markup to roff (never a blank line, which man(7) reads as a paragraph break):
//   text lines           a paragraph: the lines up to a blank line, filled together
//   "- item"             a bullet; the lines that follow, up to a blank line, continue it
//   ": term"             a tagged paragraph: the term, then the lines that follow, up to a
//                        blank line, as its body
//   4-space indent       after a blank line (or first): a literal example, kept as it is,
//                        blank lines inside included
//   blank line           ends a paragraph, item or tagged paragraph
// Inline markup (RoffInline) applies everywhere but in examples.
std::string RoffFromProse(std::string_view markup);

}  // namespace gmem::tools
