#!/bin/sh
# The AVX2 channel-major kernel (`sxk_ctd_avx2`) of two revisions side by side, alone, one thread:
# bench/ctd_variant_ab.c calls the base, the working tree's kernel and a second copy of the base
# (the noise) in turn, call by call, a new padded input each call (COLD=1: a new copy of the
# weights too, 48 MB round robin), on 3×3 layers of ResNet-18 w64 / ResNet-50, and prints each
# kernel's median time and its ratio to the base. Both kernels are built as SwiftPM builds the C
# target (the toolchain's clang, -O2 -fPIC -fno-omit-frame-pointer): harnesses built at -O3 have
# disagreed with the shipped library (BENCHMARKS §7.38). x86-64 with AVX2 + FMA.
#
#   bench/ctd_variant_ab.sh BASE_REV [samples]        # e.g. bench/ctd_variant_ab.sh f9899e2
set -eu
rev=${1:?usage: bench/ctd_variant_ab.sh BASE_REV [samples]}
samples=${2:-8}
root=$(cd "$(dirname "$0")/.." && pwd)
cc=${SWIFT_CLANG:-$(dirname "$(command -v swift)")/clang}
flags="-O2 -fPIC -fno-omit-frame-pointer"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive "$rev" Sources/SelfXitGEMM | tar -x -C "$work"
# One object per arm, exporting only its kernel under its own name.
build() {  # build NAME SOURCE_ROOT
    $cc $flags -c -I"$2/Sources/SelfXitGEMM/include" -I"$2/Sources/SelfXitGEMM" -Dsxk_ctd_avx2="$1" \
        "$2/Sources/SelfXitGEMM/x86/gemm_avx2.c" -o "$work/$1.o"
    objcopy -G "$1" "$work/$1.o"
}
build ctd_base "$work"
build ctd_new "$root"
build ctd_base2 "$work"
$cc -O2 -I"$root/Sources/SelfXitGEMM/include" -I"$root/Sources/SelfXitGEMM" "$root/bench/ctd_variant_ab.c" \
    "$work/ctd_base.o" "$work/ctd_new.o" "$work/ctd_base2.o" \
    $(find "$root/Sources/SelfXitGEMM" -name '*.c' ! -path '*/arm/*') -o "$work/ctd_variant_ab" -lm -lpthread
"$work/ctd_variant_ab" "$samples"
