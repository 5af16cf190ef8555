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
        const int c = layers[li].c, h = layers[li].h, m = layers[li].m, w = h, pw = w + 2, ph = h + 2, k = c * 9;
        const size_t in = (size_t)c * h * w, outn = (size_t)m * h * w, wf = (size_t)m * k;
        float *x = filled(in * batch, 13, 0.1f, -0.5f), *xp = filled((size_t)c * ph * pw, 1, 0, 0);
        float *wt = filled(wf, 11, 0.01f, -0.05f), *y = filled(outn * batch, 1, 0, 0), *bias = filled((size_t)m, 1, 0, 0);
        int *off = malloc(sizeof(int) * k);
        for (int ch = 0; ch < c; ch++)
            for (int t = 0; t < 9; t++) off[ch * 9 + t] = ch * ph * pw + (t / 3) * pw + t % 3;
        sx_gemm_direct_b b = {xp, off, (h - 1) * pw + w, pw, w};
        sx_gemm_out o = {y, (ptrdiff_t)h * w, 0, NULL, 0, 0, bias, h * w, SX_GEMM_ACT_RELU, 0, 0};
        const int panels = (m + 15) / 16;
        const double flops = 2.0 * m * k * h * w;
        pad1(x, c, h, w, xp);
        double hot = 1e9, batched = 1e9;
        for (int rep = 0; rep < 40; rep++) {
            double t0 = now();
            sxk_ctd_avx512(wt, m, k, 0, panels, &b, 0, h, &o);
            double t = now() - t0;
            if (t < hot) hot = t;
        }
        for (int rep = 0; rep < 12; rep++) {
            double t0 = now();
            for (int s = 0; s < batch; s++) {
                pad1(x + in * s, c, h, w, xp);
                o.c = y + outn * s;
                sxk_ctd_avx512(wt, m, k, 0, panels, &b, 0, h, &o);
            }
            double t = (now() - t0) / batch;
            if (rep > 0 && t < batched) batched = t;
        }
        int copies = (int)((48u << 20) / (wf * sizeof(float)));
        if (copies < 2) copies = 2;
        float *wc = filled(wf * copies, 11, 0.01f, -0.05f);
        double *ts = malloc(sizeof(double) * 2 * copies);
        int nt = 0;
        o.c = y;
        for (int rep = 0; rep < 3; rep++)
            for (int i = 0; i < copies; i++) {
                double t0 = now();
                sxk_ctd_avx512(wc + wf * i, m, k, 0, panels, &b, 0, h, &o);
                if (rep > 0) ts[nt++] = now() - t0;
            }
        for (int i = 0; i < nt; i++)
            for (int j = i + 1; j < nt; j++)
                if (ts[j] < ts[i]) { double t = ts[i]; ts[i] = ts[j]; ts[j] = t; }
        printf("%-55s %6.1f %9.1f %6.1f\n", layers[li].name, flops / hot / 1e9, flops / batched / 1e9, flops / ts[nt / 2] / 1e9);
        free(x); free(xp); free(wt); free(y); free(bias); free(off); free(wc); free(ts);
    }
    return 0;
}
