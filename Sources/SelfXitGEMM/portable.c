// Portable C kernels: the scalar configuration's, the fallback of every public entry point whose
// configuration has no kernel of that kind (so nothing is ever a silent no-op off x86), and the
// reference the per-ISA kernel tests compare against (Tests/Kernels/kernel_test.c under qemu for
// NEON, KernelConfigTests in Swift for every configuration this machine runs).
#include "kernels_internal.h"

#include <math.h>
#include <string.h>

#define NR SXK_NR
#define MR_SCALAR SXK_MR_SCALAR

void sxk_tile_scalar(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                     const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
    float acc[MR_SCALAR][NR];
    memset(acc, 0, sizeof acc);
    if (accum)
        for (int r = 0; r < mv; r++)
            for (int j = 0; j < nv; j++) acc[r][j] = c[(ptrdiff_t)r * ldc + j];
    for (int p = 0; p < k; p++) {
        const float *bp = b + (size_t)p * NR;
        const float *ap = a + (size_t)p * MR_SCALAR;
        for (int r = 0; r < MR_SCALAR; r++) {
            float av = ap[r];
            for (int j = 0; j < NR; j++) acc[r][j] += av * bp[j];
        }
    }
    for (int r = 0; r < mv; r++) {
        float bv = bias ? bias[r] : 0.0f;
        for (int j = 0; j < nv; j++) {
            float v = acc[r][j] + bv;
            if (res) v += res[(ptrdiff_t)r * ldr + j];
            c[(ptrdiff_t)r * ldc + j] = sxk_act1(v, act, lo, hi);
        }
    }
}

void sxk_gemm_scalar(const float *pa, int m, int k, int mp0, int mp1, const float *pb, int n, int np0, int np1,
                     const sx_gemm_out *out) {
    sxk_gemm_drive(sxk_tile_scalar, NULL, NULL, MR_SCALAR, pa, m, k, mp0, mp1, pb, n, np0, np1, out);
}

/// Output element `v` (product + bias) of row `i`, pixel `pixel` of the sample at `c`/`res`:
/// residual added (read before the write, so a residual in place works), activation, store.
static inline void put(const sx_gemm_out *out, float *c, const float *res, int i, ptrdiff_t pixel, float v) {
    if (out->bias) v += out->bias[i];
    if (res) v += res[(ptrdiff_t)i * out->ldr + pixel];
    c[(ptrdiff_t)i * out->ldc + pixel] = sxk_act1(v, out->act, out->lo, out->hi);
}

void sxk_direct_portable(int mr, const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b, int q0,
                         int q1, const sx_gemm_out *out) {
    int qe = q1 < b->n ? q1 : b->n;
    int i1 = mp1 * mr < m ? mp1 * mr : m;
    for (int i = mp0 * mr; i < i1; i++) {
        const float *ap = pa + (size_t)(i / mr) * mr * k + i % mr;
        for (int q = q0; q < qe; q++) {
            int row = q / b->grid_w, col = q - row * b->grid_w;
            if (col >= b->valid_w) continue;
            float s = 0;
            for (int kk = 0; kk < k; kk++) s += ap[(size_t)kk * mr] * b->x[b->offsets[kk] + q];
            put(out, out->c, out->residual, i, (ptrdiff_t)row * b->valid_w + col, s);
        }
    }
}

void sxk_direct_scalar(const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b, int q0, int q1,
                       const sx_gemm_out *out) {
    sxk_direct_portable(MR_SCALAR, pa, m, k, mp0, mp1, b, q0, q1, out);
}

void sxk_ct_portable(const float *pw, int m, int k, int cp0, int cp1, const float *pb, int n, int np0, int np1,
                     const sx_gemm_out *out) {
    int i1 = cp1 * NR < m ? cp1 * NR : m, j1 = np1 * NR < n ? np1 * NR : n;
    const int cps = out->cols_per_sample;
    for (int i = cp0 * NR; i < i1; i++) {
        const float *wp = pw + (size_t)(i / NR) * k * NR + i % NR;
        for (int j = np0 * NR; j < j1; j++) {
            const float *bp = pb + (size_t)(j / NR) * NR * k + j % NR;
            float s = 0;
            for (int kk = 0; kk < k; kk++) s += wp[(size_t)kk * NR] * bp[(size_t)kk * NR];
            int sample = j / cps, pixel = j - sample * cps;
            put(out, out->c + sample * out->c_sample_stride,
                out->residual ? out->residual + sample * out->r_sample_stride : NULL, i, pixel, s);
        }
    }
}

void sxk_ctd_portable(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b, int oy0, int oy1,
                      const sx_gemm_out *out) {
    int i1 = cp1 * NR < m ? cp1 * NR : m;
    for (int i = cp0 * NR; i < i1; i++) {
        const float *wp = pw + (size_t)(i / NR) * k * NR + i % NR;
        for (int oy = oy0; oy < oy1; oy++)
            for (int ox = 0; ox < b->valid_w; ox++) {
                const float *xp = b->x + (ptrdiff_t)oy * b->grid_w + ox;
                float s = 0;
                // Top and bottom rows: only the K rows their list names (`sx_gemm_direct_b.row_k`);
                // the border columns of the other rows: their column's list.
                const int *kidx = NULL;
                int kn = 0;
                if (sxk_row_listed(b, oy)) {
                    kidx = b->row_k + b->row_k_span[2 * oy];
                    kn = b->row_k_span[2 * oy + 1];
                } else if (b->row_k && b->border_cols > 0 && b->col1 > b->col0) {
                    for (int bc = 0; bc < b->border_cols; bc++)
                        if (b->border_col[bc] == ox) { kidx = b->row_k + b->col_k_span[2 * bc]; kn = b->col_k_span[2 * bc + 1]; }
                }
                if (kidx) {
                    for (int j = 0; j < kn; j++) s += wp[(size_t)kidx[j] * NR] * xp[b->offsets[kidx[j]]];
                } else {
                    for (int kk = 0; kk < k; kk++) s += wp[(size_t)kk * NR] * xp[b->offsets[kk]];
                }
                put(out, out->c, out->residual, i, (ptrdiff_t)oy * b->valid_w + ox, s);
            }
    }
}

void sxk_small_rows_portable(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx, const float *b,
                             ptrdiff_t ldb, float *y, ptrdiff_t ldy) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + (ptrdiff_t)r * ldy;
        for (int c = 0; c < n; c++) yr[c] = 0;
        for (int p = 0; p < k; p++) {
            float xv = x[(ptrdiff_t)r * ldx + p];
            const float *bp = b + (ptrdiff_t)p * ldb;
            for (int c = 0; c < n; c++) yr[c] += xv * bp[c];
        }
        for (int c = 0; c < n; c++) yr[c] *= alpha;
    }
}

void sxk_dw3x3_plane_portable(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, const float *w,
                              float bias, float *out, int out_h, int out_w, int act, float lo, float hi) {
    for (int oy = 0; oy < out_h; oy++) {
        const float *r0 = buf + oy * step_y, *r1 = r0 + dy, *r2 = r1 + dy;
        for (int ox = 0; ox < out_w; ox++) {
            float a = bias;
            a += w[0] * r0[ox + off[0]] + w[1] * r0[ox + off[1]] + w[2] * r0[ox + off[2]];
            a += w[3] * r1[ox + off[0]] + w[4] * r1[ox + off[1]] + w[5] * r1[ox + off[2]];
            a += w[6] * r2[ox + off[0]] + w[7] * r2[ox + off[1]] + w[8] * r2[ox + off[2]];
            out[oy * out_w + ox] = sxk_act1(a, act, lo, hi);
        }
    }
}

void sxk_dw3x3_direct_portable(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                               const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                               int act, float lo, float hi) {
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = 0; ox < out_w; ox++) {
            // Rows summed tap by tap in the vector kernels' order (bias + row 0, then rows 1, 2 per column).
            float s0 = bias, s1 = 0, s2 = 0;
            for (int ky = 0; ky < 3; ky++) {
                int iy = oy * stride + ky - pad_top;
                float t[3];
                for (int kx = 0; kx < 3; kx++) {
                    int ix = ox * stride + kx - pad_left;
                    t[kx] = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w ? x[(ptrdiff_t)iy * in_w + ix] : 0.0f;
                }
                s0 += w[3 * ky] * t[0];
                s1 += w[3 * ky + 1] * t[1];
                s2 += w[3 * ky + 2] * t[2];
            }
            float y = s0 + (s1 + s2);
            if (res) y += res[(ptrdiff_t)oy * out_w + ox];
            out[(ptrdiff_t)oy * out_w + ox] = sxk_act1(y, act, lo, hi);
        }
}

void sxk_maxpool_direct_portable(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top,
                                 int pad_left, float *out, int out_h, int out_w) {
    for (int oy = 0; oy < out_h; oy++)
        for (int ox = 0; ox < out_w; ox++) {
            float m = -INFINITY;
            int nan = 0;
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * stride + ky - pad_top;
                if (iy < 0 || iy >= in_h) continue;
                for (int kx = 0; kx < kw; kx++) {
                    int ix = ox * stride + kx - pad_left;
                    if (ix < 0 || ix >= in_w) continue;
                    float v = x[(ptrdiff_t)iy * in_w + ix];
                    if (v != v) nan = 1;  // a window holding NaN gives NaN (as ONNX Runtime)
                    else if (v > m) m = v;
                }
            }
            out[(ptrdiff_t)oy * out_w + ox] = nan ? NAN : m;
        }
}

void sxk_deinterleave2_portable(const float *s, float *d, int lo, int hi) {
    for (int j = lo; j < hi; j++) d[j] = s[2 * j];
}

/// libm's expf is total (NaN → NaN, overflow → inf, underflow → 0) and traps on nothing.
void sxk_sigmoid_portable(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void sxk_silu_portable(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v * (1.0f / (1.0f + expf(-v)));
    }
}
