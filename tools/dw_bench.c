/* Depthwise k×k kernel A/B: two builds of x86/depthwise_kxk_avx512.c (e.g. two DWK_R1/DWK_R2
 * block heights) timed alternately on MobileNetV3's and EfficientNet's depthwise layers, one
 * thread, best of 30 rounds, outputs compared. Not part of the library or of `make test`.
 *
 *   K=Sources/SelfXitGEMM/x86/depthwise_kxk_avx512.c; I="-ISources/SelfXitGEMM/include -ISources/SelfXitGEMM"
 *   clang -O2 -c $I -DDWK_R2=4 -Dsxk_dw_direct_avx512=dw_a $K -o .build/dw_a.o
 *   clang -O2 -c $I            -Dsxk_dw_direct_avx512=dw_b $K -o .build/dw_b.o
 *   clang -O2 tools/dw_bench.c .build/dw_a.o .build/dw_b.o -o .build/dw_bench && .build/dw_bench
 */
#define _POSIX_C_SOURCE 199309L
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*dw_fn)(const float *, int, int, int, int, int, int, int, const float *, float, const float *, float *,
                      int, int, int, int, float, float);
void dw_a(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left, const float *w,
          float bias, const float *res, float *out, int oy0, int oy1, int out_w, int act, float lo, float hi);
void dw_b(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left, const float *w,
          float bias, const float *res, float *out, int oy0, int oy1, int out_w, int act, float lo, float hi);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
    static const struct { const char *name; int c, h, k, s; } layers[] = {
        {"effb0 240 5x5 s2 56", 240, 56, 5, 2}, {"mnv3 72 5x5 s2 56", 72, 56, 5, 2},
        {"effb0 672 5x5 s2 14", 672, 14, 5, 2}, {"effb0 672 5x5 14", 672, 14, 5, 1},
        {"mnv3 120 5x5 28", 120, 28, 5, 1},     {"mnv3 960 5x5 7", 960, 7, 5, 1},
        {"7x7 96 56 (ConvNeXt-like)", 96, 56, 7, 1},
    };
    const dw_fn fns[2] = {dw_a, dw_b};
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        const int c = layers[l].c, h = layers[l].h, k = layers[l].k, s = layers[l].s, p = k / 2;
        const int oh = (h + 2 * p - k) / s + 1;
        float *x = malloc(sizeof(float) * (size_t)(c * h * h)), *w = malloc(sizeof(float) * (size_t)(c * k * k));
        float *y[2] = {malloc(sizeof(float) * (size_t)(c * oh * oh)), malloc(sizeof(float) * (size_t)(c * oh * oh))};
        if (!x || !w || !y[0] || !y[1]) return 1;
        for (int i = 0; i < c * h * h; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        for (int i = 0; i < c * k * k; i++) w[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        double best[2] = {1e9, 1e9};
        for (int round = 0; round < 30; round++)
            for (int v = 0; v < 2; v++) {
                double t0 = now();
                for (int rep = 0; rep < 3; rep++)
                    for (int ch = 0; ch < c; ch++)
                        fns[v](x + (size_t)ch * h * h, h, h, k, k, s, p, p, w + ch * k * k, 0.1f, NULL,
                               y[v] + (size_t)ch * oh * oh, 0, oh, oh, 1, 0, 0);
                double t = (now() - t0) / 3;
                if (t < best[v]) best[v] = t;
            }
        double worst = 0;
        for (int i = 0; i < c * oh * oh; i++) {
            double d = (double)y[0][i] - (double)y[1][i];
            if (d < 0) d = -d;
            if (d > worst) worst = d;
        }
        const double flop = 2.0 * c * oh * oh * k * k;
        printf("%-28s A %.3f ms (%5.1f GF/s)  B %.3f ms (%5.1f GF/s)  B/A %.2f  max |A-B| %.1e\n", layers[l].name,
               best[0] * 1e3, flop / best[0] * 1e-9, best[1] * 1e3, flop / best[1] * 1e-9, best[1] / best[0], worst);
        free(x); free(w); free(y[0]); free(y[1]);
    }
    return 0;
}
