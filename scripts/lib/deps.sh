# shellcheck shell=bash
# Shared by scripts/test, scripts/fuzz and scripts/check-fresh-debian: the Debian packages gmemkit
# builds with, and the idempotent installer. Source it; it defines variables and functions only.
# A new find_package()/pkg_check_modules()/find_program() in any CMakeLists.txt adds its package
# to GMEM_PACKAGES here (scripts/check-fresh-debian --fresh proves the list complete).
#
# gmem_ensure_packages asks dpkg-query first and touches apt only when something is missing,
# so on a machine that has everything it runs no apt command at all.

# The LLVM that Debian bookworm's `clang` package points at. libclang-rt-N-dev holds the libFuzzer
# runtime (libclang_rt.fuzzer-x86_64.a) and the clang sanitizer runtimes; llvm-N holds
# llvm-symbolizer, without which ASan/libFuzzer crash reports have no function names or lines.
GMEM_LLVM_VERSION="${GMEM_LLVM_VERSION:-14}"

GMEM_PACKAGES=(
  # toolchain and build
  g++ cmake ninja-build pkg-config
  # libraries (CMakeLists.txt, DESIGN.md "Layers")
  libzstd-dev libssl-dev libboost-iostreams-dev libcli11-dev libxxhash-dev nlohmann-json3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # fuzz preset: clang, the libFuzzer/sanitizer runtimes, a symbolizer
  clang "libclang-rt-${GMEM_LLVM_VERSION}-dev" "llvm-${GMEM_LLVM_VERSION}"
  # command-line tools the tests and scripts call (groff: the manual pages' check renders them);
  # CA roots for fetching over https
  zstd groff-base ca-certificates
  # gmem-soak's test network: ip, tc and ss (iproute2), packet loss rules (nft)
  iproute2 nftables
)

gmem_heading() {
  printf '== %s\n' "$*"
}

gmem_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Prints the packages of "$@" that dpkg does not list as installed, one a line.
gmem_missing_packages() {
  local pkg status
  for pkg in "$@"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != installed ]]; then
      printf '%s\n' "$pkg"
    fi
  done
}

# Runs "$@" as root: directly when we are root, else through sudo when there is one.
gmem_as_root() {
  if [[ "$(id -u)" == 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    gmem_die "need root to run: $* (run as root, or install sudo)"
  fi
}

# Installs whatever of GMEM_PACKAGES is missing, quietly. No apt command runs when nothing is
# missing. On failure prints apt's output and exits.
gmem_ensure_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    gmem_heading "packages: no dpkg here (not Debian?); skipping the install step"
    return 0
  fi
  local -a missing
  mapfile -t missing < <(gmem_missing_packages "${GMEM_PACKAGES[@]}")
  if ((${#missing[@]} == 0)); then
    gmem_heading "packages: all ${#GMEM_PACKAGES[@]} present"
    return 0
  fi
  gmem_heading "installing packages: ${missing[*]}"
  local log
  log="$(mktemp "${TMPDIR:-/tmp}/gmem-apt.XXXXXX")"
  # Fail fast instead of hanging on a held dpkg lock (another apt running).
  local -a apt_opts=(-o DPkg::Lock::Timeout=300)
  if ! gmem_as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get "${apt_opts[@]}" update -qq >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    gmem_die "apt-get update failed"
  fi
  if ! gmem_as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" \
      >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    gmem_die "apt-get install failed: ${missing[*]}"
  fi
  rm -f "$log"
  mapfile -t missing < <(gmem_missing_packages "${GMEM_PACKAGES[@]}")
  if ((${#missing[@]} != 0)); then
    gmem_die "still missing after apt-get install: ${missing[*]}"
  fi
}

# Seconds since $1 (a value of $SECONDS), as "12s" or "3m05s".
gmem_elapsed() {
  local s=$((SECONDS - $1))
  if ((s >= 60)); then
    printf '%dm%02ds' $((s / 60)) $((s % 60))
  else
    printf '%ds' "$s"
  fi
}

# The fuzz targets: the basenames of fuzz/*_fuzz.cc, one a line. Run from the repo root.
gmem_fuzz_targets() {
  local f
  for f in fuzz/*_fuzz.cc; do
    [[ -e "$f" ]] || continue
    f="${f##*/}"
    printf '%s\n' "${f%.cc}"
  done
}

# Number of parallel build jobs: GMEM_JOBS, else the CPUs we may use.
gmem_jobs() {
  printf '%s\n' "${GMEM_JOBS:-$(nproc 2>/dev/null || echo 2)}"
}
