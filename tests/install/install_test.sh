#!/usr/bin/env bash
# tests/install/install_test.sh tree|find_package|pkg_config — run by ctest (CMakeLists.txt beside
# this file sets the GMEM_INSTALL_* environment). Exits non-zero, saying why, on the first thing
# that is not as a consumer of an installed gmemkit needs it.
#   tree          cmake --install the build into a fresh prefix; check the tools, the static and
#                 the shared library (file name, soname, symlinks), the headers (every quoted
#                 include of an installed header is installed too), the CMake and pkg-config files
#   find_package  configure, build and run consumer/ with find_package(gmemkit), once against
#                 libgmemkit.so and once against libgmemkit.a (gmemkit_USE_STATIC_LIBS)
#   pkg_config    compile consumer/main.cc with pkg-config --cflags, link it with --libs
#                 (libgmemkit.so) and with --static --libs (libgmemkit.a), run both; the same
#                 with consumer/c_consumer.c, the C API from a C compiler
set -euo pipefail

build="$GMEM_INSTALL_BUILD_DIR"
work="$GMEM_INSTALL_WORK_DIR"
prefix="$work/prefix"
libdir="$prefix/$GMEM_INSTALL_LIBDIR"
version="$GMEM_INSTALL_VERSION"
soname="libgmemkit.so.$GMEM_INSTALL_SOVERSION"
read -r -a cxxflags <<<"$GMEM_INSTALL_CXXFLAGS"
read -r -a ldflags <<<"$GMEM_INSTALL_LDFLAGS"

fail() {
  printf 'install_test %s: %s\n' "$step" "$*" >&2
  exit 1
}

# needed BINARY: the DT_NEEDED entries of an ELF file, one a line.
needed() {
  readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

# run_consumer BINARY LINKAGE: runs it on a fresh image path; checks its output and that it
# loads libgmemkit.so (shared) or does not need it at all (static).
run_consumer() {
  local bin="$1" linkage="$2" deps out
  deps="$(needed "$bin")"
  if [[ "$linkage" == shared ]]; then
    grep -qx "$soname" <<<"$deps" || fail "$bin does not need $soname: ${deps//$'\n'/ }"
  else
    ! grep -q '^libgmemkit' <<<"$deps" || fail "$bin needs libgmemkit though linked to libgmemkit.a"
  fi
  rm -f "$bin.img"
  out="$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$bin" "$bin.img")" ||
    fail "$bin exited $?"
  printf '%s (%s): %s\n' "$bin" "$linkage" "$out"
  grep -qx "gmemkit $version (headers $version)" <<<"$out" || fail "$bin did not print version $version"
  grep -q 'read back intact' <<<"$out" || fail "$bin did not read its image back"
}

step_tree() {
  rm -rf "$work"
  mkdir -p "$work"
  "$GMEM_INSTALL_CMAKE" --install "$build" --prefix "$prefix" >"$work/install.log" ||
    fail "cmake --install failed: $(tail -5 "$work/install.log")"

  local tool
  for tool in gmem-migrate gmem-snapshot gmem-soak gmem-vmm; do
    [[ -x "$prefix/bin/$tool" ]] || fail "bin/$tool is not installed"
  done

  [[ -f "$libdir/libgmemkit.a" ]] || fail "libgmemkit.a is not installed"
  [[ -f "$libdir/libgmemkit.so.$version" && ! -L "$libdir/libgmemkit.so.$version" ]] ||
    fail "libgmemkit.so.$version is not installed as a file"
  [[ "$(readlink "$libdir/$soname")" == "libgmemkit.so.$version" ]] || fail "$soname is not a link to libgmemkit.so.$version"
  [[ "$(readlink "$libdir/libgmemkit.so")" == "$soname" ]] || fail "libgmemkit.so is not a link to $soname"
  local got
  got="$(readelf -d "$libdir/libgmemkit.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
  [[ "$got" == "$soname" ]] || fail "libgmemkit.so.$version has soname '$got', not '$soname'"
  # Both hold the whole library: a symbol of the first and of the last layer.
  local sym
  for sym in _ZN4gmem20LibraryVersionStringEv _ZN4gmem8snapshot9SummarizeERNS_10ByteSourceE gmemkit_version; do
    nm -D --defined-only "$libdir/libgmemkit.so.$version" | grep " T $sym\$" >/dev/null || fail "libgmemkit.so lacks $sym"
    nm --defined-only "$libdir/libgmemkit.a" 2>/dev/null | grep " T $sym\$" >/dev/null || fail "libgmemkit.a lacks $sym"
  done

  local inc="$prefix/include/gmemkit"
  [[ -f "$inc/version.h" ]] || fail "include/gmemkit/version.h is not installed"
  [[ -f "$inc/gmemkit.h" && ! -e "$inc/capi" ]] || fail "the C API is not installed as include/gmemkit/gmemkit.h alone"
  grep -q "^#define GMEMKIT_VERSION_STRING \"$version\"\$" "$inc/version.h" || fail "version.h does not say $version"
  # Every header the installed ones include in quotes is installed too (relative to include/gmemkit/).
  local header included missing=()
  while IFS= read -r header; do
    while IFS= read -r included; do
      [[ -f "$inc/$included" ]] || missing+=("${header#"$inc"/} includes \"$included\"")
    done < <(sed -n 's/^#include "\(.*\)"/\1/p' "$header")
  done < <(find "$inc" -name '*.h')
  ((${#missing[@]} == 0)) || fail "not installed: ${missing[*]}"
  [[ -f "$inc/format/image_writer.h" && -f "$inc/snapshot/save.h" ]] || fail "layer headers are not installed"

  local f
  for f in cmake/gmemkit/gmemkitConfig.cmake cmake/gmemkit/gmemkitConfigVersion.cmake pkgconfig/gmemkit.pc; do
    [[ -f "$libdir/$f" ]] || fail "$GMEM_INSTALL_LIBDIR/$f is not installed"
  done
  grep -qx "prefix=$prefix" "$libdir/pkgconfig/gmemkit.pc" || fail "gmemkit.pc does not name the prefix installed to"
  echo "installed into $prefix: tools, libgmemkit.a, libgmemkit.so.$version ($soname), headers, CMake package, gmemkit.pc"
}

# cmake_consumer NAME ARGS...: configures consumer/ into $work/NAME with ARGS.
cmake_consumer() {
  local name="$1"
  shift
  rm -rf "${work:?}/$name"
  "$GMEM_INSTALL_CMAKE" -S "$GMEM_INSTALL_CONSUMER" -B "$work/$name" -G "$GMEM_INSTALL_GENERATOR" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$GMEM_INSTALL_CXX" \
    -DCMAKE_CXX_FLAGS="$GMEM_INSTALL_CXXFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$GMEM_INSTALL_LDFLAGS" "$@" \
    >"$work/$name.log" 2>&1
}

step_find_package() {
  [[ -d "$prefix" ]] || fail "nothing installed (install.tree runs first)"
  # gmemkitConfigVersion.cmake turns away a newer minor version than the one installed.
  local major minor newer
  IFS=. read -r major minor _ <<<"$version"
  newer="$major.$((minor + 1))"
  ! cmake_consumer cmake-newer-version -DGMEMKIT_WANTED_VERSION="$newer" ||
    fail "find_package(gmemkit $newer) accepted version $version"
  grep -q "gmemkitConfig.cmake, version: $version" "$work/cmake-newer-version.log" ||
    fail "find_package(gmemkit $newer) failed for another reason: $(tail -20 "$work/cmake-newer-version.log")"

  local linkage static
  for linkage in shared static; do
    static=OFF
    [[ "$linkage" == static ]] && static=ON
    cmake_consumer "cmake-$linkage" -DGMEMKIT_WANTED_VERSION="$version" -Dgmemkit_USE_STATIC_LIBS="$static" ||
      fail "configuring the consumer ($linkage) failed: $(tail -20 "$work/cmake-$linkage.log")"
    "$GMEM_INSTALL_CMAKE" --build "$work/cmake-$linkage" >>"$work/cmake-$linkage.log" 2>&1 ||
      fail "building the consumer ($linkage) failed: $(tail -30 "$work/cmake-$linkage.log")"
    run_consumer "$work/cmake-$linkage/consumer" "$linkage"
  done
}

step_pkg_config() {
  [[ -d "$prefix" ]] || fail "nothing installed (install.tree runs first)"
  export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  local got cflags libs static_libs
  got="$(pkg-config --modversion gmemkit)" || fail "pkg-config does not find gmemkit"
  [[ "$got" == "$version" ]] || fail "pkg-config says version $got, not $version"
  read -r -a cflags <<<"$(pkg-config --cflags gmemkit)"
  read -r -a libs <<<"$(pkg-config --libs gmemkit)"
  # Static: libgmemkit.a by path, then what Libs.private and Requires.private add (the system
  # libraries as the system has them: Debian's libxxhash.a lacks the dispatch functions that
  # libxxhash.so has), so a dependency missing from the .pc shows as an undefined symbol.
  read -r -a static_libs <<<"$(pkg-config --static --libs gmemkit)"
  local l static_deps=("$libdir/libgmemkit.a")
  for l in "${static_libs[@]}"; do
    [[ "$l" == -lgmemkit ]] || static_deps+=("$l")
  done
  local dir="$work/pkg-config"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$GMEM_INSTALL_CXX" -std=c++20 -Wall -Wextra -Werror "${cxxflags[@]}" "${cflags[@]}" \
    -c "$GMEM_INSTALL_CONSUMER/main.cc" -o "$dir/main.o" || fail "compiling with pkg-config --cflags failed"
  "$GMEM_INSTALL_CXX" "${ldflags[@]}" "$dir/main.o" -o "$dir/consumer-shared" "${libs[@]}" ||
    fail "linking with pkg-config --libs failed"
  "$GMEM_INSTALL_CXX" "${ldflags[@]}" "$dir/main.o" -o "$dir/consumer-static" "${static_deps[@]}" ||
    fail "linking with libgmemkit.a and pkg-config --static --libs failed"
  run_consumer "$dir/consumer-shared" shared
  run_consumer "$dir/consumer-static" static

  # The C API from C: <gmemkit/gmemkit.h>, linked by the C compiler (a static link needs
  # Libs.private's C++ runtime). A sanitizer build's library needs the sanitizers' C++ runtime,
  # which only the C++ driver links.
  local cc_link="$GMEM_INSTALL_CC"
  [[ "$GMEM_INSTALL_CXXFLAGS" == *-fsanitize* ]] && cc_link="$GMEM_INSTALL_CXX"
  "$GMEM_INSTALL_CC" -std=c11 -Wall -Wextra -Werror -pedantic "${cxxflags[@]}" "${cflags[@]}" \
    -c "$GMEM_INSTALL_CONSUMER/c_consumer.c" -o "$dir/c_consumer.o" || fail "compiling the C consumer failed"
  "$cc_link" "${ldflags[@]}" "$dir/c_consumer.o" -o "$dir/c-consumer-shared" "${libs[@]}" ||
    fail "linking the C consumer with pkg-config --libs failed"
  "$cc_link" "${ldflags[@]}" "$dir/c_consumer.o" -o "$dir/c-consumer-static" "${static_deps[@]}" ||
    fail "linking the C consumer with libgmemkit.a and pkg-config --static --libs failed"
  local bin out
  for bin in "$dir/c-consumer-shared" "$dir/c-consumer-static"; do
    out="$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$bin")" || fail "$bin exited $?"
    printf '%s: %s\n' "$bin" "$out"
    grep -qx "gmemkit C API $version (api [0-9]*) ok" <<<"$out" || fail "$bin did not say ok"
  done
  grep -qx "$soname" <<<"$(needed "$dir/c-consumer-shared")" || fail "the C consumer does not need $soname"
}

step="${1:-}"
case "$step" in
  tree | find_package | pkg_config) "step_$step" ;;
  *)
    echo "usage: install_test.sh tree|find_package|pkg_config" >&2
    exit 2
    ;;
esac
