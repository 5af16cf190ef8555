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

/// One input row's 3-tap stride-2 maxima for the 8 outputs of a strip whose windows start at
/// input column `b` (b, b+2, …, b+14): the maxima of columns (i, i+1, i+2) for 16 consecutive i,
/// then their even lanes; columns outside the row read as −∞. `max_ps` drops a NaN of one
/// operand, so `*nan` collects the lanes where a column read (b … b+17) is NaN: the caller then
/// redoes the plane NaN-exactly.
__attribute__((always_inline))
AVX2_TARGET
static inline __m256 maxpool_row3_s2(const float *row, int b, int in_w, __m256 ninf, __m256 *nan) {
    const __m256 a0 = load_row8(row, b, in_w, ninf), a1 = load_row8(row, b + 8, in_w, ninf);
    const __m256 b0 = load_row8(row, b + 1, in_w, ninf), b1 = load_row8(row, b + 9, in_w, ninf);
    const __m256 c0 = load_row8(row, b + 2, in_w, ninf), c1 = load_row8(row, b + 10, in_w, ninf);
    // a0 and a1 hold columns b … b+15, c1 b+10 … b+17.
    *nan = _mm256_or_ps(*nan, _mm256_or_ps(_mm256_cmp_ps(a0, a1, _CMP_UNORD_Q), _mm256_cmp_ps(c1, c1, _CMP_UNORD_Q)));
    const __m256 m0 = _mm256_max_ps(_mm256_max_ps(a0, b0), c0), m1 = _mm256_max_ps(_mm256_max_ps(a1, b1), c1);
    return sx_even8(m0, m1);
}

/// Output columns a block of the separable pooling takes (its three row buffers, 3 KB, on the stack).
#define MAXPOOL_BLOCK 256

/// Row `iy`'s horizontal maxima for output columns `ox0 ..< ox0 + w` into `h` (whole vectors: `h`
/// holds w rounded up to 8); −∞ for a row outside the image.
__attribute__((always_inline))
AVX2_TARGET
static inline void maxpool_hrow3_s2(const float *x, int iy, int in_h, int in_w, int pad_left, int ox0, int w, float *h,
                                    __m256 ninf, __m256 *nan) {
    if (iy < 0 || iy >= in_h) {
        for (int j = 0; j < w; j += 8) _mm256_store_ps(h + j, ninf);
        return;
    }
    const float *row = x + (ptrdiff_t)iy * in_w;
    for (int j = 0; j < w; j += 8) _mm256_store_ps(h + j, maxpool_row3_s2(row, 2 * (ox0 + j) - pad_left, in_w, ninf, nan));
}

/// 3×3 stride-2 max pooling (ResNet's and DenseNet's after the stem: 112×112 → 56×56 a plane)
/// computed separably, as AVX-512's (depthwise_avx512.c): each input row's horizontal maxima once,
/// into a row buffer shared by the two output rows that read it, then two vertical maxima an
/// output vector — per 8 outputs about 9 loads, 3 shuffles and 8 maxima where the general loop
/// below takes 18 loads, 18 shuffles, 9 maxima and 9 NaN compares. Rows are read in order, whole
/// up to `MAXPOOL_BLOCK` outputs: in a model the plane comes from L3, and 8-column strips down it
/// (AVX-512's order) ran 0.32–0.48 ms inside ResNet-50 where the rows run 0.26–0.27 (2 threads,
/// Zen 3). Returns 0 when the plane holds a NaN (outputs then incomplete: redo it).
AVX2_TARGET
static int maxpool3x3_s2_avx2(const float *x, int in_h, int in_w, int pad_top, int pad_left, float *out, int out_h,
                              int out_w) {
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    __m256 nan = _mm256_setzero_ps();
    float rows[3][MAXPOOL_BLOCK] __attribute__((aligned(32)));
    for (int ox0 = 0; ox0 < out_w; ox0 += MAXPOOL_BLOCK) {
        const int w = out_w - ox0 < MAXPOOL_BLOCK ? out_w - ox0 : MAXPOOL_BLOCK;
        // `top`: the maxima of input row 2·oy − pad_top (the bottom row of the output row above).
        float *top = rows[0], *mid = rows[1], *bot = rows[2];
        int iy = -pad_top;
        maxpool_hrow3_s2(x, iy, in_h, in_w, pad_left, ox0, w, top, ninf, &nan);
        for (int oy = 0; oy < out_h; oy++, iy += 2) {
            maxpool_hrow3_s2(x, iy + 1, in_h, in_w, pad_left, ox0, w, mid, ninf, &nan);
            maxpool_hrow3_s2(x, iy + 2, in_h, in_w, pad_left, ox0, w, bot, ninf, &nan);
            float *o = out + (ptrdiff_t)oy * out_w + ox0;
            for (int j = 0; j < w; j += 8) {
                const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_load_ps(top + j), _mm256_load_ps(mid + j)),
                                               _mm256_load_ps(bot + j));
                if (w - j >= 8) _mm256_storeu_ps(o + j, m);
                else sx_store_tail8(o + j, m, w - j);
            }
            float *t = top;
            top = bot;
            bot = t;
        }
    }
    return _mm256_movemask_ps(nan) == 0;
}

AVX2_TARGET
void sxk_maxpool_direct_avx2(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                             float *out, int out_h, int out_w) {
    if (kh == 3 && kw == 3 && stride == 2 && maxpool3x3_s2_avx2(x, in_h, in_w, pad_top, pad_left, out, out_h, out_w)) return;
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
