// Helpers shared by SelfXit's AVX2 kernels (internal header): the total exp and the fused
// activation every AVX2 epilogue applies (the AVX2 twin of avx512_helpers.h).
#ifndef SELFXIT_AVX2_HELPERS_H
#define SELFXIT_AVX2_HELPERS_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "selfxit_gemm.h"
#include "exp_poly.h"

/// e^x on 8 lanes, total like the Swift exp16 (docs/HARDENING.md): no float → int conversion
/// (n = round(x/ln2) through the 1.5·2^23 add, 2^n built from the bits with wrapping integer
/// ops), NaN → NaN, +inf above 88.72, 0 below −87.34, so nothing traps.
__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256 sx_exp8(__m256 x) {
    // Constant first: max/min return the second operand when either is NaN, so NaN passes.
    __m256 xc = _mm256_min_ps(_mm256_set1_ps(88.3f), _mm256_max_ps(_mm256_set1_ps(-87.3f), x));
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SX_EXP_LN2_HI), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(SX_EXP_LN2_LO), r);
    __m256 p = SX_EXP_POLY(_mm256_fmadd_ps, _mm256_set1_ps, r);  // e^r (exp_poly.h)
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000)),
                                                      _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, _mm256_set1_ps(88.72283935546875f), _CMP_GT_OQ));
    return _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654022216797f), _CMP_LT_OQ));
}

/// Transposes 8 vectors in place (`v[i]` lane `j` ↔ `v[j]` lane `i`): B's 8-row packing and the
/// channel-major epilogue.
__attribute__((target("avx2,fma,avx"), always_inline))
static inline void sx_transpose8(__m256 *v) {
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    // u0 = column 0 (rows 0–3) | column 4, u1 = 1 | 5, u2 = 2 | 6, u3 = 3 | 7; u4..u7 rows 4–7.
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    v[0] = _mm256_permute2f128_ps(u0, u4, 0x20); v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    v[2] = _mm256_permute2f128_ps(u2, u6, 0x20); v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    v[4] = _mm256_permute2f128_ps(u0, u4, 0x31); v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    v[6] = _mm256_permute2f128_ps(u2, u6, 0x31); v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/// Lanes `i` with `0 ≤ c + i < in_w` (a row's columns), as a vmaskmovps mask.
__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256i sx_row_mask8(int c, int in_w) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(in_w - c), lane),
                            _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(-c - 1)));
}

/// 8 floats of `row` from column `c`, zero outside `0..<in_w` (masked-off lanes are never read);
/// `inside`: all 8 are in the row, a plain load.
__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256 sx_row_load8(const float *row, int c, int in_w, int inside) {
    return inside ? _mm256_loadu_ps(row + c) : _mm256_maskload_ps(row + c, sx_row_mask8(c, in_w));
}

/// The even floats of a:b (16 consecutive floats → 8), and the odd ones: stride-2 rows.
__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256 sx_even8(__m256 a, __m256 b) {
    const __m256 t = _mm256_shuffle_ps(a, b, 0x88);  // a0 a2 b0 b2 | a4 a6 b4 b6
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}
__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256 sx_odd8(__m256 a, __m256 b) {
    const __m256 t = _mm256_shuffle_ps(a, b, 0xDD);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}

/// Stores the first `n` (0..7) lanes of `v` at `p` as 4 + 2 + 1 floats. AMD's vmaskmovps store
/// is slow (microcoded): where the depthwise kernels stored each row's last 6 of a 14-pixel row
/// with it, that store took a sixth of the layer's time (perf, Zen 4).
__attribute__((target("avx2,fma,avx"), always_inline))
static inline void sx_store_tail8(float *p, __m256 v, int n) {
    __m128 part = _mm256_castps256_ps128(v);
    if (n & 4) {
        _mm_storeu_ps(p, part);
        part = _mm256_extractf128_ps(v, 1);
        p += 4;
    }
    if (n & 2) {
        _mm_storel_pi((__m64 *)p, part);
        part = _mm_movehl_ps(part, part);
        p += 2;
    }
    if (n & 1) _mm_store_ss(p, part);
}

/// `1 / (1 + e^−x)` on 8 lanes (NaN → NaN).
__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256 sx_sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, sx_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/// `act` of `v` for NONE / RELU / CLIP only — the activations the AVX2 configuration's GEMM,
/// direct and depthwise epilogues are given (it lists no others in `fused_acts`). NaN stays NaN:
/// the value goes second into max/min (see `sx_act512`).
__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256 sx_act8_basic(__m256 v, int act, __m256 lo, __m256 hi) {
    if (act == SX_GEMM_ACT_RELU) return _mm256_max_ps(_mm256_setzero_ps(), v);
    if (act == SX_GEMM_ACT_CLIP) return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
    return v;
}

/// `act` (`SX_GEMM_ACT_*`) of `v`, as `sx_act512`: NaN stays NaN (the value goes second into
/// max/min), −0 stays −0 under ReLU; HardSwish, SiLU and Sigmoid too (the AVX2 configuration
/// does not list them in `fused_acts` — measured slower in its 3×3 depthwise kernels and level in
/// its GEMM epilogues — but its grouped kernel and `dw_direct` apply whatever they are given).
__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256 sx_act8(__m256 v, int act, __m256 lo, __m256 hi) {
    if (act == SX_GEMM_ACT_RELU) return _mm256_max_ps(_mm256_setzero_ps(), v);
    if (act == SX_GEMM_ACT_CLIP) return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
    if (act == SX_GEMM_ACT_HARDSWISH) {
        __m256 g = _mm256_fmadd_ps(v, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
        g = _mm256_min_ps(_mm256_set1_ps(1.0f), _mm256_max_ps(_mm256_setzero_ps(), g));
        return _mm256_mul_ps(v, g);
    }
    if (act == SX_GEMM_ACT_SILU) return _mm256_mul_ps(v, sx_sigmoid8(v));
    if (act == SX_GEMM_ACT_SIGMOID) return sx_sigmoid8(v);
    return v;
}
#endif
#endif
