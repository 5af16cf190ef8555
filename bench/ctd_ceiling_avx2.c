// How close the AVX2 channel-major direct product (`sxk_ctd_avx2`) comes to the FMA peak over whole
// 3×3 layers, apart from the engine, one thread: hot (the same padded input again), at batch 32
// (a new input padded and a new output written per sample, as the engine's sample-parallel path
// does) and with cold weights (a different copy of them each call, 48 MB in all, round robin: a
// model at batch 1 meets each layer's weights in L3 or memory; bench/ctd_ceiling_common.h), with
// the top and bottom rows on their K-row lists as the planner sets them (argument 0: without). The peak (a 12-accumulator ymm FMA loop) is measured before and after each
// pass: on a shared host it moves by a quarter within minutes, so compare GF/s only against the
// peak printed beside them, and two builds only alternating (several runs each).
// It includes the kernel file itself, so its tuning macros (CTD_KC_AVX2, CTD_GROUP_AVX2,
// CTD_PREFETCH_AVX2) can be set with -D:
//
//   clang -O3 -mavx2 -mfma -ISources/SelfXitGEMM/include -ISources/SelfXitGEMM bench/ctd_ceiling_avx2.c \
//       $(find Sources/SelfXitGEMM -name '*.c' ! -name gemm_avx2.c ! -path '*/arm/*') -o /tmp/ctd_ceiling_avx2 -lm -lpthread
//   /tmp/ctd_ceiling_avx2 [1|0]            # x86-64 with AVX2 + FMA
#include "../Sources/SelfXitGEMM/x86/gemm_avx2.c"
#include "ctd_ceiling_common.h"

/// GF/s of 12 independent ymm FMA chains (two FMA pipes × latency 4 on Zen 2/3 and Haswell).
AVX2_TARGET
static double fma_peak(void) {
    __m256 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i * 0.001f);
    const __m256 x = _mm256_set1_ps(0.9999f), y = _mm256_set1_ps(0.0001f);
    const long n = 20000000;
    double t = now();
    for (long i = 0; i < n; i++) {
#pragma clang loop unroll(full)
        for (int j = 0; j < 12; j++) a[j] = _mm256_fmadd_ps(a[j], x, y);
        __asm__ volatile("" ::"x"(a[0]), "x"(a[1]), "x"(a[2]), "x"(a[3]), "x"(a[4]), "x"(a[5]), "x"(a[6]), "x"(a[7]),
                         "x"(a[8]), "x"(a[9]), "x"(a[10]), "x"(a[11]));
    }
    return (double)n * 12 * 16 / (now() - t) / 1e9;
}

int main(int argc, char **argv) {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) { fprintf(stderr, "needs AVX2 + FMA\n"); return 1; }
    const int listed = argc > 1 ? atoi(argv[1]) : 1;
    static const struct { const char *name; int c, h, m; } layers[] = {
        {"r18 l1 3x3 64→64 28", 64, 28, 64},     {"r18 l2 3x3 128→128 14", 128, 14, 128},
        {"r18 l3 3x3 256→256 7", 256, 7, 256},   {"r18 l4 3x3 512→512 4", 512, 4, 512},
        {"r50 l2 3x3 128→128 28", 128, 28, 128}, {"dn 3x3 128→32 56", 128, 56, 32},
    };
    const int batch = 32;
    printf("FMA peak %.1f GF/s\n", fma_peak());
    printf("sxk_ctd_avx2, one thread, GF/s (%s): %-22s %6s %9s %6s\n", listed ? "row lists" : "no row lists", "layer", "hot", "batch 32", "cold");
    for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
        double hot, batched, cold;
        ctd_layer_gflops(sxk_ctd_avx2, layers[li].c, layers[li].h, layers[li].m, batch, 8, listed, &hot, &batched, &cold);
        printf("%-62s %6.1f %9.1f %6.1f\n", layers[li].name, hot, batched, cold);
    }
    printf("FMA peak %.1f GF/s\n", fma_peak());
    return 0;
}
