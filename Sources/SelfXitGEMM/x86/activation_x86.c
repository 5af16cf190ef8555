// Vector sigmoid and SiLU for the AVX-512 and AVX2 configurations. Total like the Swift exp16
// (docs/HARDENING.md): no float → int conversion (n = round(x/ln2) through the 1.5·2^23 add,
// 2^n built from the bits with wrapping integer ops), NaN → NaN, e^x → +inf above 88.72 and 0
// below −87.34, so nothing traps and no lane needs a range check.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx512_helpers.h"

#define EXP_LO -87.3f
#define EXP_HI 88.3f
#define EXP_INF 88.72283935546875f
#define EXP_ZERO -87.33654022216797f

__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256 exp8(__m256 x) {
    // Constant first: max/min return the second operand when either is NaN, so NaN passes.
    __m256 xc = _mm256_min_ps(_mm256_set1_ps(EXP_HI), _mm256_max_ps(_mm256_set1_ps(EXP_LO), x));
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000)),
                                                      _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, _mm256_set1_ps(EXP_INF), _CMP_GT_OQ));
    return _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(EXP_ZERO), _CMP_LT_OQ));
}

__attribute__((target("avx2,fma,avx"), always_inline))
static inline __m256 sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

__attribute__((target("avx2,fma,avx")))
static void map_avx2(const float *x, float *y, size_t n, int silu) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), s = sigmoid8(v);
        _mm256_storeu_ps(y + i, silu ? _mm256_mul_ps(v, s) : s);
    }
    if (i < n) {
        float t[8] = {0};
        for (size_t j = 0; j < n - i; j++) t[j] = x[i + j];
        __m256 v = _mm256_loadu_ps(t), s = sigmoid8(v);
        _mm256_storeu_ps(t, silu ? _mm256_mul_ps(v, s) : s);
        for (size_t j = 0; j < n - i; j++) y[i + j] = t[j];
    }
}

void sxk_sigmoid_avx2(const float *x, float *y, size_t n) { map_avx2(x, y, n, 0); }
void sxk_silu_avx2(const float *x, float *y, size_t n) { map_avx2(x, y, n, 1); }

#define AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))

AVX512_TARGET
static void map_avx512(const float *x, float *y, size_t n, int silu) {
    const int act = silu ? SX_GEMM_ACT_SILU : SX_GEMM_ACT_SIGMOID;
    const __m512 unused = _mm512_setzero_ps();  // sx_act512's Clip bounds
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(y + i, m, sx_act512(v, act, unused, unused));
    }
}

void sxk_sigmoid_avx512(const float *x, float *y, size_t n) { map_avx512(x, y, n, 0); }
void sxk_silu_avx512(const float *x, float *y, size_t n) { map_avx512(x, y, n, 1); }
#endif
