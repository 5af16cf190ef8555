// Vector sigmoid and SiLU for the AVX-512 and AVX2 configurations. Total like the Swift exp16
// (docs/HARDENING.md): no float → int conversion, NaN → NaN, e^x → +inf above 88.72 and 0 below
// −87.34, so nothing traps and no lane needs a range check. AVX2 (`sx_exp8`): n = round(x/ln2)
// through the 1.5·2^23 add, 2^n built from the bits with wrapping integer ops; AVX-512
// (`sx_exp512`): n by `roundscale`, 2^n by `scalef`.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx512_helpers.h"
#include "../avx2_helpers.h"

__attribute__((target("avx2,fma,avx")))
static void map_avx2(const float *x, float *y, size_t n, int silu) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), s = sx_sigmoid8(v);
        _mm256_storeu_ps(y + i, silu ? _mm256_mul_ps(v, s) : s);
    }
    if (i < n) {
        float t[8] = {0};
        for (size_t j = 0; j < n - i; j++) t[j] = x[i + j];
        __m256 v = _mm256_loadu_ps(t), s = sx_sigmoid8(v);
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
