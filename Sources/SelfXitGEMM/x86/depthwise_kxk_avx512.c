// AVX-512 depthwise convolution for any kernel size up to SX_DW_DIRECT_MAX_K (5×5 in
// MobileNetV3 and EfficientNet, 7×7 in ConvNeXt), dilation 1, stride 1 or 2, read in place:
// the `dw_direct` kernel of the AVX-512 configuration (configs/kernel_config.c).
//
// Before it, every depthwise shape but 3×3 copied each plane into a zero-padded, phase-split
// buffer and ran a Swift SIMD16 loop, the activation as another pass: MobileNetV3-Large's 5×5
// layers took 0.9–1.7 ms each at batch 8 (2 threads, Zen 4), 15× their FLOPs at peak.
//
// How: 16 output columns (one strip) × R output rows at a time, R accumulators. Each input row
// of the block is loaded once as two (stride 1) or three (stride 2, deinterleaved into even and
// odd columns) vectors with masked loads — columns outside the image read as 0 and are never
// touched — and every kernel column's tap is a lane shift of those (`vpermt2ps`), which feeds
// each of the R output rows that row reaches. Kernel sizes 3, 5, 7 with either stride are
// compiled with constant sizes (loops unrolled, weights broadcast from memory into the FMAs);
// other sizes take the same code with run-time sizes. Bias, residual and the activation
// (ReLU, Clip, HardSwish, SiLU, Sigmoid) are applied as the rows are stored.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx512_helpers.h"

// The loops below are unrolled fully where the sizes are constants (the 3/5/7 cases); the
// run-time-size fallback inlines the same loops, which cannot be, and clang would warn for it.
#pragma clang diagnostic ignored "-Wpass-failed"

#define DWK_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
#define DWK_INLINE DWK_TARGET __attribute__((always_inline)) static inline

/// Lanes `i` ← (lo:hi)[i + k] (lo lanes 0..15, hi lanes 16..31), 0 ≤ k ≤ 15.
DWK_INLINE __m512 dwk_shift(__m512 lo, __m512 hi, int k) {
    if (k == 0) return lo;
    const __m512i idx = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(k));
    return _mm512_permutex2var_ps(lo, idx, hi);
}

/// One input row's vectors for a strip starting at column `ix` (`m`: the strip's load masks).
/// Stride 1: v[0] = columns ix..ix+15, v[1] = ix+16..ix+31. Stride 2: v[0] / v[1] = the even /
/// odd columns of ix..ix+31, v[2] / v[3] = those of ix+32..ix+47 (lanes 0..7).
DWK_INLINE void dwk_load_row(const float *p, int S, const __mmask16 *m, __m512 *v) {
    if (S == 1) {
        v[0] = _mm512_maskz_loadu_ps(m[0], p);
        v[1] = _mm512_maskz_loadu_ps(m[1], p + 16);
    } else {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        __m512 a = _mm512_maskz_loadu_ps(m[0], p), b = _mm512_maskz_loadu_ps(m[1], p + 16);
        __m512 c = _mm512_maskz_loadu_ps(m[2], p + 32);
        v[0] = _mm512_permutex2var_ps(a, even, b);
        v[1] = _mm512_permutex2var_ps(a, odd, b);
        v[2] = _mm512_permutexvar_ps(even, c);  // lanes 0..7 are c's even columns
        v[3] = _mm512_permutexvar_ps(odd, c);
    }
}

/// Kernel column `kx`'s tap for the strip: input column ix + S·i + kx in lane i.
DWK_INLINE __m512 dwk_tap(const __m512 *v, int S, int kx) {
    if (S == 1) return dwk_shift(v[0], v[1], kx);
    return (kx & 1) ? dwk_shift(v[1], v[3], kx >> 1) : dwk_shift(v[0], v[2], kx >> 1);
}

/// R output rows (`oy` on) of one strip, `rows` of them stored (≤ R). Input rows outside the
/// image add nothing (zero padding); rows inside it past the last output row are read but
/// only feed accumulators that are not stored.
DWK_INLINE void dwk_block(const float *x, int in_h, int in_w, int ix, int oy, int pad_top, const float *w,
                          int KH, int KW, int S, int R, int rows, const __mmask16 *m, __m512 vb, const float *res,
                          float *out, int out_w, int ox, __mmask16 sm, int act, __m512 vlo, __m512 vhi) {
    __m512 acc[8];  // R ≤ 8
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc[r] = vb;
    const int iy0 = oy * S - pad_top;
#pragma clang loop unroll(full)
    for (int j = 0; j < (R - 1) * S + KH; j++) {
        const int iy = iy0 + j;
        if (iy < 0 || iy >= in_h) continue;
        __m512 v[4];
        dwk_load_row(x + (ptrdiff_t)iy * in_w + ix, S, m, v);
#pragma clang loop unroll(full)
        for (int kx = 0; kx < KW; kx++) {
            const __m512 t = dwk_tap(v, S, kx);
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                const int ky = j - r * S;
                if (ky >= 0 && ky < KH) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(w[ky * KW + kx]), t, acc[r]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        if (r >= rows) break;
        const ptrdiff_t o = (ptrdiff_t)(oy + r) * out_w + ox;
        __m512 y = acc[r];
        if (res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(sm, res + o));
        _mm512_mask_storeu_ps(out + o, sm, sx_act512(y, act, vlo, vhi));
    }
}

/// Output rows `oy0..<oy1` of one plane: strips of 16 columns, blocks of R rows down each strip
/// (a strip's rows reuse its masks; a block's input rows stay in L1 for the next block).
DWK_INLINE void dwk_plane(const float *x, int in_h, int in_w, int KH, int KW, int S, int R, int pad_top,
                          int pad_left, const float *w, float bias, const float *res, float *out, int oy0, int oy1,
                          int out_w, int act, float lo, float hi) {
    const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int ox = 0; ox < out_w; ox += 16) {
        const int n = out_w - ox;
        const __mmask16 sm = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
        const int ix = ox * S - pad_left;
        __mmask16 m[3];
        for (int q = 0; q < 3; q++) m[q] = sx_row_mask(ix + 16 * q, in_w);
        for (int oy = oy0; oy < oy1; oy += R) {
            const int rows = oy1 - oy < R ? oy1 - oy : R;
            dwk_block(x, in_h, in_w, ix, oy, pad_top, w, KH, KW, S, R, rows, m, vb, res, out, out_w, ox, sm, act, vlo, vhi);
        }
    }
}

/// Output rows per block. Stride 1: 4 accumulators, each input row loaded (K + 3)/4 times per
/// output row instead of K times; its two loads and K − 1 shifts feed up to 4·K FMAs, so the
/// FMAs bound it. Stride 2: a row costs 3 loads, 4 deinterleaving permutes and the shifts but
/// reaches only ⌈K/2⌉ output rows, so 8 rows a block (5×5: 19 input rows for 8 outputs, not 11
/// for 4) — 8–9 % faster on EfficientNet's and MobileNetV3's 5×5 stride-2 layers (Zen 4, one
/// thread, the two compiled side by side). Loading each tap with its own masked loads instead
/// of shifting (as the 3×3 kernel does) measured 10–80 % slower here.
#ifndef DWK_R1
#define DWK_R1 4
#endif
#ifndef DWK_R2
#define DWK_R2 8
#endif

#define DWK_CASE(K, S) \
    DWK_TARGET static void dwk_##K##x##K##_s##S(const float *x, int in_h, int in_w, int pad_top, int pad_left, \
                                                const float *w, float bias, const float *res, float *out, int oy0, \
                                                int oy1, int out_w, int act, float lo, float hi) { \
        dwk_plane(x, in_h, in_w, K, K, S, S == 1 ? DWK_R1 : DWK_R2, pad_top, pad_left, w, bias, res, out, oy0, oy1, \
                  out_w, act, lo, hi); \
    }
DWK_CASE(3, 1)
DWK_CASE(3, 2)
DWK_CASE(5, 1)
DWK_CASE(5, 2)
DWK_CASE(7, 1)
DWK_CASE(7, 2)

/// Any other size: the same code with run-time sizes (loops not unrolled; R = 1 so the
/// accumulator stays in a register).
DWK_TARGET static void dwk_any(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top,
                               int pad_left, const float *w, float bias, const float *res, float *out, int oy0,
                               int oy1, int out_w, int act, float lo, float hi) {
    dwk_plane(x, in_h, in_w, kh, kw, stride, 1, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, act, lo, hi);
}

void sxk_dw_direct_avx512(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                          const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                          int act, float lo, float hi) {
    SXK_DW_KXK_DISPATCH(dwk);
}
#endif
