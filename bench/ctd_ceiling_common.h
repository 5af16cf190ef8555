// What bench/ctd_ceiling.c (AVX-512) and bench/ctd_ceiling_avx2.c share: timing one whole 3×3
// stride-1 pad-1 layer through a channel-major direct kernel (`sx_kernel_config.ctd`'s signature)
// three ways, one thread — hot (the same padded input again), batch (a new input padded and a new
// output written per sample, as the engine's sample-parallel path does) and cold weights (a
// different copy of them each call, 48 MB in all, round robin; the median call). Included after
// the kernel file each program includes itself.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

typedef void (*ctd_kernel)(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b, int oy0, int oy1,
                           const sx_gemm_out *out);

/// GF/s of `kernel` on a 3×3 layer `c`→`m` on an h×h plane (ReLU, bias): hot, at `batch`
/// (best of `batch_reps` − 1 passes after one untimed), cold weights. With `row_lists` the top and
/// bottom rows run only their taps inside the input, as the planner lists them
/// (`sx_gemm_direct_b.row_k`); the skipped taps are counted in the FLOPs either way.
static void ctd_layer_gflops(ctd_kernel kernel, int c, int h, int m, int batch, int batch_reps, int row_lists,
                             double *hot_gf, double *batch_gf, double *cold_gf) {
    const int w = h, pw = w + 2, ph = h + 2, k = c * 9;
    const size_t in = (size_t)c * h * w, outn = (size_t)m * h * w, wf = (size_t)m * k;
    float *x = filled(in * batch, 13, 0.1f, -0.5f), *xp = filled((size_t)c * ph * pw, 1, 0, 0);
    float *wt = filled(wf, 11, 0.01f, -0.05f), *y = filled(outn * batch, 1, 0, 0), *bias = filled((size_t)m, 1, 0, 0);
    int *off = malloc(sizeof(int) * k), *span = malloc(sizeof(int) * 2 * h), *rowk = malloc(sizeof(int) * 2 * k);
    if (!off || !span || !rowk) { fprintf(stderr, "out of memory\n"); exit(2); }
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
    if (row_lists) { b.row_k_span = span; b.row_k = rowk; }
    // The window stated, as DirectConvPlan states it at stride 1 (`sx_gemm_direct_b.win_*`).
    b.win_h = 3; b.win_w = 3; b.win_row = pw; b.win_col = 1; b.win_channel = ph * pw;
    sx_gemm_out o = {y, (ptrdiff_t)h * w, 0, NULL, 0, 0, bias, h * w, SX_GEMM_ACT_RELU, 0, 0};
    const int panels = (m + 15) / 16;
    const double flops = 2.0 * m * k * h * w;
    pad1(x, c, h, w, xp);
    double hot = 1e9, batched = 1e9;
    for (int rep = 0; rep < 40; rep++) {
        double t0 = now();
        kernel(wt, m, k, 0, panels, &b, 0, h, &o);
        double t = now() - t0;
        if (t < hot) hot = t;
    }
    for (int rep = 0; rep < batch_reps; rep++) {
        double t0 = now();
        for (int s = 0; s < batch; s++) {
            pad1(x + in * s, c, h, w, xp);
            o.c = y + outn * s;
            kernel(wt, m, k, 0, panels, &b, 0, h, &o);
        }
        double t = (now() - t0) / batch;
        if (rep > 0 && t < batched) batched = t;
    }
    int copies = (int)((48u << 20) / (wf * sizeof(float)));
    if (copies < 2) copies = 2;
    float *wc = filled(wf * copies, 11, 0.01f, -0.05f);
    double *ts = malloc(sizeof(double) * 2 * copies);
    if (!ts) { fprintf(stderr, "out of memory\n"); exit(2); }
    int nt = 0;
    o.c = y;
    pad1(x, c, h, w, xp);
    for (int rep = 0; rep < 3; rep++)
        for (int i = 0; i < copies; i++) {
            double t0 = now();
            kernel(wc + wf * i, m, k, 0, panels, &b, 0, h, &o);
            if (rep > 0) ts[nt++] = now() - t0;
        }
    for (int i = 0; i < nt; i++)
        for (int j = i + 1; j < nt; j++)
            if (ts[j] < ts[i]) { double t = ts[i]; ts[i] = ts[j]; ts[j] = t; }
    *hot_gf = flops / hot / 1e9;
    *batch_gf = flops / batched / 1e9;
    *cold_gf = flops / ts[nt / 2] / 1e9;
    free(x); free(xp); free(wt); free(y); free(bias); free(off); free(span); free(rowk); free(wc); free(ts);
}
