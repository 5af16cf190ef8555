// Helpers shared by SelfXit's AVX-512 kernels (internal header): lane masks and the fused
// activation every epilogue applies.
#ifndef SELFXIT_AVX512_HELPERS_H
#define SELFXIT_AVX512_HELPERS_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "selfxit_gemm.h"
#include "exp_poly.h"

/// Lanes `i` of a 16-float load starting at column `ix` of a row whose columns are `0..<in_w`
/// that lie inside the row (the others are masked off and never read).
static inline __mmask16 sx_row_mask(int ix, int in_w) {
    int lo = ix < 0 ? -ix : 0, hi = in_w - ix;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)((hi >= 16 ? 0xFFFFu : ((1u << hi) - 1u)) & ~((1u << lo) - 1u));
}

/// `e^x`, total like avx2_helpers.h's `sx_exp8` and Swift's `exp16`: no float → int conversion,
/// so NaN → NaN and nothing traps; +inf above 88.72 (where e^x passes FLT_MAX: `scalef` overflows
/// to +inf by itself), 0 below −87.34 (masked, as the others: no denormal results).
/// e^x = 2^n · e^r with n = round(x·log2 e) (`roundscale`), r = x − n·ln 2 in two FMA steps and
/// e^r by the shared degree-5 polynomial (exp_poly.h: relative error 1.6e-7); 2^n applied by
/// `scalef`, which needs no exponent bit arithmetic and no range fix-ups. 14 vector operations
/// where the Cephes form with integer exponent arithmetic and two blends took 22: SiLU 0.44–0.46 →
/// 0.35–0.36 ns an element from L1 (tools/silu_bench.c, one thread, Intel Xeon Emerald Rapids;
/// EfficientNet-B0 applies it to 6.2 M values a frame; BENCHMARKS §7.24).
__attribute__((target("avx512f,fma"), always_inline))
static inline __m512 sx_exp512(__m512 x) {
    // Constant first: max/min return the second operand when either is NaN, so NaN passes.
    __m512 xc = _mm512_min_ps(_mm512_set1_ps(88.8f), _mm512_max_ps(_mm512_set1_ps(-88.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(SX_EXP_LN2_HI), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(SX_EXP_LN2_LO), r);
    __m512 p = SX_EXP_POLY(_mm512_fmadd_ps, _mm512_set1_ps, r);  // e^r (exp_poly.h)
    // Lanes below −87.34 (not NaN: unordered compares true) get 0.
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654022216797f), _CMP_NLT_UQ);
    return _mm512_maskz_scalef_ps(keep, p, n);
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
