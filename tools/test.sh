#!/usr/bin/env bash
# Every test of the project, in release mode: the Swift suites, the header compiled as C99 and
# C++17, the C ABI test program against libselfxit.so, the Python package's pytest suite
# installed with pip into a fresh virtual environment, the installed library (make install to a
# temporary prefix; pkg-config and CMake users; run with the toolchain hidden) and the README's
# Swift snippet in an external SwiftPM package. Run by `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Swift build (release)"
swift build -c release

# Before `swift test`, which rebuilds with testability on; make install's `swift build` would then
# rebuild once more.
echo "== Installed library: make install to a temporary prefix, ldd, size, pkg-config, CMake, toolchain hidden"
tools/test_install.sh

echo "== Swift tests (release)"
swift test -c release

echo "== Header: C99 and C++17, -Wall -Wextra -Werror -pedantic"
printf '#include "selfxit.h"\nint main(void) { return (int)sx_abi_version() - SX_ABI_VERSION; }\n' > .build/header_check.c
cc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -c .build/header_check.c -o .build/header_check_c.o
c++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -x c++ -c .build/header_check.c -o .build/header_check_cpp.o
# SX_NODISCARD: a dropped sx_status must be a warning in C (warn_unused_result) and C++ ([[nodiscard]]).
printf '#include "selfxit.h"\nint main(void) { sx_engine_destroy(0); return 0; }\n' > .build/header_nodiscard.c
for compile in "cc -std=c99" "c++ -std=c++17 -x c++"; do
  if $compile -Wall -Werror -Iinclude -c .build/header_nodiscard.c -o .build/header_nodiscard.o 2>/dev/null; then
    echo "$compile: ignoring the sx_status of sx_engine_destroy compiled without a warning (SX_NODISCARD)"; exit 1
  fi
done

echo "== Exported symbols: only sx_*"
ours=$(nm -D --defined-only .build/release/libselfxit.so | awk '{print $3}' | grep -v '^sx_' || true)
if [ -n "$ours" ]; then echo "libselfxit.so exports more than sx_*:"; echo "$ours"; exit 1; fi

echo "== The library imports FoundationEssentials, never full Foundation (ICU, 75 MiB, into libselfxit.so)"
if grep -rnE '^\s*(@_exported\s+)?import\s+(Foundation|FoundationInternationalization|FoundationNetworking|FoundationXML|Dispatch)\b' Sources/SelfXit Sources/SelfXitC; then
  echo "use FoundationEssentials (+ Glibc / Synchronization) in Sources/SelfXit and Sources/SelfXitC"; exit 1
fi

echo "== SONAME: libselfxit.so.<SX_ABI_VERSION>"
major=$(sed -n 's/^#define SX_ABI_VERSION \([0-9]*\).*/\1/p' include/selfxit.h)
readelf -d .build/release/libselfxit.so | grep -q "(SONAME).*\[libselfxit.so.$major\]" \
  || { echo "libselfxit.so's SONAME is not libselfxit.so.$major (Package.swift selfxitABIMajor vs SX_ABI_VERSION)"; exit 1; }

if [ -x Tests/CABI/run.sh ]; then
  echo "== C ABI test program"
  Tests/CABI/run.sh "$PWD" .build/release
fi

echo "== selfxit command line (inspect, build, report + headless Chromium, run, bench, flags)"
tools/test_cli.sh

echo "== Python bindings (fresh virtual environment)"
venv=.build/pyvenv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check numpy pytest
"$venv/bin/pip" install -q --disable-pip-version-check ./bindings/python
SELFXIT_LIBRARY="$PWD/.build/release/libselfxit.so" "$venv/bin/python" -m pytest -q bindings/python/tests

echo "== The README's Swift snippet in an external SwiftPM package"
tools/test_swift_package.sh
