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

# Kernel paths that depend on the default ISA (depthwise, max pooling, dense layers, exit heads,
# whole models) again with SELFXIT_GEMM_ISA lowered to each ISA below the CPU's best, so that the
# fallbacks the shipping machines skip are tested too; the suites that force every ISA themselves
# (KernelPackedGEMMTests, KernelSGEMMTests) already ran. An ISA the CPU lacks is named in the
# Swift tests' skip messages.
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { case " $flags " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if has avx512f && has avx512dq && has avx512vl; then isas="avx512 avx2 scalar"
elif has avx2 && has fma; then isas="avx2 scalar"
else isas="scalar"; fi
echo "== Kernel ISA: ${isas%% *} (tested: ${isas// /, }; missing ones reported as skipped: … untested)"
for isa in ${isas#* }; do
  [ "$isa" = "${isas%% *}" ] && continue
  echo "== Swift kernel, exit-head and parity tests at SELFXIT_GEMM_ISA=$isa"
  SELFXIT_GEMM_ISA=$isa swift test -c release --skip-build \
    --filter 'KernelConvTests|KernelPoolingTests|KernelGemmTests|ExitHeadTests|ParityTests'
done

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

echo "== Python bindings (fresh virtual environment)"
venv=.build/pyvenv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check numpy pytest
"$venv/bin/pip" install -q --disable-pip-version-check ./bindings/python
SELFXIT_LIBRARY="$PWD/.build/release/libselfxit.so" "$venv/bin/python" -m pytest -q bindings/python/tests
