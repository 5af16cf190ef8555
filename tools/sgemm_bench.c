/* sx_sgemm against OpenBLAS (one thread) on the shapes the engine runs, and a naive-reference
 * check of every transpose / beta / ISA (the Swift suite KernelSGEMMTests is the authoritative
 * one). Not part of the library or of `make test`; OpenBLAS is linked here only to compare with.
 * Build with clang, as SwiftPM does (the kernels' loop pragmas are clang's):
 *
 *   clang -O2 -std=gnu11 -ISources/SelfXitGEMM/include -ISources/SelfXitGEMM tools/sgemm_bench.c \
 *      $(find Sources/SelfXitGEMM -name '*.c') -o .build/sgemm_bench -lopenblas -lpthread -lm
 *   .build/sgemm_bench c          # correctness on every ISA this CPU runs
 *   .build/sgemm_bench b [NAME]   # best-of-N timings, ours and OpenBLAS alternating (same load for
 *                                 # both); only shapes whose name contains NAME if given
 *   .build/sgemm_bench p          # the FMA peak of one core (AVX2 and AVX-512 FMA loops, measured),
 *                                 # then large products as a % of it, ours and OpenBLAS
 *   .build/sgemm_bench pc         # the same timed in thread CPU time (a shared machine: time spent
 *                                 # descheduled is not counted, for either library)
 *   .build/sgemm_bench r 7 [m n k]...  # 7 rounds of `pc`'s measurement (the conv GEMM shapes, or
 *                                 # the given ones): the medians and each round's spread
 * The AVX2 configuration against OpenBLAS's Haswell kernels (on an AVX-512 machine):
 *   SELFXIT_GEMM_ISA=avx2 OPENBLAS_CORETYPE=Haswell .build/sgemm_bench p
 *   SELFXIT_GEMM_ISA=avx2 OPENBLAS_CORETYPE=Haswell .build/sgemm_bench r 7
 */
#define _POSIX_C_SOURCE 199309L
#include "selfxit_gemm.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Wall time, or with `pc` this thread's CPU time: on a machine shared with other jobs a
 * descheduled run then counts only the time it ran (cache pollution by the others remains). */
static clockid_t g_clock = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec t;
    clock_gettime(g_clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float rnd(void) { return (float)rand() / (float)RAND_MAX * 2.0f - 1.0f; }

static float *random_floats(size_t n) {
    float *p = malloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t i = 0; i < n; i++) p[i] = rnd();
    return p;
}

/* One product against a double reference; padded leading dimensions; C NaN when beta is 0. */
static int check(int isa, int ta, int tb, int m, int n, int k, float alpha, float beta) {
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    int a_rows = ta ? k : m, b_rows = tb ? n : k;
    float *a = random_floats((size_t)a_rows * lda), *b = random_floats((size_t)b_rows * ldb);
    float *c = random_floats((size_t)m * ldc), *want = malloc((size_t)m * ldc * sizeof(float));
    memcpy(want, c, (size_t)m * ldc * sizeof(float));
    if (beta == 0)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[i * ldc + j] = NAN;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (double)(tb ? b[j * ldb + p] : b[p * ldb + j]);
            want[i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0 : beta * want[i * ldc + j]));
        }
    sx_sgemm(isa, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    int bad = 0;
    for (int i = 0; i < m && !bad; i++)
        for (int j = 0; j < ldc && !bad; j++) {
            float e = want[i * ldc + j], g = c[i * ldc + j];
            int ok = j < n ? fabsf(e - g) <= 1e-4f * (float)(k + 1) * (1 + fabsf(e)) : (e == g);  // padding untouched
            if (!ok) {
                printf("MISMATCH isa %d %c%c m %d n %d k %d alpha %g beta %g at (%d, %d): %g, want %g\n", isa,
                       ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, beta, i, j, g, e);
                bad = 1;
            }
        }
    free(a); free(b); free(c); free(want);
    return bad;
}

static int check_all(void) {
    int failed = 0;
    for (int isa = SX_GEMM_ISA_SCALAR; isa <= SX_GEMM_ISA_AVX512; isa++) {
        if (!sx_gemm_isa_supported(isa)) {
            printf("isa %d: not available on this CPU, untested\n", isa);
            continue;
        }
        int bad = 0;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    for (int m = 1; m <= 70; m += m < 20 ? 1 : 7)
                        for (int n = 1; n <= 70; n += n < 20 ? 3 : 11)
                            for (int k = 1; k <= 70; k += k < 10 ? 4 : 13) bad += check(isa, ta, tb, m, n, k, 1, (float)beta);
                    bad += check(isa, ta, tb, 1000, 37, 1030, 1, (float)beta);
                    bad += check(isa, ta, tb, 33, 1001, 600, 1, (float)beta);
                    bad += check(isa, ta, tb, 250, 520, 513, 0.5f, (float)beta);
                    bad += check(isa, ta, tb, 5, 1001, 1030, 1, (float)beta);
                }
        bad += check(isa, 0, 0, 17, 19, 23, 2, 0.5f);
        bad += check(isa, 1, 1, 17, 19, 23, 0, 0.25f);
        bad += check(isa, 0, 1, 17, 19, 0, 1, 0);
        printf("isa %d: %s\n", isa, bad ? "FAIL" : "ok");
        failed |= bad;
    }
    return failed;
}

static const char *g_only;

/* Best of N runs each, ours and OpenBLAS alternating. */
static void bench(const char *name, int ta, int tb, int m, int n, int k, float beta) {
    if (g_only && !strstr(name, g_only)) return;
    float *a = random_floats((size_t)m * k), *b = random_floats((size_t)k * n), *c = random_floats((size_t)m * n);
    int lda = ta ? m : k, ldb = tb ? k : n, isa = sx_gemm_default_isa();
    double ours = 1e9, theirs = 1e9, flops = 2.0 * m * n * k;
    int reps = (int)(2e9 / flops) + 3;
    if (reps > 200) reps = 200;
    for (int r = 0; r < reps; r++) {
        double t = now();
        sx_sgemm(isa, ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, n);
        t = now() - t;
        if (t < ours) ours = t;
        t = now();
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, a, lda, b,
                    ldb, beta, c, n);
        t = now() - t;
        if (t < theirs) theirs = t;
    }
    printf("| %-38s | %c%c | %5d | %5d | %5d | %8.3f ms (%5.1f GF/s) | %8.3f ms (%5.1f GF/s) | %.2f |\n", name,
           ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, ours * 1e3, flops / ours * 1e-9, theirs * 1e3,
           flops / theirs * 1e-9, ours / theirs);
    free(a); free(b); free(c);
}

#if defined(__x86_64__)
#include <immintrin.h>
/* Independent FMA chains (more than latency × ports) on one core: the measured peak. */
__attribute__((target("avx2,fma"), noinline)) static double fma_peak_avx2(long iters) {
    __m256 acc[12], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    double t = now();
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    t = now() - t;
    float sink = 0;
    for (int i = 0; i < 12; i++) sink += _mm256_cvtss_f32(acc[i]);
    if (sink == 12345.0f) printf(" ");
    return 2.0 * 8 * 12 * (double)iters / t;
}
__attribute__((target("avx512f"), noinline)) static double fma_peak_avx512(long iters) {
    __m512 acc[12], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    double t = now();
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    t = now() - t;
    float sink = 0;
    for (int i = 0; i < 12; i++) sink += _mm512_cvtss_f32(acc[i]);
    if (sink == 12345.0f) printf(" ");
    return 2.0 * 16 * 12 * (double)iters / t;
}
#endif

/* Best of `reps` for ours and OpenBLAS on one NN product, as GF/s and % of `peak`. */
static void peak_row(int m, int n, int k, double peak, int reps) {
    float *a = random_floats((size_t)m * k), *b = random_floats((size_t)k * n), *c = random_floats((size_t)m * n);
    int isa = sx_gemm_default_isa();
    double ours = 1e9, theirs = 1e9, flops = 2.0 * m * n * k;
    for (int r = 0; r < reps; r++) {
        double t = now();
        sx_sgemm(isa, 0, 0, m, n, k, 1, a, k, b, n, 0, c, n);
        t = now() - t;
        if (t < ours) ours = t;
        t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
        t = now() - t;
        if (t < theirs) theirs = t;
    }
    printf("| %4d×%4d×%4d | %6.1f GF/s (%4.1f %%) | %6.1f GF/s (%4.1f %%) | %.2f |\n", m, n, k, flops / ours * 1e-9,
           100 * flops / ours / peak, flops / theirs * 1e-9, 100 * flops / theirs / peak, theirs / ours);
    free(a); free(b); free(c);
}

/* Cmp for qsort of doubles. */
static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* `rounds` rounds of peak_row's measurement (thread CPU time, best of `reps` in a round, ours and
 * OpenBLAS alternating), the conv GEMM shapes by default: each round's ratio, then the medians.
 * A shared machine's load moves single rounds by several per cent; the median of ≥ 7 does not. */
static void rounds_rows(int rounds, int nshapes, int (*shapes)[3], double peak) {
    printf("| m×n×k | ours GF/s (median) | %% of peak | OpenBLAS GF/s (median) | ours/OpenBLAS median | min–max over rounds |\n"
           "|---|---:|---:|---:|---:|---|\n");
    for (int s = 0; s < nshapes; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = random_floats((size_t)m * k), *b = random_floats((size_t)k * n), *c = random_floats((size_t)m * n);
        int isa = sx_gemm_default_isa();
        double flops = 2.0 * m * n * k, go[64], gt[64], ratio[64];
        int reps = (int)(4e9 / flops) + 3;
        if (reps > 40) reps = 40;
        if (rounds > 64) rounds = 64;
        for (int r = 0; r < rounds; r++) {
            double ours = 1e9, theirs = 1e9;
            for (int i = 0; i < reps; i++) {
                double t = now();
                sx_sgemm(isa, 0, 0, m, n, k, 1, a, k, b, n, 0, c, n);
                t = now() - t;
                if (t < ours) ours = t;
                t = now();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
                t = now() - t;
                if (t < theirs) theirs = t;
            }
            go[r] = flops / ours * 1e-9;
            gt[r] = flops / theirs * 1e-9;
            ratio[r] = theirs / ours;
        }
        qsort(go, rounds, sizeof(double), cmp_double);
        qsort(gt, rounds, sizeof(double), cmp_double);
        qsort(ratio, rounds, sizeof(double), cmp_double);
        printf("| %4d×%4d×%4d | %6.1f | %4.1f %% | %6.1f | %.3f | %.3f–%.3f |\n", m, n, k, go[rounds / 2],
               100 * go[rounds / 2] * 1e9 / peak, gt[rounds / 2], ratio[rounds / 2], ratio[0], ratio[rounds - 1]);
        fflush(stdout);
        free(a); free(b); free(c);
    }
}

int main(int argc, char **argv) {
    openblas_set_num_threads(1);
#if defined(__x86_64__)
    /* `r ROUNDS [m n k]...`: rounds_rows in thread CPU time (default: the conv GEMM shapes). */
    if (argc >= 2 && argv[1][0] == 'r' && argv[1][1] == 0) {
        g_clock = CLOCK_THREAD_CPUTIME_ID;
        int rounds = argc >= 3 ? atoi(argv[2]) : 7, isa = sx_gemm_default_isa();
        double p2 = 0, p512 = 0;
        for (int r = 0; r < 200; r++) {
            double x = fma_peak_avx2(200000);
            if (x > p2) p2 = x;
            if (sx_gemm_isa_supported(SX_GEMM_ISA_AVX512)) { x = fma_peak_avx512(200000); if (x > p512) p512 = x; }
        }
        double peak = isa == SX_GEMM_ISA_AVX512 ? p512 : p2;
        printf("measured FMA peak, 1 core: AVX2 %.1f GF/s, AVX-512 %.1f GF/s; sx_sgemm runs the %s configuration; %d rounds\n",
               p2 * 1e-9, p512 * 1e-9, sx_kernel_config_for(isa)->name, rounds);
        int conv[][3] = {{256, 3136, 576}, {128, 784, 1152}, {512, 196, 2304}, {64, 3136, 576}}, given[16][3];
        int ng = 0;
        for (int i = 3; i + 2 < argc && ng < 16; i += 3, ng++) {
            given[ng][0] = atoi(argv[i]); given[ng][1] = atoi(argv[i + 1]); given[ng][2] = atoi(argv[i + 2]);
        }
        if (ng) rounds_rows(rounds < 1 ? 1 : rounds, ng, given, peak);
        else rounds_rows(rounds < 1 ? 1 : rounds, 4, conv, peak);
        return 0;
    }
    if (argc >= 2 && argv[1][0] == 'p') {
        if (argv[1][1] == 'c') g_clock = CLOCK_THREAD_CPUTIME_ID;
        int isa = sx_gemm_default_isa();
        double p2 = 0, p512 = 0;
        /* Many short runs, the best kept: on a shared machine some of them run undisturbed. */
        for (int r = 0; r < 400; r++) {
            double x = fma_peak_avx2(200000);
            if (x > p2) p2 = x;
            if (sx_gemm_isa_supported(SX_GEMM_ISA_AVX512)) { x = fma_peak_avx512(200000); if (x > p512) p512 = x; }
        }
        double peak = isa == SX_GEMM_ISA_AVX512 ? p512 : p2;
        printf("measured FMA peak, 1 core: AVX2 %.1f GF/s, AVX-512 %.1f GF/s; sx_sgemm runs the %s configuration\n",
               p2 * 1e-9, p512 * 1e-9, sx_kernel_config_for(isa)->name);
        printf("| m×n×k | sx_sgemm | OpenBLAS 1 thread | ours/OpenBLAS speed |\n|---|---|---|---|\n");
        int sizes[][3] = {{256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024}, {2048, 2048, 2048}, {256, 3136, 576},
                          {512, 784, 1152}, {64, 12544, 147}, {1000, 32, 2048}, {2304, 1024, 64}};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            peak_row(sizes[i][0], sizes[i][1], sizes[i][2], peak, sizes[i][0] >= 2048 ? 8 : 40);
        return 0;
    }
#endif
    if (argc < 2 || argv[1][0] == 'c') {
        if (check_all()) return 1;
    }
    if (argc < 2 || argv[1][0] == 'b') {
        if (argc > 2) g_only = argv[2];
        printf("| shape | op | m | n | k | sx_sgemm | OpenBLAS 1 thread | ours/OpenBLAS |\n|---|---|---|---|---|---|---|---|\n");
        /* ResNet-50's classifier at batch 32: whole, and one thread's half (DenseKernel splits rows). */
        bench("ResNet-50 fc, batch 32", 0, 0, 32, 1000, 2048, 0);
        bench("ResNet-50 fc, batch 32, 1 of 2 threads", 0, 0, 16, 1000, 2048, 0);
        /* Exit-head training (ExitHeadNetwork) at minibatch 64 and 256 over 2 threads. */
        bench("exit dense fwd x·Wᵀ, b64/2, 2048→128", 0, 1, 32, 128, 2048, 1);
        bench("exit dense fwd x·Wᵀ, b256/2, 2048→256", 0, 1, 128, 256, 2048, 1);
        bench("exit dense fwd x·Wᵀ, b128, 128→10", 0, 1, 128, 10, 128, 1);
        bench("exit dense fwd x·Wᵀ, b128/2, 1024→10", 0, 1, 64, 10, 1024, 1);
        bench("exit dense fwd x·Wᵀ, 512 rows, 512→128", 0, 1, 512, 128, 512, 1);
        bench("exit dW = dYᵀ·X, 128/2 rows, b64", 1, 0, 64, 2048, 64, 0);
        bench("exit dW = dYᵀ·X, 256/2 rows, b256", 1, 0, 128, 2048, 256, 0);
        bench("exit dX = dY·W, b64/2, 128→2048", 0, 0, 32, 2048, 128, 0);
        bench("exit dX = dY·W, b256/2, 256→2048", 0, 0, 128, 2048, 256, 0);
        bench("exit conv fwd 3×3, 256→64, 1024 cols", 0, 0, 64, 1024, 2304, 0);
        bench("exit conv fwd 1×1, 256→64, 4096 cols", 0, 0, 64, 4096, 256, 0);
        bench("exit conv dW (A·Bᵀ, beta 1)", 0, 1, 64, 2304, 1024, 1);
        bench("exit conv dcol (Aᵀ·B)", 1, 0, 2304, 1024, 64, 0);
        /* The conv heads of ExitHeadBenchTests (ResNet-18 stages): conv3x3/2→64 on 256×7×7 (28 samples
         * a chunk, 16 pixels each) and on 512×4×4 (56 samples, 4 pixels). */
        bench("head conv fwd 256×7×7 → 64", 0, 0, 64, 448, 2304, 0);
        bench("head conv dW 256×7×7 (A·Bᵀ, beta 1)", 0, 1, 64, 2304, 448, 1);
        bench("head conv dcol 256×7×7 (Aᵀ·B)", 1, 0, 2304, 448, 64, 0);
        bench("head conv fwd 512×4×4 → 64", 0, 0, 64, 224, 4608, 0);
        bench("head conv dW 512×4×4 (A·Bᵀ, beta 1)", 0, 1, 64, 4608, 224, 1);
        /* conv1x1→64 then conv3x3/2→128 on 256×7×7 (83 samples a chunk for the 1×1, 4067 columns). */
        bench("head conv1x1 dW 256×7×7 (A·Bᵀ, beta 1)", 0, 1, 64, 256, 4067, 1);
        bench("head conv1x1 dcol 256×7×7 (Aᵀ·B)", 1, 0, 256, 4067, 64, 0);
        bench("head conv3x3 fwd 64×7×7 → 128", 0, 0, 128, 1328, 576, 0);
        bench("head conv3x3 dW 64×7×7 (A·Bᵀ, beta 1)", 0, 1, 128, 576, 1328, 1);
        bench("head conv3x3 dcol 64×7×7 (Aᵀ·B)", 1, 0, 576, 1328, 128, 0);
        /* Serving: an exit head's dense layers on the samples at that exit (often 1 row). */
        bench("serve head fc x·Wᵀ, 1 row, 1024→128", 0, 1, 1, 128, 1024, 1);
        bench("serve head fc x·Wᵀ, 1 row, 128→10", 0, 1, 1, 10, 128, 1);
        bench("serve head fc x·Wᵀ, 4 rows, 2048→10", 0, 1, 4, 10, 2048, 1);
        bench("serve head fc x·Wᵀ, 8 rows, 1024→128", 0, 1, 8, 128, 1024, 1);
        bench("serve head fc x·Wᵀ, 16 rows, 1024→128", 0, 1, 16, 128, 1024, 1);
        bench("serve MatMul 2 rows, 512→1000 (beta 0)", 0, 0, 2, 1000, 512, 0);
        bench("exit dW = dYᵀ·X, 10/2 classes, b64", 1, 0, 5, 1024, 64, 0);
        bench("square 512", 0, 0, 512, 512, 512, 0);
        bench("square 1024", 0, 0, 1024, 1024, 1024, 0);
    }
    return 0;
}
