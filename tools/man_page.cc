#include "tools/man_page.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>

#include "tools/exit_codes.h"
#include "tools/roff.h"

namespace gmem::tools {
namespace {

// The prose sections a page may have after the generated ones, in man-pages(7) order.
constexpr std::array<std::string_view, 5> kTrailingSections = {"ENVIRONMENT", "FILES", "NOTES", "EXAMPLES",
                                                                "SEE ALSO"};
constexpr std::string_view kCommandPrefix = "COMMAND ";

// CLI11 hides options and subcommands whose group is empty from --help; so does the page.
bool Visible(const CLI::Option* opt) { return !opt->get_group().empty(); }
bool Visible(const CLI::App* app) { return !app->get_group().empty(); }

std::vector<const CLI::App*> VisibleSubcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return Visible(sub); });
}

std::vector<const CLI::Option*> VisibleOptions(const CLI::App& app) {
  return app.get_options([](const CLI::Option* opt) { return Visible(opt); });
}

// "TEXT" of "TEXT:FILE": the value's name; the validators follow the ':'. Empty for a flag.
std::string Metavar(const CLI::Option& opt) {
  std::string type = opt.get_type_name();
  std::string name = type.substr(0, type.find(':'));
  return name;
}

// The validators' descriptions, as --help appends them to the type ("INT in [1 - 16]").
std::vector<std::string> Validators(const CLI::Option& opt) {
  std::vector<std::string> out;
  std::string type = opt.get_type_name();
  std::string name = Metavar(opt);
  size_t start = type.find(':');
  while (start != std::string::npos) {
    size_t end = type.find(':', start + 1);
    std::string part = type.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
    if (!part.empty() && part != name) out.push_back(part);
    start = end;
  }
  return out;
}

// As CLI11's help formatter decides: a flag has no value to name.
bool TakesValue(const CLI::Option& opt) { return opt.get_type_size() != 0 && !opt.get_type_name().empty(); }

// "\fB\-q\fR, \fB\-\-quiet\fR \fITEXT\fR", or "\fIFILE\fR" for a positional argument.
std::string OptionTag(const CLI::Option& opt) {
  if (opt.get_positional() && !opt.nonpositional()) return "\\fI" + RoffEscape(opt.get_name(true, false)) + "\\fR";
  std::string tag;
  for (const std::string& s : opt.get_snames()) tag += (tag.empty() ? "" : ", ") + ("\\fB" + RoffEscape("-" + s) + "\\fR");
  for (const std::string& l : opt.get_lnames()) tag += (tag.empty() ? "" : ", ") + ("\\fB" + RoffEscape("--" + l) + "\\fR");
  if (TakesValue(opt)) tag += " \\fI" + RoffEscape(Metavar(opt)) + "\\fR";
  return tag;
}

std::vector<std::string> SortedNames(const std::set<CLI::Option*>& options) {
  std::vector<std::string> names;
  for (const CLI::Option* o : options) names.push_back(o->get_name());
  std::sort(names.begin(), names.end());
  return names;
}

// What --help shows beside the description: required, default, validators, exclusions.
std::string OptionNotes(const CLI::Option& opt) {
  std::vector<std::string> notes;
  if (opt.get_required()) notes.push_back("required");
  std::string fallback = opt.get_default_str();
  std::string description = opt.get_description();
  if (!fallback.empty() && description.find("default") == std::string::npos) notes.push_back("default: " + fallback);
  for (const std::string& v : Validators(opt)) notes.push_back(v);
  // By name: the sets order by address, which would make the page differ from run to run.
  for (std::string n : SortedNames(opt.get_excludes())) notes.push_back("not with " + n);
  for (std::string n : SortedNames(opt.get_needs())) notes.push_back("needs " + n);
  if (!opt.get_envname().empty()) notes.push_back("environment: " + opt.get_envname());
  std::string out;
  for (const std::string& n : notes) out += (out.empty() ? "" : "; ") + n;
  return out;
}

void WriteOptions(const CLI::App& app, std::string& out) {
  std::vector<const CLI::Option*> options = VisibleOptions(app);
  // Positional arguments first, as a synopsis reads them.
  std::stable_partition(options.begin(), options.end(),
                        [](const CLI::Option* o) { return o->get_positional() && !o->nonpositional(); });
  for (const CLI::Option* opt : options) {
    out += ".TP\n" + OptionTag(*opt) + "\n";
    if (!opt->get_description().empty()) out += RoffInline(opt->get_description()) + "\n";
    std::string notes = OptionNotes(*opt);
    if (!notes.empty()) out += "(" + RoffInline(notes) + ")\n";
  }
}

// One synopsis: the command path, then the required options and arguments, the rest as [options].
void WriteSynopsis(const std::vector<std::string>& path, const CLI::App& app, std::string& out) {
  out += ".SY " + RoffQuoted(path[0]) + "\n";
  for (size_t i = 1; i < path.size(); ++i) out += ".RI [ options ]\n.B " + RoffQuoted(path[i]) + "\n";
  std::string positionals;
  for (const CLI::Option* opt : VisibleOptions(app)) {
    if (opt->get_positional() && !opt->nonpositional()) {
      std::string name = RoffEscape(opt->get_name(true, false));
      positionals += opt->get_required() ? "\\fI" + name + "\\fR\n" : "[\\fI" + name + "\\fR]\n";
    } else if (opt->get_required()) {
      out += "\\fB" + RoffEscape(opt->get_name(false, false)) + "\\fR";
      out += TakesValue(*opt) ? " \\fI" + RoffEscape(Metavar(*opt)) + "\\fR\n" : "\n";
    }
  }
  out += ".RI [ options ]\n";
  out += positionals;
  if (!VisibleSubcommands(app).empty()) out += ".I command\n.RI [ options ]\n";
  out += ".YS\n";
}

std::string Joined(const std::vector<std::string>& path, std::string_view separator) {
  std::string out;
  for (const std::string& p : path) out += (out.empty() ? "" : std::string(separator)) + p;
  return out;
}

// The synopses of every leaf command under `app` (or of `app` itself when it has none).
void WriteSynopses(std::vector<std::string>& path, const CLI::App& app, std::string& out) {
  std::vector<const CLI::App*> subs = VisibleSubcommands(app);
  if (subs.empty() || !app.get_require_subcommand_min()) WriteSynopsis(path, app, out);
  for (const CLI::App* sub : subs) {
    path.push_back(sub->get_name());
    WriteSynopses(path, *sub, out);
    path.pop_back();
  }
}

// One ".SS" a subcommand (nested ones after their parent): what it does, its prose, its options.
void WriteCommands(std::vector<std::string>& path, const CLI::App& app, std::map<std::string, std::string>& prose,
                   std::string& out) {
  for (const CLI::App* sub : VisibleSubcommands(app)) {
    path.push_back(sub->get_name());
    std::vector<std::string> command(path.begin() + 1, path.end());
    out += ".SS " + RoffQuoted(Joined(path, " ")) + "\n";
    if (!sub->get_description().empty()) out += ".PP\n" + RoffInline(sub->get_description()) + "\n";
    auto text = prose.find(std::string(kCommandPrefix) + Joined(command, " "));
    if (text != prose.end()) {
      out += RoffFromProse(text->second);
      prose.erase(text);
    }
    if (sub->get_fallthrough()) {
      out += ".PP\nThe options of \\fB" + RoffEscape(Joined(std::vector<std::string>(path.begin(), path.end() - 1), " ")) +
             "\\fR may follow the command too.\n";
    }
    WriteOptions(*sub, out);
    WriteCommands(path, *sub, prose, out);
    path.pop_back();
  }
}

void WriteExitStatus(std::string_view tool, std::string& out) {
  out += ".SH \"EXIT STATUS\"\n";
  for (const ExitCodeDoc& doc : ExitCodeDocs()) {
    if (!doc.tool.empty() && doc.tool != tool) continue;
    out += ".TP\n.B " + std::to_string(doc.code) + "\n" + RoffInline(doc.meaning) + "\n";
  }
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Expected<std::string> ManPage(const CLI::App& app, std::string_view tool, std::string_view prose) {
  auto sections = SplitProse(prose);
  if (!sections.ok()) return sections.status().WithContext("the manual text of " + std::string(tool));
  std::map<std::string, std::string> text;
  for (ProseSection& s : *sections) {
    bool known = s.heading == "NAME" || s.heading == "DESCRIPTION" || s.heading.starts_with(kCommandPrefix) ||
                 std::find(kTrailingSections.begin(), kTrailingSections.end(), s.heading) != kTrailingSections.end();
    if (!known) return InvalidArgument("the manual text of " + std::string(tool) + ": unknown section '" + s.heading + "'");
    if (!text.emplace(s.heading, std::move(s.body)).second) {
      return InvalidArgument("the manual text of " + std::string(tool) + ": section '" + s.heading + "' twice");
    }
  }
  for (std::string_view required : {"NAME", "DESCRIPTION"}) {
    if (!text.contains(std::string(required))) {
      return InvalidArgument("the manual text of " + std::string(tool) + " has no " + std::string(required));
    }
  }
  std::string name = text.at("NAME");
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();

  std::string out = ".\\\" Generated by " + std::string(tool) + " --help-man from its command line and " +
                    "tools/manual/" + std::string(tool) + ".txt: do not edit.\n";
  out += ".TH " + Upper(tool) + " 1 \"\" " + RoffQuoted("gmemkit " + std::string(ManualVersion())) +
         " \"gmemkit manual\"\n";
  out += ".SH NAME\n" + RoffEscape(tool) + " \\- " + RoffEscape(name) + "\n";
  out += ".SH SYNOPSIS\n";
  std::vector<std::string> path{std::string(tool)};
  WriteSynopses(path, app, out);
  out += ".SH DESCRIPTION\n" + RoffFromProse(text.at("DESCRIPTION"));
  text.erase("NAME");
  text.erase("DESCRIPTION");
  out += ".SH OPTIONS\n";
  WriteOptions(app, out);
  if (!VisibleSubcommands(app).empty()) {
    out += ".SH COMMANDS\n";
    WriteCommands(path, app, text, out);
  }
  for (const auto& [heading, body] : text) {
    if (heading.starts_with(kCommandPrefix)) {
      return InvalidArgument("the manual text of " + std::string(tool) + " describes '" +
                             heading.substr(kCommandPrefix.size()) + "', which is no command of it");
    }
  }
  WriteExitStatus(tool, out);
  for (std::string_view heading : kTrailingSections) {
    auto section = text.find(std::string(heading));
    if (section == text.end()) continue;
    out += ".SH " + RoffQuoted(heading) + "\n" + RoffFromProse(section->second);
  }
  return out;
}

}  // namespace gmem::tools
