// AVX2 in-place depthwise 3×3 (`sx_dw3x3_direct`) of the AVX2 configuration: 8-column strips
// from top to bottom, an output row's three input rows of taps kept from the row above. The
// first AVX2 port masked every load (vmaskmovps: 9 masked loads per 8 outputs) and lost to the
// padded copy + dw3x3_plane by 14–215 % (BENCHMARKS §7.3); here only the strips that reach past
// a row's ends are masked, the others take plain loads (stride 2: 16 columns a tap row, the even
// and odd ones split in registers), and each (stride, activation) pair has its own copy.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx2_helpers.h"

#define AVX2_TARGET __attribute__((target("avx2,fma,avx")))

#define act8 sx_act8_basic

/// 8 floats of a row from column `ix`, zero outside `0..<in_w` (`masked`, a constant of each
/// inlined copy: the strip reaches past an end; masked-off lanes are never read).
__attribute__((always_inline))
AVX2_TARGET
static inline __m256 row8(const float *row, int ix, int in_w, const int masked) {
    if (!masked) return _mm256_loadu_ps(row + ix);
    return _mm256_maskload_ps(row + ix, sx_row_mask8(ix, in_w));
}

/// One input row's three tap vectors for the 8 outputs of a strip starting at input column `ix`.
/// Stride 2 leaves the lanes in the order of outputs 0 1 4 5 2 3 6 7: two in-lane shuffles of
/// columns ix … ix+15 give the even and odd columns so, a third of ix+2 … ix+9 and ix+9 … ix+16
/// the even ones from ix+2. All taps agree, and the sum is put in order once, before it is stored
/// (the first version put each tap vector in order: 2 lane-crossing permutes, a blend and a
/// broadcast a row).
__attribute__((always_inline))
AVX2_TARGET
static inline void taps8(const float *row, int ix, int in_w, const int stride, const int masked, __m256 *t0,
                         __m256 *t1, __m256 *t2) {
    if (stride == 1) {
        *t0 = row8(row, ix, in_w, masked);
        *t1 = row8(row, ix + 1, in_w, masked);
        *t2 = row8(row, ix + 2, in_w, masked);
    } else {
        const __m256 a = row8(row, ix, in_w, masked), b = row8(row, ix + 8, in_w, masked);
        const __m256 a2 = row8(row, ix + 2, in_w, masked), b2 = row8(row, ix + 9, in_w, masked);
        *t0 = _mm256_shuffle_ps(a, b, 0x88);   // ix + 0 2 8 10 | 4 6 12 14
        *t1 = _mm256_shuffle_ps(a, b, 0xDD);   // ix + 1 3 9 11 | 5 7 13 15
        *t2 = _mm256_shuffle_ps(a2, b2, 0xD8);  // ix + 2 4 10 12 | 6 8 14 16
    }
}

/// `taps8` of input row `iy`, zeros for a row outside the image.
__attribute__((always_inline))
AVX2_TARGET
static inline void taps8_checked(const float *x, int iy, int in_h, int in_w, int ix, const int stride, const int masked,
                                 __m256 *t0, __m256 *t1, __m256 *t2) {
    if (iy < 0 || iy >= in_h) {
        *t0 = *t1 = *t2 = _mm256_setzero_ps();
        return;
    }
    taps8(x + (ptrdiff_t)iy * in_w, ix, in_w, stride, masked, t0, t1, t2);
}

/// One output vector from its three input rows' taps: bias + the 9 products (the portable
/// kernel's order: column 0's taps with the bias, columns 1 and 2 apart), the residual, `act`.
__attribute__((always_inline))
AVX2_TARGET
static inline void store8(const __m256 *wv, __m256 vb, __m256 a0, __m256 a1, __m256 a2, __m256 b0, __m256 b1, __m256 b2,
                          __m256 c0, __m256 c1, __m256 c2, const int stride, const int act, __m256 vlo, __m256 vhi,
                          const float *res, float *o, int n, __m256i sm) {
    __m256 s0 = _mm256_fmadd_ps(wv[0], a0, vb), s1 = _mm256_mul_ps(wv[1], a1), s2 = _mm256_mul_ps(wv[2], a2);
    s0 = _mm256_fmadd_ps(wv[3], b0, s0);
    s1 = _mm256_fmadd_ps(wv[4], b1, s1);
    s2 = _mm256_fmadd_ps(wv[5], b2, s2);
    s0 = _mm256_fmadd_ps(wv[6], c0, s0);
    s1 = _mm256_fmadd_ps(wv[7], c1, s1);
    s2 = _mm256_fmadd_ps(wv[8], c2, s2);
    __m256 y = _mm256_add_ps(s0, _mm256_add_ps(s1, s2));
    if (stride == 2) y = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(y), 0xD8));  // 0 1 4 5 2 3 6 7 → in order
    if (n >= 8) {
        if (res) y = _mm256_add_ps(y, _mm256_loadu_ps(res));
        _mm256_storeu_ps(o, act8(y, act, vlo, vhi));
    } else {
        if (res) y = _mm256_add_ps(y, _mm256_maskload_ps(res, sm));
        sx_store_tail8(o, act8(y, act, vlo, vhi), n);
    }
}

/// Output row `oy` of a strip with its input rows bounds-checked (the rows at a plane's top and
/// bottom edges, whose windows reach into the padding).
__attribute__((always_inline))
AVX2_TARGET
static inline void edge_row8(const float *x, int in_h, int in_w, const int stride, int pad_top, const __m256 *wv,
                             __m256 vb, const float *res, float *out, int oy, int out_w, int ox, int ix, int n,
                             const int masked, const int act, __m256 vlo, __m256 vhi, __m256i sm) {
    const int iy = oy * stride - pad_top;
    __m256 a0, a1, a2, b0, b1, b2, c0, c1, c2;
    taps8_checked(x, iy, in_h, in_w, ix, stride, masked, &a0, &a1, &a2);
    taps8_checked(x, iy + 1, in_h, in_w, ix, stride, masked, &b0, &b1, &b2);
    taps8_checked(x, iy + 2, in_h, in_w, ix, stride, masked, &c0, &c1, &c2);
    const ptrdiff_t o = (ptrdiff_t)oy * out_w + ox;
    store8(wv, vb, a0, a1, a2, b0, b1, b2, c0, c1, c2, stride, act, vlo, vhi, res ? res + o : NULL, out + o, n, sm);
}

/// Output rows `oy0 ..< oy1` of the 8-column strip at output column `ox` (input column `ix`),
/// top to bottom, an output row's input rows of taps kept from the row above. The rows whose
/// three input rows all lie inside the image run without a bounds check; the first version
/// checked every row and dispatched the stride and activation per output vector, and ran 1.4–1.8×
/// slower (one thread, hot planes, Zen 3: 96 planes 112×112 stride 2 0.55 → 0.40 ms, 144 planes
/// 56×56 stride 1 0.47 → 0.27).
__attribute__((always_inline))
AVX2_TARGET
static inline void strip8(const float *x, int in_h, int in_w, const int stride, int pad_top, const __m256 *wv, __m256 vb,
                          const float *res, float *out, int oy0, int oy1, int out_w, int ox, int ix, int n,
                          const int masked, const int act, __m256 vlo, __m256 vhi) {
    const __m256i sm = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    // Output rows whose input rows oy·stride − pad_top + 0…2 are all inside: lo ..< hi.
    int lo = (pad_top + stride - 1) / stride, hi = in_h - 3 + pad_top < 0 ? 0 : (in_h - 3 + pad_top) / stride + 1;
    lo = lo < oy0 ? oy0 : lo > oy1 ? oy1 : lo;
    hi = hi > oy1 ? oy1 : hi < lo ? lo : hi;
    int oy = oy0;
    for (; oy < lo; oy++) {
        edge_row8(x, in_h, in_w, stride, pad_top, wv, vb, res, out, oy, out_w, ox, ix, n, masked, act, vlo, vhi, sm);
    }
    if (oy < hi) {
        const float *r = x + (ptrdiff_t)(oy * stride - pad_top) * in_w;
        const ptrdiff_t step = (ptrdiff_t)stride * in_w;
        __m256 a0, a1, a2, b0, b1, b2, c0, c1, c2;
        taps8(r, ix, in_w, stride, masked, &a0, &a1, &a2);
        taps8(r + in_w, ix, in_w, stride, masked, &b0, &b1, &b2);
        taps8(r + 2 * in_w, ix, in_w, stride, masked, &c0, &c1, &c2);
        for (;;) {
            const ptrdiff_t o = (ptrdiff_t)oy * out_w + ox;
            store8(wv, vb, a0, a1, a2, b0, b1, b2, c0, c1, c2, stride, act, vlo, vhi, res ? res + o : NULL, out + o, n, sm);
            if (++oy == hi) break;
            r += step;
            if (stride == 1) {
                a0 = b0; a1 = b1; a2 = b2;
                b0 = c0; b1 = c1; b2 = c2;
                taps8(r + 2 * in_w, ix, in_w, stride, masked, &c0, &c1, &c2);
            } else {
                a0 = c0; a1 = c1; a2 = c2;
                taps8(r + in_w, ix, in_w, stride, masked, &b0, &b1, &b2);
                taps8(r + 2 * in_w, ix, in_w, stride, masked, &c0, &c1, &c2);
            }
        }
    }
    for (; oy < oy1; oy++) {
        edge_row8(x, in_h, in_w, stride, pad_top, wv, vb, res, out, oy, out_w, ox, ix, n, masked, act, vlo, vhi, sm);
    }
}

/// Strips from left to right; only those that reach past a row's ends take masked loads.
__attribute__((always_inline))
AVX2_TARGET
static inline void dw3x3_plane_avx2(const float *x, int in_h, int in_w, const int stride, int pad_top, int pad_left,
                                    const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                                    const int act, float lo, float hi) {
    const __m256 vb = _mm256_set1_ps(bias), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    __m256 wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm256_set1_ps(w[t]);
    // Input columns a strip reads: ix .. ix + 9 (stride 1) or ix .. ix + 16 (stride 2).
    const int span = stride == 1 ? 10 : 17;
    for (int ox0 = 0; ox0 < out_w; ox0 += 8) {
        // The last strip ends at the row's end where it can (see depthwise_kxk_avx2.c).
        const int ox = ox0 + 8 > out_w && out_w >= 8 && res != out ? out_w - 8 : ox0;
        const int n = out_w - ox < 8 ? out_w - ox : 8;
        const int ix = ox * stride - pad_left;
        if (ix < 0 || ix + span > in_w)
            strip8(x, in_h, in_w, stride, pad_top, wv, vb, res, out, oy0, oy1, out_w, ox, ix, n, 1, act, vlo, vhi);
        else
            strip8(x, in_h, in_w, stride, pad_top, wv, vb, res, out, oy0, oy1, out_w, ox, ix, n, 0, act, vlo, vhi);
    }
}

/// One copy per stride and activation (none, ReLU, Clip: the ones this kernel applies).
#define DW3_CASE(S, A, CODE)                                                                                        \
    AVX2_TARGET static void dw3x3_s##S##_##A(const float *x, int in_h, int in_w, int pad_top, int pad_left,          \
                                             const float *w, float bias, const float *res, float *out, int oy0,      \
                                             int oy1, int out_w, float lo, float hi) {                              \
        dw3x3_plane_avx2(x, in_h, in_w, S, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, CODE, lo, hi);    \
    }
DW3_CASE(1, none, SX_GEMM_ACT_NONE)
DW3_CASE(1, relu, SX_GEMM_ACT_RELU)
DW3_CASE(1, clip, SX_GEMM_ACT_CLIP)
DW3_CASE(2, none, SX_GEMM_ACT_NONE)
DW3_CASE(2, relu, SX_GEMM_ACT_RELU)
DW3_CASE(2, clip, SX_GEMM_ACT_CLIP)

/// `d[j] = s[2j]` for `lo <= j < hi` (stride-2 planes of the direct product and the depthwise
/// copy): 16 floats in, their 8 even ones out; the last 1…8 through masked loads and a masked
/// store (never reading past s[2·(hi−1)]).
AVX2_TARGET
void sxk_deinterleave2_avx2(const float *s, float *d, int lo, int hi) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int j = lo;
    for (; j + 8 < hi; j += 8) {
        __m256 ev = _mm256_shuffle_ps(_mm256_loadu_ps(s + 2 * j), _mm256_loadu_ps(s + 2 * j + 8), 0x88);
        _mm256_storeu_ps(d + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8)));
    }
    if (j < hi) {
        const int reach = 2 * (hi - j) - 1;  // floats read from s + 2j
        __m256 a = _mm256_maskload_ps(s + 2 * j, _mm256_cmpgt_epi32(_mm256_set1_epi32(reach), lane));
        __m256 b = _mm256_maskload_ps(s + 2 * j + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(reach - 8), lane));
        __m256 ev = _mm256_shuffle_ps(a, b, 0x88);
        const __m256 even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8));
        if (hi - j == 8) _mm256_storeu_ps(d + j, even);
        else sx_store_tail8(d + j, even, hi - j);
    }
}

void sxk_dw3x3_direct_avx2(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left, const float *w,
                           float bias, const float *res, float *out, int oy0, int oy1, int out_w, int act, float lo,
                           float hi) {
    if (oy0 >= oy1) return;
    // act8 applies ReLU and Clip only (the configuration's `fused_acts`); any other code stores
    // the sum as it is, as before.
    if (stride == 1) {
        if (act == SX_GEMM_ACT_RELU) dw3x3_s1_relu(x, in_h, in_w, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, lo, hi);
        else if (act == SX_GEMM_ACT_CLIP) dw3x3_s1_clip(x, in_h, in_w, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, lo, hi);
        else dw3x3_s1_none(x, in_h, in_w, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, lo, hi);
    } else {
        if (act == SX_GEMM_ACT_RELU) dw3x3_s2_relu(x, in_h, in_w, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, lo, hi);
        else if (act == SX_GEMM_ACT_CLIP) dw3x3_s2_clip(x, in_h, in_w, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, lo, hi);
        else dw3x3_s2_none(x, in_h, in_w, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, lo, hi);
    }
}
#endif
