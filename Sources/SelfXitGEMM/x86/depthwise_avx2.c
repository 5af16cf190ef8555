// AVX2 in-place depthwise 3×3 (`sx_dw3x3_direct`) of the AVX2 configuration: 8-column strips
// from top to bottom, an output row's three input rows of taps kept from the row above. The
// first AVX2 port masked every load (vmaskmovps: 9 masked loads per 8 outputs) and lost to the
// padded copy + dw3x3_plane by 14–215 % (BENCHMARKS §7.3); here only the strips that reach past
// a row's ends are masked, the others take plain loads (stride 2: 16 columns a tap row, the even
// and odd ones split in registers).
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx2_helpers.h"

#define AVX2_TARGET __attribute__((target("avx2,fma,avx")))

#define act8 sx_act8_basic

/// 8 floats of a row from column `ix`, zero outside `0..<in_w` (`masked`: the strip reaches past
/// an end; masked-off lanes are never read).
__attribute__((always_inline))
AVX2_TARGET
static inline __m256 row8(const float *row, int ix, int in_w, int masked) {
    if (!masked) return _mm256_loadu_ps(row + ix);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i ok = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(in_w - ix), lane),
                                        _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(-ix - 1)));
    return _mm256_maskload_ps(row + ix, ok);
}

/// One input row's three tap vectors for the 8 outputs of a strip starting at input column `ix`
/// (zeros for a row outside the image).
__attribute__((always_inline))
AVX2_TARGET
static inline void taps8(const float *x, int iy, int in_h, int in_w, int ix, int stride, int masked, __m256 *t0,
                         __m256 *t1, __m256 *t2) {
    if (iy < 0 || iy >= in_h) {
        *t0 = *t1 = *t2 = _mm256_setzero_ps();
        return;
    }
    const float *row = x + (ptrdiff_t)iy * in_w;
    if (stride == 1) {
        *t0 = row8(row, ix, in_w, masked);
        *t1 = row8(row, ix + 1, in_w, masked);
        *t2 = row8(row, ix + 2, in_w, masked);
    } else {
        // Columns ix..ix+15: taps 0 and 1 are their even and odd floats; tap 2 the even ones from ix+2.
        __m256 a = row8(row, ix, in_w, masked), b = row8(row, ix + 8, in_w, masked);
        // Column ix + 16 in every lane (tap 2's last).
        __m256 c = masked ? _mm256_permutevar8x32_ps(row8(row, ix + 16, in_w, 1), _mm256_setzero_si256())
                          : _mm256_broadcast_ss(row + ix + 16);
        __m256 ev = _mm256_shuffle_ps(a, b, 0x88), od = _mm256_shuffle_ps(a, b, 0xDD);  // a0 a2 b0 b2 | a4 a6 b4 b6
        *t0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8));
        *t1 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8));
        // ix+2, ix+4, …, ix+16: tap 0 shifted by one lane, c's first float last.
        const __m256i rot = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
        __m256 sh = _mm256_permutevar8x32_ps(*t0, rot);
        *t2 = _mm256_blend_ps(sh, c, 0x80);
    }
}

AVX2_TARGET
static void dw3x3_direct_avx2_(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                               const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                               int act, float lo, float hi) {
    const __m256 vb = _mm256_set1_ps(bias), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm256_set1_ps(w[t]);
    // Input columns a strip reads: ix .. ix + 9 (stride 1) or ix .. ix + 16 (stride 2).
    const int span = stride == 1 ? 10 : 17;
    for (int ox0 = 0; ox0 < out_w; ox0 += 8) {
        // The last strip ends at the row's end where it can (see depthwise_kxk_avx2.c).
        const int ox = ox0 + 8 > out_w && out_w >= 8 && res != out ? out_w - 8 : ox0;
        const int n = out_w - ox;
        const __m256i sm = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
        const int ix = ox * stride - pad_left;
        const int masked = ix < 0 || ix + span > in_w;
        int iy = oy0 * stride - pad_top;
        __m256 a0, a1, a2, b0, b1, b2, c0, c1, c2;
        taps8(x, iy, in_h, in_w, ix, stride, masked, &a0, &a1, &a2);
        taps8(x, iy + 1, in_h, in_w, ix, stride, masked, &b0, &b1, &b2);
        taps8(x, iy + 2, in_h, in_w, ix, stride, masked, &c0, &c1, &c2);
        for (int oy = oy0; oy < oy1; oy++) {
            // The portable kernel's order: bias + column 0's taps, columns 1 and 2 apart.
            __m256 s0 = _mm256_fmadd_ps(wv[0], a0, vb), s1 = _mm256_mul_ps(wv[1], a1), s2 = _mm256_mul_ps(wv[2], a2);
            s0 = _mm256_fmadd_ps(wv[3], b0, s0);
            s1 = _mm256_fmadd_ps(wv[4], b1, s1);
            s2 = _mm256_fmadd_ps(wv[5], b2, s2);
            s0 = _mm256_fmadd_ps(wv[6], c0, s0);
            s1 = _mm256_fmadd_ps(wv[7], c1, s1);
            s2 = _mm256_fmadd_ps(wv[8], c2, s2);
            __m256 y = _mm256_add_ps(s0, _mm256_add_ps(s1, s2));
            float *o = out + (ptrdiff_t)oy * out_w + ox;
            if (n >= 8) {
                if (res) y = _mm256_add_ps(y, _mm256_loadu_ps(res + (ptrdiff_t)oy * out_w + ox));
                _mm256_storeu_ps(o, act8(y, act, vlo, vhi));
            } else {
                if (res) y = _mm256_add_ps(y, _mm256_maskload_ps(res + (ptrdiff_t)oy * out_w + ox, sm));
                sx_store_tail8(o, act8(y, act, vlo, vhi), n);
            }
            if (oy + 1 == oy1) break;
            iy += stride;
            if (stride == 1) {
                a0 = b0; a1 = b1; a2 = b2;
                b0 = c0; b1 = c1; b2 = c2;
                taps8(x, iy + 2, in_h, in_w, ix, stride, masked, &c0, &c1, &c2);
            } else {
                a0 = c0; a1 = c1; a2 = c2;
                taps8(x, iy + 1, in_h, in_w, ix, stride, masked, &b0, &b1, &b2);
                taps8(x, iy + 2, in_h, in_w, ix, stride, masked, &c0, &c1, &c2);
            }
        }
    }
}

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
    if (oy0 < oy1)
        dw3x3_direct_avx2_(x, in_h, in_w, stride, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, act, lo, hi);
}
#endif
