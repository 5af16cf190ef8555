// How close the AVX-512 dense convolution kernels come to the FMA peak, apart from the engine:
// (1) the micro-kernels alone, B in L1 and their weights in L2 (their ceiling), (2) the channel-major direct
// product (`sxk_ctd_avx512`) over whole 3×3 layers of ResNet-18 w64 (28×28) and ResNet-50, one
// thread: hot, at batch 32 (a new input padded and a new output written per sample, as the
// engine's sample-parallel path does), and with cold weights (48 MB of copies, round robin).
// GF/s against the measured peak of one Zen 4 core (117 GF/s, a 12-accumulator zmm FMA loop).
// It includes the kernel file itself (its static micro-kernels are not exported), so the
// kernels' tuning macros (CTD_KC, CTD_KC_FROM, CTD_GROUP_SEGMENTS) can be set with -D:
//
//   clang -O2 -ISources/SelfXitGEMM/include -ISources/SelfXitGEMM bench/ctd_ceiling.c \
//       $(find Sources/SelfXitGEMM -name '*.c' ! -name gemm_avx512.c) -o /tmp/ctd_ceiling -lm -lpthread
//   chrt -f 1 /tmp/ctd_ceiling            # x86-64 with AVX-512 only
#include "../Sources/SelfXitGEMM/x86/gemm_avx512.c"
#include "ctd_ceiling_common.h"

AVX512_TARGET
static void ceilings(void) {
    const int k = 576;
    float *w = filled((size_t)2 * k * NR, 7, 0.01f, 0), *x = filled((size_t)k * 16 + 64, 5, 0.01f, 0);
    float *a = filled((size_t)MR_AVX512 * k, 7, 0.01f, 0), *xg = filled((size_t)k * 64 + 128, 5, 0.01f, 0);
    float *partial = filled(CTD_MAX_PIXELS * 2 * NR, 1, 0, 0), *c = filled(16 * 64, 1, 0, 0);
    int *off = malloc(sizeof(int) * k), *offg = malloc(sizeof(int) * k);
    for (int i = 0; i < k; i++) { off[i] = (i % 128) * 16; offg[i] = (i % 128) * 64; }
    __mmask16 cm[2] = {0xFFFF, 0xFFFF};
    double best = 1e9;
    for (int rep = 0; rep < 20; rep++) {
        double t0 = now();
        for (int it = 0; it < 1000; it++) {
            kernel_ctd(14, k, x, off, NULL, w, w + (size_t)k * NR, 2, cm, c, 14, NULL, 0, NULL, 0, 0, 0, 0, partial, 1, 0);
            __asm__ volatile("" ::"r"(partial) : "memory");
        }
        double t = (now() - t0) / 1000;
        if (t < best) best = t;
    }
    printf("kernel_ctd 14 px × 32 ch, K %d, B in L1, weights (72 KB) in L2: %.1f GF/s\n", k, 2.0 * 14 * 32 * k / best / 1e9);
    direct_vec vec[3];
    for (int v = 0; v < 3; v++) { vec[v].load = 0xFFFF; vec[v].valid = 0xFFFF; vec[v].pixel = 16 * v; }
    best = 1e9;
    for (int rep = 0; rep < 20; rep++) {
        double t0 = now();
        for (int it = 0; it < 1000; it++) {
            kernel_avx512_direct3(k, a, xg, offg, 0, vec, c, 64, 16, NULL, NULL, 0, 0, 0, 0, 0);
            __asm__ volatile("" ::"r"(c) : "memory");
        }
        double t = (now() - t0) / 1000;
        if (t < best) best = t;
    }
    printf("kernel_avx512_direct3 16 rows × 48 cols, K %d, B in L1, A (36 KB) in L2: %.1f GF/s\n", k, 2.0 * 16 * 48 * k / best / 1e9);
    free(w); free(x); free(a); free(xg); free(partial); free(c); free(off); free(offg);
}

int main(void) {
    if (!__builtin_cpu_supports("avx512f")) { fprintf(stderr, "needs AVX-512F\n"); return 1; }
    ceilings();
    static const struct { const char *name; int c, h, m; } layers[] = {
        {"r18 l1 3x3 64→64 28", 64, 28, 64},    {"r18 l2 3x3 128→128 14", 128, 14, 128},
        {"r18 l3 3x3 256→256 7", 256, 7, 256},  {"r50 l2 3x3 128→128 28", 128, 28, 128},
        {"r50 l3 3x3 256→256 14", 256, 14, 256}, {"r50 l4 3x3 512→512 7", 512, 7, 512},
    };
    const int batch = 32;
    printf("sxk_ctd_avx512, one thread, GF/s: %-22s %6s %9s %6s\n", "layer", "hot", "batch 32", "cold");
    for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
        double hot, batched, cold;
        ctd_layer_gflops(sxk_ctd_avx512, layers[li].c, layers[li].h, layers[li].m, batch, 12, 0, &hot, &batched, &cold);
        printf("%-55s %6.1f %9.1f %6.1f\n", layers[li].name, hot, batched, cold);
    }
    return 0;
}
