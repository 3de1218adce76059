#include "tools/roff.h"

#include <cctype>
#include <utility>

namespace gmem::tools {
namespace {

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Escapes the characters of one line into `out`, remembering what came before: a backslash
// becomes \e, and a '-' that a reader would copy (an option, a negative number, anything in
// code) becomes the minus sign \-, while a hyphen inside a word ("read-only") stays one.
class Escaper {
 public:
  explicit Escaper(std::string& out) : out_(out) {}

  // In code (`code`, examples) every '-' is a minus sign.
  void set_code(bool code) { code_ = code; }

  void Put(char c) {
    if (c == '\\') {
      out_ += "\\e";
    } else if (c == '-' && (code_ || dash_word_ || !IsWordChar(prev_))) {
      out_ += "\\-";
      dash_word_ = true;  // "--parent-dir": the '-' inside an option is a minus sign too
    } else {
      out_ += c;
    }
    if (!IsWordChar(c) && c != '-') dash_word_ = false;
    prev_ = c;
  }
  void Put(std::string_view text) {
    for (char c : text) Put(c);
  }

 private:
  std::string& out_;
  bool code_ = false;
  bool dash_word_ = false;  // inside a word that began with '-'
  char prev_ = 0;           // 0 at the start of the line
};

// A roff text line must not start with a control character ('.' or '\'').
std::string GuardLine(std::string line) {
  if (!line.empty() && (line[0] == '.' || line[0] == '\'')) line.insert(0, "\\&");
  return line;
}

std::string EscapeLine(std::string_view line, bool code) {
  std::string out;
  Escaper escaper(out);
  escaper.set_code(code);
  escaper.Put(line);
  return out;
}

std::string InlineLine(std::string_view line) {
  std::string out;
  Escaper escaper(out);
  size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == '`' || (c == '*' && i + 1 < line.size() && line[i + 1] != ' ' && line[i + 1] != '*')) {
      size_t close = line.find(c, i + 1);
      bool italic_ok = c == '`' || (close != std::string_view::npos && line[close - 1] != ' ');
      if (close != std::string_view::npos && close > i + 1 && italic_ok) {
        out += c == '`' ? "\\fB" : "\\fI";
        escaper.set_code(c == '`');
        escaper.Put(line.substr(i + 1, close - i - 1));
        escaper.set_code(false);
        out += "\\fR";
        i = close + 1;
        continue;
      }
    }
    escaper.Put(c);
    ++i;
  }
  return GuardLine(std::move(out));
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  return lines;
}

bool IsBlank(std::string_view line) { return line.find_first_not_of(" \t") == std::string_view::npos; }

std::string_view TrimLeft(std::string_view line) {
  size_t start = line.find_first_not_of(" \t");
  return start == std::string_view::npos ? std::string_view() : line.substr(start);
}

}  // namespace

std::string RoffEscape(std::string_view text) {
  std::string out;
  bool first = true;
  for (std::string_view line : Lines(text)) {
    if (!std::exchange(first, false)) out += '\n';
    out += GuardLine(EscapeLine(line, false));
  }
  return out;
}

std::string RoffInline(std::string_view text) {
  std::string out;
  bool first = true;
  for (std::string_view line : Lines(text)) {
    if (!std::exchange(first, false)) out += '\n';
    out += InlineLine(line);
  }
  return out;
}

std::string RoffQuoted(std::string_view text) {
  std::string out = "\"";
  Escaper escaper(out);
  for (char c : text) {
    if (c == '"') {
      out += "\\(dq";
    } else {
      escaper.Put(c);
    }
  }
  return out + "\"";
}

Expected<std::vector<ProseSection>> SplitProse(std::string_view prose) {
  std::vector<ProseSection> sections;
  for (std::string_view line : Lines(prose)) {
    if (line.starts_with("#")) {
      std::string_view heading = TrimLeft(line.substr(1));
      if (heading.empty()) return InvalidArgument("a '#' line without a heading");
      sections.push_back({std::string(heading), {}});
      continue;
    }
    if (sections.empty()) {
      if (IsBlank(line)) continue;
      return InvalidArgument("text before the first '# HEADING': '" + std::string(line) + "'");
    }
    sections.back().body.append(line).append("\n");
  }
  return sections;
}

std::string RoffFromProse(std::string_view markup) {
  enum class Block { kNone, kParagraph, kItem, kTagged, kExample };
  Block block = Block::kNone;
  std::string out;
  size_t pending_blank_lines = 0;  // blank lines inside an example, written if it goes on
  auto end_block = [&] {
    if (block == Block::kExample) out += ".EE\n.RE\n";
    block = Block::kNone;
    pending_blank_lines = 0;
  };
  for (std::string_view line : Lines(markup)) {
    if (IsBlank(line)) {
      if (block == Block::kExample) {
        ++pending_blank_lines;
      } else {
        end_block();
      }
      continue;
    }
    // An indented line starts an example only where no paragraph, item or term goes on.
    if (line.starts_with("    ") && (block == Block::kNone || block == Block::kExample)) {
      if (block == Block::kNone) {
        out += ".PP\n.RS 4\n.EX\n";
        block = Block::kExample;
      }
      for (; pending_blank_lines > 0; --pending_blank_lines) out += "\\&\n";
      out += GuardLine(EscapeLine(line.substr(4), true)) + "\n";
      continue;
    }
    if (block == Block::kExample) end_block();
    if (line.starts_with("- ")) {
      end_block();
      out += ".IP \\(bu 2\n" + InlineLine(TrimLeft(line.substr(2))) + "\n";
      block = Block::kItem;
      continue;
    }
    if (line.starts_with(": ")) {
      end_block();
      out += ".TP\n" + InlineLine(TrimLeft(line.substr(2))) + "\n";
      block = Block::kTagged;
      continue;
    }
    if (block == Block::kNone) {
      out += ".PP\n";
      block = Block::kParagraph;
    }
    out += InlineLine(TrimLeft(line)) + "\n";
  }
  end_block();
  return out;
}

}  // namespace gmem::tools
