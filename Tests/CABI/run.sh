#!/bin/sh
# Builds Tests/CABI/test_capi.c, test_files.c, test_resources.c, test_nonfinite.c,
# test_progress.c and test_host_state.c against a built libselfxit and runs them from the
# repository root (each runs even if an earlier one fails), after tools/check_error_docs.py
# (the header's Errors: lines vs the C shell).
#
#   Tests/CABI/run.sh [REPO_ROOT] [LIB_DIR]
#
# REPO_ROOT: default, the repository holding this script. LIB_DIR: the folder with
# libselfxit.so, absolute or relative to REPO_ROOT; default .build/release.
# Environment: CC (default cc), CFLAGS (extra flags), FASHION_MNIST_DIR, SX_TEST_TIMEOUT,
# SX_TEST_THREADS (see test_capi.c).
# Exits non-zero if the build or any check fails. Also builds examples/camera_loop.c, so that
# `make test` keeps the example compiling.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=${1:-$(cd "$here/../.." && pwd)}
root=$(cd "$root" && pwd)
libdir=${2:-.build/release}
case "$libdir" in
/*) ;;
*) libdir="$root/$libdir" ;;
esac
if [ ! -f "$libdir/libselfxit.so" ]; then
    echo "run.sh: $libdir/libselfxit.so not found (build it: swift build -c release)" >&2
    exit 2
fi
libdir=$(cd "$libdir" && pwd)
# libselfxit.so carries the SONAME libselfxit.so.<SX_ABI_VERSION>, which is what the programs
# below record and look for at run time: give the build tree that name too (make install does).
major=$(sed -n 's/^#define SX_ABI_VERSION \([0-9]*\).*/\1/p' "$root/include/selfxit.h")
[ -e "$libdir/libselfxit.so.$major" ] || ln -s libselfxit.so "$libdir/libselfxit.so.$major"

cc=${CC:-cc}
out="$root/.build/cabi"
mkdir -p "$out"

png_cflags=$(pkg-config --cflags libpng 2>/dev/null || true)
png_libs=$(pkg-config --libs libpng 2>/dev/null || echo -lpng)
tj_libs=$(pkg-config --libs libturbojpeg 2>/dev/null || echo -lturbojpeg)
warn="-std=c99 -Wall -Wextra -Werror -pedantic"

echo "run.sh: building $out/test_capi against $libdir"
# shellcheck disable=SC2086
$cc $warn -O2 ${CFLAGS:-} -I"$root/include" $png_cflags "$here/test_capi.c" -o "$out/test_capi" \
    -L"$libdir" -lselfxit -Wl,-rpath,"$libdir" $png_libs $tj_libs -lz -lpthread -lm

if [ -f "$root/examples/camera_loop.c" ]; then
    echo "run.sh: building $out/camera_loop"
    # shellcheck disable=SC2086
    $cc $warn -O2 ${CFLAGS:-} -I"$root/include" "$root/examples/camera_loop.c" -o "$out/camera_loop" \
        -L"$libdir" -lselfxit -Wl,-rpath,"$libdir" -lpthread -lm
fi

echo "run.sh: building $out/test_files"
# shellcheck disable=SC2086
$cc $warn -O2 ${CFLAGS:-} -I"$root/include" "$here/test_files.c" -o "$out/test_files" \
    -L"$libdir" -lselfxit -Wl,-rpath,"$libdir" $tj_libs -lz -lpthread -lm

echo "run.sh: building $out/test_resources"
# shellcheck disable=SC2086
$cc $warn -O2 ${CFLAGS:-} -I"$root/include" "$here/test_resources.c" -o "$out/test_resources" \
    -L"$libdir" -lselfxit -Wl,-rpath,"$libdir" -lpthread

cd "$root"
status=0
echo "run.sh: checking the header's Errors: lines against the C shell"
python3 "$root/tools/check_error_docs.py" "$root" || status=1
echo "run.sh: running test_files in $root"
"$out/test_files" "$root" || status=1
echo "run.sh: running test_capi in $root"
"$out/test_capi" "$root" || status=1
# Out-of-memory and cross-engine deadlock cases, each in a forked child with a watchdog.
echo "run.sh: running test_resources in $root"
"$out/test_resources" "$root" || status=1
# NaN / inf / huge inputs through the C interface (hardening: defined behaviour for every float).
echo "run.sh: building and running $out/test_nonfinite"
# shellcheck disable=SC2086
$cc $warn -O2 ${CFLAGS:-} -I"$root/include" "$here/test_nonfinite.c" -o "$out/test_nonfinite" \
    -L"$libdir" -lselfxit -Wl,-rpath,"$libdir" -lm
"$out/test_nonfinite" "$root" || status=1
# Progress and cancel of exit builds (sx_update_options.progress, SX_ERR_CANCELLED).
echo "run.sh: building and running $out/test_progress"
# shellcheck disable=SC2086
$cc $warn -O2 ${CFLAGS:-} -I"$root/include" "$here/test_progress.c" -o "$out/test_progress" \
    -L"$libdir" -lselfxit -Wl,-rpath,"$libdir" -lz -lpthread
"$out/test_progress" "$root" || status=1
# Background exit builds, audited serving and the live guard (issue 16).
echo "run.sh: building and running $out/test_serving"
# shellcheck disable=SC2086
$cc $warn -O2 ${CFLAGS:-} -I"$root/include" "$here/test_serving.c" -o "$out/test_serving" \
    -L"$libdir" -lselfxit -Wl,-rpath,"$libdir" -lz -lpthread
"$out/test_serving" "$root" || status=1
# The host's OpenBLAS (threads, core) and environment untouched by an engine's whole life.
echo "run.sh: building and running $out/test_host_state (links -lopenblas as a host would)"
# shellcheck disable=SC2086
$cc $warn -O2 ${CFLAGS:-} -I"$root/include" "$here/test_host_state.c" -o "$out/test_host_state" \
    -L"$libdir" -lselfxit -Wl,-rpath,"$libdir" -lopenblas -lpthread -lm
"$out/test_host_state" "$root" || status=1
# Every graph output (sx_output_count, sx_output_describe, sx_infer_outputs; issue 13).
echo "run.sh: building and running $out/test_outputs"
# shellcheck disable=SC2086
$cc $warn -O2 ${CFLAGS:-} -I"$root/include" "$here/test_outputs.c" -o "$out/test_outputs" \
    -L"$libdir" -lselfxit -Wl,-rpath,"$libdir" -lm
"$out/test_outputs" "$root" || status=1
# A detector: one image without batch axis, outputs shaped at run time (issue 13).
echo "run.sh: building and running $out/test_detector"
# shellcheck disable=SC2086
$cc $warn -O2 ${CFLAGS:-} -I"$root/include" "$here/test_detector.c" -o "$out/test_detector" \
    -L"$libdir" -lselfxit -Wl,-rpath,"$libdir"
"$out/test_detector" "$root" || status=1
exit $status
