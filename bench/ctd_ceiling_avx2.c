// How close the AVX2 channel-major direct product (`sxk_ctd_avx2`) comes to the FMA peak over whole
// 3×3 layers, apart from the engine, one thread: hot (the same padded input again), at batch 32
// (a new input padded and a new output written per sample, as the engine's sample-parallel path
// does) and with cold weights (a different copy of them each call, 48 MB in all, round robin: a
// model at batch 1 meets each layer's weights in L3 or memory), with the top and bottom rows on their K-row lists as the planner sets them (argument 0:
// without the lists). The peak (a 12-accumulator ymm FMA loop) is measured before and after each
// pass: on a shared host it moves by a quarter within minutes, so compare GF/s only against the
// peak printed beside them, and two builds only alternating (several runs each).
// It includes the kernel file itself, so its tuning macros (CTD_KC_AVX2, CTD_GROUP_AVX2,
// CTD_PREFETCH_AVX2) can be set with -D:
//
//   clang -O3 -mavx2 -mfma -ISources/SelfXitGEMM/include -ISources/SelfXitGEMM bench/ctd_ceiling_avx2.c \
//       $(find Sources/SelfXitGEMM -name '*.c' ! -name gemm_avx2.c ! -path '*/arm/*') -o /tmp/ctd_ceiling_avx2 -lm -lpthread
//   /tmp/ctd_ceiling_avx2 [1|0]            # x86-64 with AVX2 + FMA
#include "../Sources/SelfXitGEMM/x86/gemm_avx2.c"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *filled(size_t n, int mod, float scale, float shift) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64 + 256);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t i = 0; i < n; i++) p[i] = (float)(i % (size_t)mod) * scale + shift;
    return p;
}

/// Zero-padded (1 around) copy of a CHW sample, as DirectConvPlan.pad writes it.
static void pad1(const float *x, int c, int h, int w, float *d) {
    int pw = w + 2, ph = h + 2;
    for (int ch = 0; ch < c; ch++) {
        float *p = d + (size_t)ch * ph * pw;
        memset(p, 0, sizeof(float) * pw);
        for (int y = 0; y < h; y++) {
            float *r = p + (y + 1) * pw;
            r[0] = 0;
            memcpy(r + 1, x + ((size_t)ch * h + y) * w, sizeof(float) * w);
            r[w + 1] = 0;
        }
        memset(p + (size_t)(h + 1) * pw, 0, sizeof(float) * pw);
    }
}

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
        const int c = layers[li].c, h = layers[li].h, m = layers[li].m, w = h, pw = w + 2, ph = h + 2, k = c * 9;
        const size_t in = (size_t)c * h * w, outn = (size_t)m * h * w, wf = (size_t)m * k;
        float *x = filled(in * batch, 13, 0.1f, -0.5f), *xp = filled((size_t)c * ph * pw, 1, 0, 0);
        float *wt = filled(wf, 11, 0.01f, -0.05f), *y = filled(outn * batch, 1, 0, 0), *bias = filled((size_t)m, 1, 0, 0);
        int *off = malloc(sizeof(int) * k), *span = malloc(sizeof(int) * 2 * h), *rowk = malloc(sizeof(int) * 2 * k);
        for (int ch = 0; ch < c; ch++)
            for (int t = 0; t < 9; t++) off[ch * 9 + t] = ch * ph * pw + (t / 3) * pw + t % 3;
        // The top row skips the taps of kernel row 0 (they read the padding row), the bottom row those of row 2.
        int entries = 0;
        for (int oy = 0; oy < h; oy++) { span[2 * oy] = -1; span[2 * oy + 1] = 0; }
        for (int oy = 0; oy < h; oy += h - 1) {
            span[2 * oy] = entries;
            for (int kk = 0; kk < k; kk++) {
                const int ky = (kk % 9) / 3;
                if ((oy == 0 && ky == 0) || (oy == h - 1 && ky == 2)) continue;
                rowk[entries++] = kk;
            }
            span[2 * oy + 1] = entries - span[2 * oy];
        }
        sx_gemm_direct_b b = {xp, off, (h - 1) * pw + w, pw, w};
        if (listed) { b.row_k_span = span; b.row_k = rowk; }
        sx_gemm_out o = {y, (ptrdiff_t)h * w, 0, NULL, 0, 0, bias, h * w, SX_GEMM_ACT_RELU, 0, 0};
        const int panels = (m + 15) / 16;
        const double flops = 2.0 * m * k * h * w;  // the skipped taps counted: GF/s comparable with and without lists
        pad1(x, c, h, w, xp);
        double hot = 1e9, batched = 1e9;
        for (int rep = 0; rep < 40; rep++) {
            double t0 = now();
            sxk_ctd_avx2(wt, m, k, 0, panels, &b, 0, h, &o);
            double t = now() - t0;
            if (t < hot) hot = t;
        }
        for (int rep = 0; rep < 8; rep++) {
            double t0 = now();
            for (int s = 0; s < batch; s++) {
                pad1(x + in * s, c, h, w, xp);
                o.c = y + outn * s;
                sxk_ctd_avx2(wt, m, k, 0, panels, &b, 0, h, &o);
            }
            double t = (now() - t0) / batch;
            if (rep > 0 && t < batched) batched = t;
        }
        // Cold weights: the median call over copies of the weights taken in turn (the padded input stays hot).
        int copies = (int)((48u << 20) / (wf * sizeof(float)));
        if (copies < 2) copies = 2;
        float *wc = filled(wf * copies, 11, 0.01f, -0.05f);
        double *ts = malloc(sizeof(double) * 2 * copies);
        int nt = 0;
        o.c = y;
        pad1(x, c, h, w, xp);
        for (int rep = 0; rep < 3; rep++)
            for (int i = 0; i < copies; i++) {
                double t0 = now();
                sxk_ctd_avx2(wc + wf * i, m, k, 0, panels, &b, 0, h, &o);
                if (rep > 0) ts[nt++] = now() - t0;
            }
        for (int i = 0; i < nt; i++)
            for (int j = i + 1; j < nt; j++)
                if (ts[j] < ts[i]) { double t = ts[i]; ts[i] = ts[j]; ts[j] = t; }
        printf("%-62s %6.1f %9.1f %6.1f\n", layers[li].name, flops / hot / 1e9, flops / batched / 1e9, flops / ts[nt / 2] / 1e9);
        free(wc); free(ts);
        free(x); free(xp); free(wt); free(y); free(bias); free(off); free(span); free(rowk);
    }
    printf("FMA peak %.1f GF/s\n", fma_peak());
    return 0;
}
