#!/usr/bin/env bash
# The installed library as a user gets it (run by tools/test.sh, so by `make test`):
#   1. `make install PREFIX=<temp>`: the stripped, versioned libselfxit.so.<version> with its
#      SONAME symlinks, the header, selfxit.pc and the CMake package files;
#   2. ldd lists no toolchain path; the stripped size is at most 20 MB (printed);
#   3. Tests/Install/install_check.c, built once with pkg-config and once by an external CMake
#      project (find_package(selfxit CONFIG REQUIRED), selfxit::selfxit), answers a fixture
#      batch as ONNX Runtime did;
#   4. both programs run again with the Swift toolchain HIDDEN: an empty tmpfs mounted over it in
#      a private mount namespace (unshare -m), or else a chroot holding only the programs, the
#      installed library and the system libraries ldd names. Which way ran is printed;
#      "skipped: ... because ..." when neither is possible (SELFXIT_HIDE=namespace|chroot forces one).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=$(sed -n 's/.*version = "\(.*\)".*/\1/p' Sources/SelfXit/SelfXit.swift)
major=$(sed -n 's/^#define SX_ABI_VERSION \([0-9]*\).*/\1/p' include/selfxit.h)
max_bytes=20000000

work=$(mktemp -d "${TMPDIR:-/tmp}/selfxit-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Where the toolchain is: the directory holding usr/bin/swift; the Swift runtime directory when
# swift lives in a system directory (hiding /usr would hide everything).
swift_bin=$(readlink -f "$(command -v swift)")
toolchain=$(dirname "$(dirname "$(dirname "$swift_bin")")")
runtime=$(swift -print-target-info | python3 -c 'import json, sys; print(json.load(sys.stdin)["paths"]["runtimeLibraryPaths"][0])')
case "$toolchain" in /|/usr|/usr/local) toolchain=$runtime ;; esac
echo "toolchain: $toolchain (Swift runtime in $runtime)"

echo "-- make install PREFIX=$prefix"
make --no-print-directory install PREFIX="$prefix" >"$work/install.log" 2>&1 || { tail -40 "$work/install.log"; fail "make install"; }
lib="$prefix/lib/libselfxit.so.$version"
[ -f "$lib" ] && [ ! -L "$lib" ] || fail "$lib is not a regular file"
[ "$(readlink "$prefix/lib/libselfxit.so.$major")" = "libselfxit.so.$version" ] || fail "libselfxit.so.$major does not point to libselfxit.so.$version"
[ "$(readlink "$prefix/lib/libselfxit.so")" = "libselfxit.so.$major" ] || fail "libselfxit.so does not point to libselfxit.so.$major"
for f in include/selfxit.h lib/pkgconfig/selfxit.pc lib/cmake/selfxit/selfxit-config.cmake lib/cmake/selfxit/selfxit-config-version.cmake; do
  [ -f "$prefix/$f" ] || fail "$f not installed"
done
(cd "$prefix" && find . -mindepth 1 | sort | sed 's|^\./|  |')

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libselfxit.so.$major" ] || fail "SONAME is '$soname', expected libselfxit.so.$major (SX_ABI_VERSION; Package.swift's selfxitABIMajor)"
runpath=$(readelf -d "$lib" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p')
echo "SONAME $soname, RUNPATH '${runpath}'"
case "$runpath" in ''|'$ORIGIN') ;; *) fail "RUNPATH '$runpath' (only \$ORIGIN or none)" ;; esac
if readelf -S --wide "$lib" | grep -q '\.symtab'; then fail "$lib is not stripped"; fi
bytes=$(stat -c %s "$lib")
echo "stripped size: $bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.1f MB, %.1f MiB", b / 1e6, b / 1048576 }')); limit $max_bytes"
[ "$bytes" -le "$max_bytes" ] || fail "the installed library is larger than $max_bytes bytes"
others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^sx_' || true)
[ -z "$others" ] || fail "the installed library exports more than sx_*: $others"

echo "-- ldd $lib"
ldd "$lib" | tee "$work/ldd.txt"
if grep -q "not found" "$work/ldd.txt"; then fail "ldd: a library is not found"; fi
if grep -qF "$toolchain/" "$work/ldd.txt" || grep -qF "$runtime/" "$work/ldd.txt"; then fail "ldd lists a toolchain path"; fi
if grep -Eq 'libswift|Foundation|libdispatch|libBlocksRuntime|ICU' "$work/ldd.txt"; then fail "ldd lists a Swift runtime library"; fi

echo "-- install_check built with pkg-config"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -pedantic Tests/Install/install_check.c $(pkg-config --cflags --libs selfxit) -lm \
   -o "$work/check_pkgconfig"

echo "-- install_check built by an external CMake project: find_package(selfxit CONFIG REQUIRED)"
cmake -S Tests/Install/cmake -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
      >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "cmake configure"; }
grep "selfxit " "$work/cmake.log" || true
cmake --build "$work/cmake-build" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "cmake build"; }
cp "$work/cmake-build/install_check" "$work/check_cmake"
# A request for a version this is not must be refused (the version file is checked, not ignored).
mkdir -p "$work/cmake-too-new"
printf 'cmake_minimum_required(VERSION 3.16)\nproject(p LANGUAGES C)\nfind_package(selfxit 7.0 CONFIG REQUIRED)\n' > "$work/cmake-too-new/CMakeLists.txt"
if cmake -S "$work/cmake-too-new" -B "$work/cmake-too-new/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
  fail "find_package(selfxit 7.0) accepted version $version"
fi
echo "find_package(selfxit 7.0) refused, as it should be"

for program in check_pkgconfig check_cmake; do
  needed=$(readelf -d "$work/$program" | sed -n 's/.*(NEEDED).*\[\(libselfxit[^]]*\)\]/\1/p')
  [ "$needed" = "libselfxit.so.$major" ] || fail "$program needs '$needed', expected libselfxit.so.$major"
done

model=Tests/Fixtures/models/resnet18_w4.onnx
input=Tests/Fixtures/reference/resnet18_w4.b8.input.f32
logits=Tests/Fixtures/reference/resnet18_w4.b8.output.f32
echo "-- both, toolchain visible"
"$work/check_pkgconfig" "$model" "$input" "$logits" 8
"$work/check_cmake" "$model" "$input" "$logits" 8 | tail -1

# --- The same with the toolchain hidden -------------------------------------------------------
run_in_namespace() {
  # A private mount namespace: the tmpfs over the toolchain is seen by these commands only.
  unshare --mount --propagation private -- sh -euc '
    hide=$1; runtime=$2; work=$3; shift 3
    mount -t tmpfs -o size=1m,mode=0755 selfxit-hidden "$hide"
    if [ -n "$(ls -A "$hide")" ] || [ -e "$runtime/libswiftCore.so" ]; then echo "the toolchain is still visible" >&2; exit 3; fi
    echo "mount namespace: $hide is now an empty tmpfs (no $runtime/libswiftCore.so)"
    # Control: a program linked to the toolchain'"'"'s runtime (selfxit-bench) must not find it here.
    control=.build/release/selfxit-bench
    if [ -x "$control" ]; then
      if ldd "$control" | grep -q "libswiftCore.so => not found"; then echo "control: $control cannot find libswiftCore.so in here"
      else echo "control: $control still finds the Swift runtime: the toolchain is not hidden" >&2; exit 3; fi
    fi
    ldd "$work/check_pkgconfig" | sed "s/^/  /"
    "$work/check_pkgconfig" "$@"
    "$work/check_cmake" "$@" | tail -1
  ' sh "$toolchain" "$runtime" "$work" "$model" "$input" "$logits" 8
}

run_in_chroot() {
  # A root holding only the two programs, the installed prefix (at the same path: the programs'
  # RUNPATH names it), the system libraries ldd names and the fixture files.
  local jail="$work/jail" f
  mkdir -p "$jail/data" "$jail$prefix"
  cp -a "$prefix/." "$jail$prefix/"
  cp "$work/check_pkgconfig" "$work/check_cmake" "$jail/"
  cp "$model" "$input" "$logits" "$jail/data/"
  for f in $( { ldd "$work/check_pkgconfig"; ldd "$work/check_cmake"; ldd "$lib"; } | grep -o '/[^ )]*' | sort -u); do
    case "$f" in "$prefix"/*) continue ;; esac
    mkdir -p "$jail$(dirname "$f")"
    cp -L "$f" "$jail$f"
  done
  if [ -e "$jail$toolchain" ] || [ -e "$jail$runtime/libswiftCore.so" ]; then fail "the chroot holds the toolchain"; fi
  echo "chroot $jail: $(find "$jail" -type f | wc -l) files, no $toolchain"
  chroot "$jail" /check_pkgconfig "/data/$(basename "$model")" "/data/$(basename "$input")" "/data/$(basename "$logits")" 8
  chroot "$jail" /check_cmake "/data/$(basename "$model")" "/data/$(basename "$input")" "/data/$(basename "$logits")" 8 | tail -1
}

echo "-- both, toolchain hidden"
way=${SELFXIT_HIDE:-} why="SELFXIT_HIDE=${SELFXIT_HIDE:-}"
if [ -z "$way" ]; then
  # The probe mounts too: some containers allow the namespace but not the mount.
  if unshare --mount --propagation private -- mount -t tmpfs -o size=1m selfxit-probe "$toolchain" 2>/dev/null; then
    way=namespace why="unshare -m and mount are permitted"
  elif chroot / true 2>/dev/null; then way=chroot why="unshare -m or a mount in it is not permitted here"
  fi
fi
case "$way" in
  namespace) echo "hidden-toolchain check: mount namespace (tmpfs over $toolchain; $why)"; run_in_namespace ;;
  chroot) echo "hidden-toolchain check: chroot ($why)"; run_in_chroot ;;
  *) echo "hidden-toolchain check: skipped: the toolchain could not be hidden because neither unshare -m nor chroot is permitted here (not root, or no CAP_SYS_ADMIN / CAP_SYS_CHROOT)" ;;
esac
echo "installed library: ok"
