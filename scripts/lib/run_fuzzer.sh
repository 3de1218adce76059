#!/usr/bin/env bash
# run_fuzzer.sh EXE SECONDS SEED_DIR WORK_DIR [LIBFUZZER_ARGS...]
#
# Runs one libFuzzer target for SECONDS on a copy of its seed corpus and prints libFuzzer's own
# summary. Used by the ctest tests of fuzz/CMakeLists.txt and by scripts/fuzz.
#
# SEED_DIR (fuzz/corpus/<name>/ in the source tree; may be absent) is only read: it is copied
# to WORK_DIR/seed first. New inputs go to WORK_DIR/corpus (kept between runs, so coverage
# accumulates), crash/leak/timeout inputs to WORK_DIR/artifacts/ (kept), the full log to
# WORK_DIR/fuzz.log. Exits 0 when libFuzzer finished its time without finding anything, else
# non-zero after printing the end of the log (the sanitizer report) and the artifacts.
set -euo pipefail

if (($# < 4)); then
  echo "usage: $0 EXE SECONDS SEED_DIR WORK_DIR [LIBFUZZER_ARGS...]" >&2
  exit 2
fi
exe="$(readlink -f "$1")"
seconds="$2"
seed_src="$3"
work="$4"
shift 4
name="$(basename "$exe")"

[[ -x "$exe" ]] || { echo "run_fuzzer: no executable $1" >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "run_fuzzer: SECONDS must be a number: $seconds" >&2; exit 2; }

mkdir -p "$work"
work="$(readlink -f "$work")"
rm -rf "$work/seed"
mkdir -p "$work/seed" "$work/corpus" "$work/artifacts"
if [[ -d "$seed_src" ]]; then
  cp -R "$seed_src/." "$work/seed/"
  chmod -R u+w "$work/seed"
fi
log="$work/fuzz.log"

# Symbolized reports need llvm-symbolizer; Debian installs it versioned, outside PATH.
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]] && ! command -v llvm-symbolizer >/dev/null 2>&1; then
  for s in /usr/lib/llvm-*/bin/llvm-symbolizer; do
    [[ -x "$s" ]] && export ASAN_SYMBOLIZER_PATH="$s" && break
  done
fi
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

nseeds="$(find "$work/seed" -type f | wc -l)"
ncorpus="$(find "$work/corpus" -type f | wc -l)"
echo "fuzz $name: ${seconds}s, $nseeds seed inputs, $ncorpus inputs kept from earlier runs"
echo "  work dir: $work"

cd "$work"
touch "$work/.started"
set +e
"$exe" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$@" "$work/corpus" "$work/seed" >"$log" 2>&1
rc=$?
set -e

if ((rc == 0)); then
  # libFuzzer's own summary: start-up, the last status line, the final stats.
  grep -E '^(INFO: Seed|INFO: .* files found in|INFO: seed corpus|#[0-9]+[[:space:]]+(INITED|DONE))|^Done [0-9]+ runs|^stat::' \
    "$log" | sed 's/^/  /' || true
  echo "fuzz $name: OK (no crash in ${seconds}s; corpus now $(find "$work/corpus" -type f | wc -l) inputs)"
  exit 0
fi

echo "---- last 150 lines of $log ----"
tail -n 150 "$log"
echo "----"
artifacts="$(find "$work/artifacts" -type f -newer "$work/.started")"
if [[ -n "$artifacts" ]]; then
  echo "fuzz $name: FAILED (exit $rc); reproduce with:"
  while IFS= read -r a; do
    echo "  $exe $a"
  done <<<"$artifacts"
else
  echo "fuzz $name: FAILED (exit $rc)"
fi
exit "$rc"
