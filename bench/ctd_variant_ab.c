// The harness of bench/ctd_variant_ab.sh (which builds and links the three kernels): 3×3 stride-1
// pad-1 layers through `sx_kernel_config.ctd`'s signature, the top and bottom rows on their K-row
// lists and the window stated, as DirectConvPlan sets them; the kernels take turns call by call
// (the order reversed every other round), 100 rounds, median each. Outputs of the three must agree
// bit for bit (same inputs, same summation order) or the line says DIFF.
#include "selfxit_gemm.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*ctd_fn)(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b, int oy0, int oy1,
                       const sx_gemm_out *out);
extern void ctd_base(const float *, int, int, int, int, const sx_gemm_direct_b *, int, int, const sx_gemm_out *);
extern void ctd_new(const float *, int, int, int, int, const sx_gemm_direct_b *, int, int, const sx_gemm_out *);
extern void ctd_base2(const float *, int, int, int, int, const sx_gemm_direct_b *, int, int, const sx_gemm_out *);
static const ctd_fn kernels[3] = {ctd_base, ctd_new, ctd_base2};
static const char *names[3] = {"base", "new", "base again"};
enum { ARMS = 3, ROUNDS = 100 };

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

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void layer(int c, int h, int m, int samples, int cold) {
    const int pw = h + 2, ph = h + 2, k = c * 9;
    const size_t in = (size_t)c * ph * pw, outn = (size_t)m * h * h, wf = (size_t)m * k;
    const int copies = cold ? (int)((48u << 20) / (wf * sizeof(float))) + 1 : 1;
    float *x = filled(in * samples, 13, 0.1f, -0.5f), *wt = filled(wf * copies, 11, 0.01f, -0.05f);
    float *y = filled(outn * samples * ARMS, 1, 0, 0), *bias = filled((size_t)m, 7, 0.1f, -0.3f);
    for (int s = 0; s < samples; s++)  // zero padding, as DirectConvPlan.pad writes it
        for (int ch = 0; ch < c; ch++)
            for (int yy = 0; yy < ph; yy++)
                for (int xx = 0; xx < pw; xx++)
                    if (yy == 0 || xx == 0 || yy == ph - 1 || xx == pw - 1) x[in * s + ((size_t)ch * ph + yy) * pw + xx] = 0;
    int *off = malloc(sizeof(int) * k), *span = malloc(sizeof(int) * 2 * h), *rowk = malloc(sizeof(int) * 2 * k);
    double *ts = malloc(sizeof(double) * ROUNDS * ARMS);
    if (!off || !span || !rowk || !ts) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (int ch = 0; ch < c; ch++)
        for (int t = 0; t < 9; t++) off[ch * 9 + t] = ch * ph * pw + (t / 3) * pw + t % 3;
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
    const int panels = (m + 15) / 16;
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < ARMS; i++) {
            const int arm = r & 1 ? ARMS - 1 - i : i, s = (r * ARMS + i) % samples;
            sx_gemm_direct_b b = {x + in * s, off, (h - 1) * pw + h, pw, h, span, rowk, 0, 0, 0, NULL, NULL, 3, 3, pw, 1, ph * pw};
            sx_gemm_out o = {y + outn * ((size_t)s * ARMS + arm), (ptrdiff_t)h * h, 0, NULL, 0, 0, bias, h * h,
                             SX_GEMM_ACT_RELU, 0, 0};
            const double t0 = now();
            kernels[arm](wt + wf * ((r * ARMS + i) % copies), m, k, 0, panels, &b, 0, h, &o);
            ts[arm * ROUNDS + r] = now() - t0;
        }
    const double flops = 2.0 * m * k * h * h;
    double base = 0;
    printf("%4d->%4d %3dx%-3d%s:", c, m, h, h, cold ? " cold" : "");
    for (int arm = 0; arm < ARMS; arm++) {
        qsort(ts + arm * ROUNDS, ROUNDS, sizeof(double), by_value);
        const double med = ts[arm * ROUNDS + ROUNDS / 2];
        if (arm == 0) base = med;
        // With one copy of the weights every arm saw the same inputs for every sample it ran.
        int differs = 0;
        for (int s = 0; !cold && s < samples && !differs; s++)
            differs = memcmp(y + outn * ((size_t)s * ARMS), y + outn * ((size_t)s * ARMS + arm), outn * sizeof(float)) != 0;
        printf("  %s %.3f ms %.1f GF/s (%.3f)%s", names[arm], med * 1e3, flops / med / 1e9, med / base, differs ? " DIFF" : "");
    }
    printf("\n");
    free(x); free(wt); free(y); free(bias); free(off); free(span); free(rowk); free(ts);
}

int main(int argc, char **argv) {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) { fprintf(stderr, "needs AVX2 + FMA\n"); return 1; }
    const int samples = argc > 1 && atoi(argv[1]) > 0 ? atoi(argv[1]) : 8;
    const int cold = getenv("COLD") != NULL;
    static const int layers[][3] = {{64, 28, 64}, {128, 14, 128}, {256, 7, 256}, {512, 4, 512}, {128, 28, 128}, {64, 56, 64}};
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) layer(layers[i][0], layers[i][1], layers[i][2], samples, cold);
    return 0;
}
