/* Where the grid product's time goes on a layer's plane (BENCHMARKS §7.30): `sxk_direct_avx512`
 * (the AVX-512 grid kernel of DirectConvPlan's 1×1 products) on one thread, a 1×1 layer CIN→COUT
 * on a plane of PLANE pixels (56×56 = 3136: ResNet-50's layer1), bias + ReLU fused, in three feeds:
 *   l1     B of 96 columns only (24–96 KB), the same call repeated: the kernel's own rate;
 *   plane  the whole plane in one call, inputs and outputs rotated through 4 copies (from L3 when
 *          the plane's B is larger than L2, as in the model);
 *   bands  the plane in bands of BAND columns, each band's B fetched into L2 just before its call
 *          (the fetch not timed): what a producer that had just written the band would leave.
 * Prints GF/s and the share of the core's FMA peak (a register-only FMA loop, tools/fma_peak.h),
 * best of 7 runs, and the bands/plane ratio per round. Not part of the library or of `make test`.
 *
 *   clang -O2 -std=gnu11 -ISources/SelfXitGEMM/include -ISources/SelfXitGEMM -ISources/SelfXitGEMM/x86 \
 *      tools/grid_feed_probe.c $(find Sources/SelfXitGEMM -name '*.c') -o .build/grid_feed_probe -lm -lpthread
 *   .build/grid_feed_probe [CIN COUT [PLANE [BAND]]]    # defaults 256 64 3136 480
 */
#define _POSIX_C_SOURCE 199309L
#include "selfxit_gemm.h"
#include "fma_peak.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sxk_direct_avx512(const float *, int, int, int, int, const sx_gemm_direct_b *, int, int, const sx_gemm_out *);

int main(int argc, char **argv) {
    if (!sx_gemm_isa_supported(SX_GEMM_ISA_AVX512)) { fprintf(stderr, "grid_feed_probe: needs AVX-512\n"); return 2; }
    const int cin = argc > 1 ? atoi(argv[1]) : 256, m = argc > 2 ? atoi(argv[2]) : 64;
    const int plane = argc > 3 ? atoi(argv[3]) : 3136, band = argc > 4 ? atoi(argv[4]) : 480;
    if (cin < 1 || m < 1 || plane < 96 || band < 48) { fprintf(stderr, "usage: grid_feed_probe [CIN COUT [PLANE ≥ 96 [BAND ≥ 48]]]\n"); return 2; }
    const int k = cin, copies = 4, panels = (m + 15) / 16;
    const size_t xfloats = (size_t)k * plane, cfloats = (size_t)m * plane;
    float *x = aligned_alloc(64, (xfloats * copies * 4 + 63) / 64 * 64), *c = aligned_alloc(64, (cfloats * copies * 4 + 63) / 64 * 64);
    float *w = malloc(sizeof(float) * (size_t)m * k), *bias = calloc((size_t)m, sizeof(float));
    float *pa = aligned_alloc(64, (sx_gemm_packed_a_floats(SX_GEMM_ISA_AVX512, m, k) * 4 + 63) / 64 * 64);
    int *off = malloc(sizeof(int) * (size_t)k);
    if (!x || !c || !w || !bias || !pa || !off) { fprintf(stderr, "grid_feed_probe: out of memory\n"); return 1; }
    for (size_t i = 0; i < xfloats * copies; i++) x[i] = (float)(i % 17) * 0.01f;
    for (size_t i = 0; i < (size_t)m * k; i++) w[i] = (float)(i % 13) * 0.01f - 0.05f;
    sx_gemm_pack_a(SX_GEMM_ISA_AVX512, w, k, m, k, pa);
    for (int i = 0; i < k; i++) off[i] = i * plane;  // the plane's stride between input channels, as in the model
    sx_gemm_direct_b b;
    memset(&b, 0, sizeof b);
    b.offsets = off; b.n = plane; b.grid_w = plane; b.valid_w = plane;
    sx_gemm_out out = {c, plane, 0, NULL, 0, 0, bias, plane, SX_GEMM_ACT_RELU, 0, 0};
    const long peak_rounds = 20000000;
    const double peak = 768.0 * (double)peak_rounds / fma_peak_seconds(peak_rounds), flops = 2.0 * m * k * plane, flops96 = 2.0 * m * k * 96;
    printf("%d→%d on %d pixels, bands of %d columns; FMA peak %.1f GF/s\n", cin, m, plane, band, peak * 1e-9);
    double best_l1 = 1e9;
    b.x = x; out.c = c;
    for (int run = 0; run < 7; run++) {
        const int reps = 2000;
        double t = now();
        for (int r = 0; r < reps; r++) sxk_direct_avx512(pa, m, k, 0, panels, &b, 0, 96, &out);
        t = (now() - t) / reps;
        if (t < best_l1) best_l1 = t;
    }
    printf("l1     %7.1f GF/s  %3.0f %% of peak\n", flops96 / best_l1 * 1e-9, 100 * flops96 / best_l1 / peak);
    double best_plane = 1e9, best_bands = 1e9;
    for (int round = 0; round < 6; round++) {
        double tp = 1e9, tb = 1e9;
        for (int it = 0; it < 8; it++) {
            b.x = x + (size_t)(it % copies) * xfloats; out.c = c + (size_t)(it % copies) * cfloats;
            double t = now();
            sxk_direct_avx512(pa, m, k, 0, panels, &b, 0, plane, &out);
            t = now() - t;
            if (t < tp) tp = t;
        }
        for (int it = 0; it < 8; it++) {
            b.x = x + (size_t)(it % copies) * xfloats; out.c = c + (size_t)(it % copies) * cfloats;
            double total = 0;
            for (int q = 0; q < plane; q += band) {
                const int qe = q + band < plane ? q + band : plane;
                for (int i = 0; i < k; i++)
                    for (int j = q; j < qe; j += 16) _mm_prefetch((const char *)(b.x + (size_t)i * plane + j), _MM_HINT_T1);
                double t = now();
                sxk_direct_avx512(pa, m, k, 0, panels, &b, q, qe, &out);
                total += now() - t;
            }
            if (total < tb) tb = total;
        }
        printf("round %d: plane %.3f ms (%.0f %% of peak), bands %.3f ms (%.0f %%), bands/plane %.3f\n", round,
               tp * 1e3, 100 * flops / tp / peak, tb * 1e3, 100 * flops / tb / peak, tb / tp);
        if (tp < best_plane) best_plane = tp;
        if (tb < best_bands) best_bands = tb;
    }
    printf("plane  %7.1f GF/s  %3.0f %% of peak\nbands  %7.1f GF/s  %3.0f %% of peak\n",
           flops / best_plane * 1e-9, 100 * flops / best_plane / peak, flops / best_bands * 1e-9, 100 * flops / best_bands / peak);
    free(x); free(c); free(w); free(bias); free(pa); free(off);
    return 0;
}
