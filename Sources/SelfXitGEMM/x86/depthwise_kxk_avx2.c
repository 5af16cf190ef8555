// AVX2 + FMA depthwise k×k over a zero-padded, phase-split plane (DepthwisePlan's copy): the
// `dw_plane` kernel of the AVX2 configuration (configs/kernel_config.c). AVX2 has no in-place
// depthwise (its masked loads cost what AVX-512's do not, §7.3 of docs/BENCHMARKS.md), so 5×5
// layers (MobileNetV3, EfficientNet) keep the padded copy, but the product runs here instead of
// Swift's SIMD16 loop, with ReLU/Clip applied as it stores.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx2_helpers.h"

#define DWP_TARGET __attribute__((target("avx2,fma,avx")))
#define DWP_INLINE DWP_TARGET __attribute__((always_inline)) static inline

// The in-place kernel's loops are unrolled fully where the sizes are constants (3/5/7); the
// run-time-size fallback inlines the same loops, which cannot be, and clang would warn for it.
#pragma clang diagnostic ignored "-Wpass-failed"

#define dwp_act sx_act8_basic

/// Stores the first `n` (1..8) lanes of `v` at `o`.
DWP_TARGET __attribute__((always_inline)) static inline void dwp_store(float *o, __m256 v, int n) {
    if (n >= 8) {
        _mm256_storeu_ps(o, v);
    } else {
        float t[8];
        _mm256_storeu_ps(t, v);
        for (int j = 0; j < n; j++) o[j] = t[j];
    }
}

/// Output row `oy` reads padded rows `buf + oy·step_y + ky·dy` at column offsets `off[kx]`
/// (+ output column); 16 columns (two accumulators) at a time, the buffer being padded to whole
/// 16-float vectors so every load is in bounds. Writes `act(sum + bias)`.
DWP_TARGET
void sxk_dw_plane_avx2(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, int kh, int kw,
                       const float *w, float bias, float *out, int out_h, int out_w, int act, float lo, float hi) {
    const __m256 vb = _mm256_set1_ps(bias), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    for (int oy = 0; oy < out_h; oy++) {
        const float *base = buf + oy * step_y;
        float *o = out + (ptrdiff_t)oy * out_w;
        for (int ox = 0; ox < out_w; ox += 16) {
            __m256 a0 = vb, a1 = _mm256_setzero_ps(), c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();
            for (int ky = 0; ky < kh; ky++) {
                const float *row = base + ky * dy + ox;
                const float *wk = w + ky * kw;
                int kx = 0;
                // Two taps a step into separate accumulators (FMA latency).
                for (; kx + 1 < kw; kx += 2) {
                    const __m256 w0 = _mm256_set1_ps(wk[kx]), w1 = _mm256_set1_ps(wk[kx + 1]);
                    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(row + off[kx]), a0);
                    a1 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(row + off[kx] + 8), a1);
                    c0 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(row + off[kx + 1]), c0);
                    c1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(row + off[kx + 1] + 8), c1);
                }
                if (kx < kw) {
                    const __m256 w0 = _mm256_set1_ps(wk[kx]);
                    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(row + off[kx]), a0);
                    a1 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(row + off[kx] + 8), a1);
                }
            }
            const int n = out_w - ox;
            dwp_store(o + ox, dwp_act(_mm256_add_ps(a0, c0), act, vlo, vhi), n);
            if (n > 8) dwp_store(o + ox + 8, dwp_act(_mm256_add_ps(_mm256_add_ps(a1, c1), vb), act, vlo, vhi), n - 8);
        }
    }
}
// ---- In place: `dw_direct` of the AVX2 configuration ------------------------------------------
//
// Depthwise k×k (k ≤ SX_DW_DIRECT_MAX_K), dilation 1, stride 1 or 2, read in place. AVX-512's
// kernel (depthwise_kxk_avx512.c) loads each input row once and makes every tap a lane shift;
// AVX2 has no two-register lane shift (vpermt2ps), so here every tap is its own load, and the
// loads are what make it pay: 8 output columns (a strip) × R output rows a block, R
// accumulators, and each tap vector of an input row feeds every output row of the block it
// reaches — per kernel column, (R − 1)·S + k loads and k broadcasts for R·k FMAs.
//
// Strips whose taps stay inside the row (stride 1) read the plane directly; the others, and
// every stride-2 strip, first copy the block's input rows into a small staging area (columns
// outside the image as zeros through masked loads — vmaskmovps loads only, never masked stores in
// the loop; stride 2 split into even and odd columns so each tap is again one load). Rows above
// and below the image read a zero row. Bias, residual and the activation (any SX_GEMM_ACT_*) are
// applied as the rows are stored.

/// Output rows a block: 7 divides every plane of the 224-input models (112, 56, 28, 14, 7) and
/// leaves 7 accumulators + k weights + a tap within the 16 ymm registers for k ≤ 7.
#ifndef DWA_R
#define DWA_R 7
#endif
/// Input rows a block reads, at most: (DWA_R − 1)·2 + SX_DW_DIRECT_MAX_K.
#define DWA_MAX_ROWS ((DWA_R - 1) * 2 + SX_DW_DIRECT_MAX_K)
/// Floats staged per input row: stride 1, 8 + k − 1 ≤ 23 columns; stride 2, two phases of 16.
#define DWA_ROW 32

static const float dwa_zero_row[DWA_ROW] __attribute__((aligned(32)));

/// Offset of kernel column `kx`'s tap within an input row's pointer: the row itself (stride 1),
/// or its staged phases (stride 2: even columns at 0, odd at 16).
DWP_INLINE int dwa_tap(int S, int kx) { return S == 1 ? kx : (kx & 1) * 16 + (kx >> 1); }

/// Makes the R accumulators opaque at this point (no instruction): FMAs cannot move across it.
#define DWA_PIN7(a) __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]), "+x"(a[6]))
DWP_INLINE void dwa_pin(__m256 *acc, int R) {
    if (R == 7) DWA_PIN7(acc);
    else if (R == 1) __asm__ volatile("" : "+x"(acc[0]));
}

/// One block: output rows `oy .. oy + rows − 1` (≤ R) × the strip's 8 columns from `ox`
/// (`n` of them stored). `rp[j]`: input row `oy·S − pad_top + j` as a tap base.
DWP_INLINE void dwa_block(const float *const *rp, int KH, int KW, int S, int R, int rows, const float *w, __m256 vb,
                          const float *res, float *out, int out_w, int oy, int ox, int n, int act, __m256 vlo,
                          __m256 vhi) {
    __m256 acc[DWA_R];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc[r] = vb;
#pragma clang loop unroll(full)
    for (int kx = 0; kx < KW; kx++) {
        const int off = dwa_tap(S, kx);
        __m256 wk[SX_DW_DIRECT_MAX_K];
#pragma clang loop unroll(full)
        for (int ky = 0; ky < KH; ky++) wk[ky] = _mm256_broadcast_ss(w + ky * KW + kx);
#pragma clang loop unroll(full)
        for (int j = 0; j < (R - 1) * S + KH; j++) {
            // Each tap used where it is loaded: unrolled, clang otherwise schedules the block
            // accumulator by accumulator and keeps the taps in between on the stack (a spill and
            // a reload a tap). The empty asm pins the accumulators' order to the tap loop.
            dwa_pin(acc, R);
            const __m256 t = _mm256_loadu_ps(rp[j] + off);
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                const int ky = j - r * S;
                if (ky >= 0 && ky < KH) acc[r] = _mm256_fmadd_ps(wk[ky], t, acc[r]);
            }
        }
    }
    const __m256i sm = sx_row_mask8(0, n);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        if (r < rows) {
            const ptrdiff_t o = (ptrdiff_t)(oy + r) * out_w + ox;
            __m256 y = acc[r];
            if (res) y = _mm256_add_ps(y, n >= 8 ? _mm256_loadu_ps(res + o) : _mm256_maskload_ps(res + o, sm));
            y = sx_act8(y, act, vlo, vhi);
            if (n >= 8) _mm256_storeu_ps(out + o, y);
            else sx_store_tail8(out + o, y, n);
        }
    }
}

/// Copies input row `row` (NULL: above or below the image) as strip `ix` reads it into `st`:
/// stride 1, columns ix .. ix + 8·vecs − 1; stride 2, the even columns at st[0..15] and the odd
/// ones at st[16..31] (phase index i ↔ column ix + 2i + phase). Columns outside the row read 0.
DWP_INLINE void dwa_stage_row(const float *row, int ix, int in_w, int S, int vecs, float *st) {
    if (S == 1) {
        for (int q = 0; q < vecs; q++) {
            const int c = ix + 8 * q;
            _mm256_store_ps(st + 8 * q, sx_row_load8(row, c, in_w, c >= 0 && c + 8 <= in_w));
        }
        return;
    }
    const __m256 a = sx_row_load8(row, ix, in_w, ix >= 0 && ix + 8 <= in_w);
    const __m256 b = sx_row_load8(row, ix + 8, in_w, ix + 8 >= 0 && ix + 16 <= in_w);
    _mm256_store_ps(st, sx_even8(a, b));
    _mm256_store_ps(st + 16, sx_odd8(a, b));
    const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (int q = 2; q < vecs; q++) {
        const int c = ix + 8 * q;
        const __m256 v = _mm256_permutevar8x32_ps(sx_row_load8(row, c, in_w, c >= 0 && c + 8 <= in_w), split);
        _mm_store_ps(st + 4 * q, _mm256_castps256_ps128(v));
        _mm_store_ps(st + 16 + 4 * q, _mm256_extractf128_ps(v, 1));
    }
}

/// Output rows `oy0 ..< oy1` of one plane: blocks of R rows, each across every strip (the
/// block's input rows stay in L1 from strip to strip). A stride-1 strip whose taps all lie
/// inside the row reads the plane directly; the others (edge strips, every stride-2 strip) copy
/// the block's input rows first (zero-filled, deinterleaved). Staging a strip's rows 28 output
/// rows at a time instead, before its blocks, measured no faster (7×7 and stride-2 14×14 layers
/// 8–14 % slower, 28×28 6–14 % faster; Zen 4, AVX2 forced, one thread).
DWP_INLINE void dwa_plane(const float *x, int in_h, int in_w, int KH, int KW, int S, int R, int pad_top,
                          int pad_left, const float *w, float bias, const float *res, float *out, int oy0, int oy1,
                          int out_w, int act, float lo, float hi) {
    const __m256 vb = _mm256_set1_ps(bias), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const int nj = (R - 1) * S + KH;
    // Vectors of 8 a staged row holds: stride 1, 7 + KW columns; stride 2, 14 + KW.
    const int vecs = S == 1 ? (KW + 14) / 8 : (KW + 21) / 8;
    float stage[DWA_MAX_ROWS][DWA_ROW] __attribute__((aligned(32)));
    const float *rp[DWA_MAX_ROWS];
    for (int oy = oy0; oy < oy1; oy += R) {
        const int rows = oy1 - oy < R ? oy1 - oy : R;
        const int iy0 = oy * S - pad_top;
        for (int ox0 = 0; ox0 < out_w; ox0 += 8) {
            // A row's last strip ends at the row's end (overlapping the one before) where the row
            // has 8 columns and the outputs are not summed in place (res == out): every store whole.
            const int ox = ox0 + 8 > out_w && out_w >= 8 && res != out ? out_w - 8 : ox0;
            const int n = out_w - ox < 8 ? out_w - ox : 8;
            const int ix = ox * S - pad_left;
            const int direct = S == 1 && ix >= 0 && ix + 7 + KW <= in_w;
            for (int j = 0; j < nj; j++) {
                const int iy = iy0 + j;
                if (iy < 0 || iy >= in_h) {
                    rp[j] = dwa_zero_row;
                } else if (direct) {
                    rp[j] = x + (ptrdiff_t)iy * in_w + ix;
                } else {
                    dwa_stage_row(x + (ptrdiff_t)iy * in_w, ix, in_w, S, vecs, stage[j]);
                    rp[j] = stage[j];
                }
            }
            dwa_block(rp, KH, KW, S, R, rows, w, vb, res, out, out_w, oy, ox, n, act, vlo, vhi);
        }
    }
}

#define DWA_CASE(K, S) \
    DWP_TARGET static void dwa_##K##x##K##_s##S(const float *x, int in_h, int in_w, int pad_top, int pad_left, \
                                                const float *w, float bias, const float *res, float *out, int oy0, \
                                                int oy1, int out_w, int act, float lo, float hi) { \
        dwa_plane(x, in_h, in_w, K, K, S, DWA_R, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, act, lo, hi); \
    }
DWA_CASE(3, 1)
DWA_CASE(3, 2)
DWA_CASE(5, 1)
DWA_CASE(5, 2)
DWA_CASE(7, 1)
DWA_CASE(7, 2)

/// Any other size: the same code with run-time sizes, one row a block (its accumulator in a register).
DWP_TARGET static void dwa_any(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top,
                               int pad_left, const float *w, float bias, const float *res, float *out, int oy0,
                               int oy1, int out_w, int act, float lo, float hi) {
    dwa_plane(x, in_h, in_w, kh, kw, stride, 1, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, act, lo, hi);
}

void sxk_dw_direct_avx2(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                        const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w, int act,
                        float lo, float hi) {
    SXK_DW_KXK_DISPATCH(dwa);
}
#endif
