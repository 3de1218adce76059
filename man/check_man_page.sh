#!/usr/bin/env bash
# check_man_page.sh TOOL PAGE: the ctest check of one manual page (man/CMakeLists.txt).
#  1. PAGE is what `TOOL --help-man` prints now (the build wrote it from this binary);
#  2. groff renders it without a warning (-ww: every warning category);
#  3. its OPTIONS section lists exactly the options and arguments `TOOL --help` prints, its
#     COMMANDS section has one subsection a subcommand `TOOL --help` lists, and each subsection
#     lists exactly the options and arguments `TOOL SUB --help` prints (nested subcommands too);
#  4. each of those names is in the rendered text.
set -euo pipefail

tool="$1"
page="$2"
name="$(basename "$tool")"
failures=0

fail() {
  printf '%s: %s\n' "$page" "$*" >&2
  failures=$((failures + 1))
}

[[ -f "$page" ]] || { printf '%s: missing: build the "man" target first\n' "$page" >&2; exit 1; }

if ! diff -u "$page" <("$tool" --help-man) >/dev/null; then
  fail "differs from '$name --help-man': rebuild the \"man\" target"
fi

warnings="$(groff -man -Tutf8 -ww -z "$page" 2>&1 >/dev/null)"
[[ -z "$warnings" ]] || fail "groff warns: $warnings"
text="$(groff -man -Tascii -P-c -P-b -P-u -P-o "$page" 2>/dev/null)"

# The names in one part of --help ("Options:", "Positionals:" or "Subcommands:"), one a line:
# the first field of each entry, split at commas ("-q,--quiet").
help_names() {  # help_text part
  awk -v part="$2" '
    /^[^ ].*:$/ { in_part = ($0 == part); next }
    /^$/ { in_part = 0; next }
    in_part && /^  [^ ]/ { n = split($1, names, ","); for (i = 1; i <= n; ++i) print names[i] }
  ' <<<"$1"
}

# The tags of the .TP entries of the page between the line equal to $1 and the next .SH or .SS,
# without fonts and escapes; for an option tag the option names, for an argument its name.
page_names() {  # start_line
  awk -v start="$1" '
    $0 == start { inside = 1; next }
    inside && (/^\.SH/ || /^\.SS/) { exit }
    inside && tag { tag = 0
      gsub(/\\f[BIR]/, ""); gsub(/\\-/, "-"); gsub(/\\e/, "\\")
      n = split($0, parts, ", ")
      for (i = 1; i <= n; ++i) { split(parts[i], words, " "); print words[1] }
      next }
    inside && /^\.TP$/ { tag = 1 }
  ' "$page"
}

check_command() {  # command words after the tool, e.g. "" or "send"
  local words="$1" help_text expected listed label start
  # shellcheck disable=SC2086  # the words are the subcommand path
  help_text="$("$tool" $words --help)"
  label="$name${words:+ $words}"
  expected="$( (help_names "$help_text" "Options:"; help_names "$help_text" "Positionals:") | sort)"
  if [[ -z "$words" ]]; then start='.SH OPTIONS'; else start=".SS \"$label\""; fi
  if ! grep -qxF -- "$start" "$page"; then
    fail "no section '$start' for '$label'"
    return
  fi
  listed="$(page_names "$start" | sort)"
  if [[ "$expected" != "$listed" ]]; then
    fail "'$label': --help and the page disagree (< --help, > page):
$(diff <(printf '%s\n' "$expected") <(printf '%s\n' "$listed") | grep '^[<>]' || true)"
  fi
  local option
  while IFS= read -r option; do
    [[ -z "$option" ]] && continue
    grep -qF -- "$option" <<<"$text" || fail "'$label': '$option' is not in the rendered page"
  done <<<"$expected"
  local sub
  while IFS= read -r sub; do
    [[ -z "$sub" ]] && continue
    check_command "${words:+$words }$sub"
  done < <(help_names "$help_text" "Subcommands:")
  # And no subsection for a subcommand --help does not list.
  local pages_subs help_subs
  help_subs="$(help_names "$help_text" "Subcommands:" | sort)"
  pages_subs="$(sed -n "s/^\.SS \"$label \([^ ]*\)\"\$/\1/p" "$page" | sort)"
  [[ "$help_subs" == "$pages_subs" ]] ||
    fail "'$label': subcommands in --help (${help_subs//$'\n'/ }) and in the page (${pages_subs//$'\n'/ }) differ"
}

check_command ""
if ((failures > 0)); then
  exit 1
fi
printf '%s: renders cleanly and matches --help\n' "$page"
