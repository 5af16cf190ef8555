#!/usr/bin/env bash
# Every test of the project, in release mode: the Swift suites, the header compiled as C99 and
# C++17, the C ABI test program against libselfxit.so, and the Python package's pytest suite
# installed with pip into a fresh virtual environment. Run by `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Swift build (release)"
swift build -c release

echo "== Swift tests (release)"
swift test -c release

echo "== Header: C99 and C++17, -Wall -Wextra -Werror -pedantic"
printf '#include "selfxit.h"\nint main(void) { return (int)sx_abi_version() - SX_ABI_VERSION; }\n' > .build/header_check.c
cc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -c .build/header_check.c -o .build/header_check_c.o
c++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -x c++ -c .build/header_check.c -o .build/header_check_cpp.o

echo "== Exported symbols: only sx_*"
ours=$(nm -D --defined-only .build/release/libselfxit.so | awk '{print $3}' | grep -v '^sx_' || true)
if [ -n "$ours" ]; then echo "libselfxit.so exports more than sx_*:"; echo "$ours"; exit 1; fi

if [ -x Tests/CABI/run.sh ]; then
  echo "== C ABI test program"
  Tests/CABI/run.sh "$PWD" .build/release
fi

echo "== Fuzz reproducers (Tests/Fuzz/regressions, replayed against the release library)"
make --no-print-directory fuzz-regress

echo "== Python bindings (fresh virtual environment)"
venv=.build/pyvenv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check numpy pytest
"$venv/bin/pip" install -q --disable-pip-version-check ./bindings/python
SELFXIT_LIBRARY="$PWD/.build/release/libselfxit.so" "$venv/bin/python" -m pytest -q bindings/python/tests
