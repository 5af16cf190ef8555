// The AVX-512 epilogue activation with the codes beyond ReLU/Clip (HardSwish, SiLU, Sigmoid)
// that the in-place depthwise kernels apply as they store (internal header). Kept apart from
// `sx_act512` (avx512_helpers.h), which every GEMM epilogue inlines: the exp polynomial would
// only weigh on those register-tight tiles, and the Swift planners send these codes only to
// kernels whose configuration lists them (`sx_kernel_config.dw_fused_acts`).
#ifndef SELFXIT_AVX512_ACT_EXT_H
#define SELFXIT_AVX512_ACT_EXT_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "../avx512_helpers.h"

/// `e^x`, total like activation_x86.c's `exp16v` and Swift's `exp16` (the same Cephes
/// polynomial; no float → int conversion, so NaN → NaN and nothing traps; +inf above 88.72,
/// 0 below −87.34).
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx"), always_inline))
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

/// `act` of `v` for every `SX_GEMM_ACT_*` code: ReLU/Clip as `sx_act512`; HardSwish
/// `x·min(max(x/6 + 0.5, 0), 1)` (NaN stays NaN: the clamp's constants go first, so max/min
/// return the NaN operand), Sigmoid `1 / (1 + e^−x)`, SiLU `x·sigmoid(x)` — the formulas of
/// Activation.swift, so fused and separate passes agree to an ulp or two.
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx"), always_inline))
static inline __m512 sx_act512x(__m512 v, int act, __m512 lo, __m512 hi) {
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
    return sx_act512(v, act, lo, hi);
}
#endif

#endif
