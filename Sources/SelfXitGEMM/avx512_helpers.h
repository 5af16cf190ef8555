// Helpers shared by SelfXit's AVX-512 kernels (internal header): lane masks and the fused
// activation every epilogue applies.
#ifndef SELFXIT_AVX512_HELPERS_H
#define SELFXIT_AVX512_HELPERS_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "selfxit_gemm.h"

/// Lanes `i` of a 16-float load starting at column `ix` of a row whose columns are `0..<in_w`
/// that lie inside the row (the others are masked off and never read).
static inline __mmask16 sx_row_mask(int ix, int in_w) {
    int lo = ix < 0 ? -ix : 0, hi = in_w - ix;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)((hi >= 16 ? 0xFFFFu : ((1u << hi) - 1u)) & ~((1u << lo) - 1u));
}

/// `e^x`, total like activation_x86.c's `exp8` and Swift's `exp16` (the same Cephes
/// polynomial; no float → int conversion, so NaN → NaN and nothing traps; +inf above 88.72,
/// 0 below −87.34).
__attribute__((target("avx512f,fma"), always_inline))
static inline __m512 sx_exp512(__m512 x) {
    __m512 xc = _mm512_min_ps(_mm512_set1_ps(88.3f), _mm512_max_ps(_mm512_set1_ps(-87.3f), x));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504088896341f), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000)),
                                                      _mm512_set1_epi32(127)), 23);
    __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(88.72283935546875f), _CMP_GT_OQ), _mm512_set1_ps(__builtin_inff()));
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654022216797f), _CMP_LT_OQ), _mm512_setzero_ps());
}

/// `act` (`SX_GEMM_ACT_*`) of `v`; `lo`/`hi` are the Clip bounds, broadcast.
/// NaN stays NaN (as ONNX Runtime's Relu/Clip): `max_ps(a, b)` is `a > b ? a : b`, so it
/// returns b when either is NaN — the value goes second. (With `v` first, a NaN became 0 and
/// a NaN pixel a confident-looking answer.) -0 stays -0 like ORT's Relu.
/// HardSwish `x·min(max(x/6 + 0.5, 0), 1)`, Sigmoid `1 / (1 + e^−x)` and SiLU `x·sigmoid(x)`
/// (the formulas of Activation.swift; NaN stays NaN the same way) are applied here too, so
/// MobileNetV3's and EfficientNet's convolutions store activated values instead of making a
/// second pass over their output (`sx_kernel_config.fused_acts`).
__attribute__((target("avx512f,fma"), always_inline))
static inline __m512 sx_act512(__m512 v, int act, __m512 lo, __m512 hi) {
    if (act == SX_GEMM_ACT_RELU) return _mm512_max_ps(_mm512_setzero_ps(), v);
    if (act == SX_GEMM_ACT_CLIP) return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
    if (act == SX_GEMM_ACT_HARDSWISH) {
        __m512 g = _mm512_fmadd_ps(v, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
        g = _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(_mm512_setzero_ps(), g));
        return _mm512_mul_ps(v, g);
    }
    if (act == SX_GEMM_ACT_SILU || act == SX_GEMM_ACT_SIGMOID) {
        const __m512 one = _mm512_set1_ps(1.0f);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, sx_exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        return act == SX_GEMM_ACT_SILU ? _mm512_mul_ps(v, s) : s;
    }
    return v;
}

/// Transposes 16 vectors in place (`v[i]` lane `j` ↔ `v[j]` lane `i`): 32-bit then 64-bit
/// interleaves within 128-bit lanes, then two rounds of 128-bit lane shuffles (64 shuffles).
__attribute__((target("avx512f"), always_inline))
static inline void sx_transpose16(__m512 *v) {
    __m512 t[16], u[16];
#pragma clang loop unroll(full)
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    // u[4g + j], 128-bit lane L: rows 4g..4g+3 of column 4L + j.
#pragma clang loop unroll(full)
    for (int g = 0; g < 4; g++) {
        __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
        __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
#pragma clang loop unroll(full)
    for (int j = 0; j < 4; j++) {
        __m512 x0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), x1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
        __m512 y0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44), y1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
        v[j] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        v[4 + j] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        v[8 + j] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        v[12 + j] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
}
#endif

#endif
