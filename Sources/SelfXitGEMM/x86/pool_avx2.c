// AVX2 max pooling read in place (`sx_maxpool_direct`) of the AVX2 configuration: 8 outputs a
// vector, stride-2 rows deinterleaved in registers. Only the strips at a row's edges take masked
// loads (vmaskmovps costs on AVX2 what AVX-512's masked loads do not: the in-place depthwise port
// that masked every load lost to the padded copy, BENCHMARKS §7.3); the rest are plain loads.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx2_helpers.h"

#define AVX2_TARGET __attribute__((target("avx2,fma,avx")))

/// 8 floats of a row from column `ix` (`row` is the row's start), −inf outside `0..<in_w`.
__attribute__((always_inline))
AVX2_TARGET
static inline __m256 load_row8(const float *row, int ix, int in_w, __m256 ninf) {
    if (ix >= 0 && ix + 8 <= in_w) return _mm256_loadu_ps(row + ix);
    const __m256i ok = sx_row_mask8(ix, in_w);
    return _mm256_blendv_ps(ninf, _mm256_maskload_ps(row + ix, ok), _mm256_castsi256_ps(ok));
}

/// 8 taps of a window column from input column `ix`: stride 1 consecutive, stride 2 every other.
__attribute__((always_inline))
AVX2_TARGET
static inline __m256 pool_taps(const float *row, int ix, int in_w, int stride, __m256 ninf) {
    if (stride == 1) return load_row8(row, ix, in_w, ninf);
    if (ix >= 0 && ix + 16 <= in_w) return sx_even8(_mm256_loadu_ps(row + ix), _mm256_loadu_ps(row + ix + 8));
    return sx_even8(load_row8(row, ix, in_w, ninf), load_row8(row, ix + 8, in_w, ninf));
}

AVX2_TARGET
void sxk_maxpool_direct_avx2(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                             float *out, int out_h, int out_w) {
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff()), qnan = _mm256_set1_ps(__builtin_nanf(""));
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * stride - pad_top;
        const int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = in_h - iy0 < kh ? in_h - iy0 : kh;
        float *o = out + (ptrdiff_t)oy * out_w;
        for (int ox = 0; ox < out_w; ox += 8) {
            __m256 m = ninf;
            // A window holding NaN gives NaN (as ONNX Runtime): max_ps drops a NaN on one side or
            // the other, so NaN lanes are collected and put back at the end.
            __m256 nan = _mm256_setzero_ps();
            for (int ky = ky0; ky < ky1; ky++) {
                const float *row = x + (ptrdiff_t)(iy0 + ky) * in_w;
                for (int kx = 0; kx < kw; kx++) {
                    __m256 v = pool_taps(row, ox * stride + kx - pad_left, in_w, stride, ninf);
                    m = _mm256_max_ps(m, v);
                    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
                }
            }
            m = _mm256_blendv_ps(m, qnan, nan);
            if (out_w - ox >= 8) _mm256_storeu_ps(o + ox, m);
            else sx_store_tail8(o + ox, m, out_w - ox);
        }
    }
}
#endif
