// AVX-512 depthwise 3×3, max pooling and stride-2 deinterleave kernels of the AVX-512
// configuration (configs/kernel_config.c). x86 only, per-function target attributes.
#include "../kernels_internal.h"
#include "../avx512_helpers.h"

#if SX_X86
#include <immintrin.h>
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
void sxk_dw3x3_plane_avx512(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off,
                         const float *w, float bias, float *out, int out_h, int out_w, int act, float lo, float hi) {
    const __m512 w0 = _mm512_set1_ps(w[0]), w1 = _mm512_set1_ps(w[1]), w2 = _mm512_set1_ps(w[2]);
    const __m512 w3 = _mm512_set1_ps(w[3]), w4 = _mm512_set1_ps(w[4]), w5 = _mm512_set1_ps(w[5]);
    const __m512 w6 = _mm512_set1_ps(w[6]), w7 = _mm512_set1_ps(w[7]), w8 = _mm512_set1_ps(w[8]);
    const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const int o0 = off[0], o1 = off[1], o2 = off[2];
    for (int oy = 0; oy < out_h; oy++) {
        const float *r0 = buf + oy * step_y, *r1 = r0 + dy, *r2 = r1 + dy;
        float *o = out + (ptrdiff_t)oy * out_w;
        for (int ox = 0; ox < out_w; ox += 16) {
            __m512 a = _mm512_fmadd_ps(w0, _mm512_loadu_ps(r0 + ox + o0), vb);
            __m512 b = _mm512_mul_ps(w1, _mm512_loadu_ps(r0 + ox + o1));
            __m512 c = _mm512_mul_ps(w2, _mm512_loadu_ps(r0 + ox + o2));
            a = _mm512_fmadd_ps(w3, _mm512_loadu_ps(r1 + ox + o0), a);
            b = _mm512_fmadd_ps(w4, _mm512_loadu_ps(r1 + ox + o1), b);
            c = _mm512_fmadd_ps(w5, _mm512_loadu_ps(r1 + ox + o2), c);
            a = _mm512_fmadd_ps(w6, _mm512_loadu_ps(r2 + ox + o0), a);
            b = _mm512_fmadd_ps(w7, _mm512_loadu_ps(r2 + ox + o1), b);
            c = _mm512_fmadd_ps(w8, _mm512_loadu_ps(r2 + ox + o2), c);
            a = _mm512_add_ps(a, _mm512_add_ps(b, c));
            a = sx_act512(a, act, vlo, vhi);
            int n = out_w - ox;
            if (n >= 16) _mm512_storeu_ps(o + ox, a);
            else _mm512_mask_storeu_ps(o + ox, (__mmask16)((1u << n) - 1u), a);
        }
    }
}

/// Output chunks of 16 columns `maxpool_direct_avx512` takes (its load masks live on the stack).
#define DW_MAX_CHUNKS (SX_MAXPOOL_DIRECT_MAX_WIDTH / 16)

/// One input row's three tap vectors for 16 outputs from column `ix` (`m*`: that strip's load
/// masks; stride 2 loads 32 columns per tap and keeps the even ones); zeros outside the image.
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
static inline void dw_row_taps(const float *x, int iy, int in_h, int in_w, int ix, int stride, const __mmask16 m[3][2],
                               __m512 *t0, __m512 *t1, __m512 *t2) {
    if (iy < 0 || iy >= in_h) {
        *t0 = *t1 = *t2 = _mm512_setzero_ps();
        return;
    }
    const float *row = x + (ptrdiff_t)iy * in_w + ix;
    if (stride == 1) {
        *t0 = _mm512_maskz_loadu_ps(m[0][0], row);
        *t1 = _mm512_maskz_loadu_ps(m[1][0], row + 1);
        *t2 = _mm512_maskz_loadu_ps(m[2][0], row + 2);
    } else {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        *t0 = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m[0][0], row), even, _mm512_maskz_loadu_ps(m[0][1], row + 16));
        *t1 = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m[1][0], row + 1), even, _mm512_maskz_loadu_ps(m[1][1], row + 17));
        *t2 = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m[2][0], row + 2), even, _mm512_maskz_loadu_ps(m[2][1], row + 18));
    }
}

/// `sx_dw3x3_direct`: 16-column strips from top to bottom, the three input rows of an output row
/// kept in registers so each output row loads only the rows it does not share with the one
/// above (one with stride 1, two with stride 2).
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
static void dw3x3_direct_avx512_(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                                const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                                int act, float lo, float hi) {
    const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    __m512 wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w[t]);
    for (int ox = 0; ox < out_w; ox += 16) {
        const int n = out_w - ox;
        const __mmask16 sm = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
        const int ix = ox * stride - pad_left;
        __mmask16 m[3][2];
        for (int kx = 0; kx < 3; kx++) {
            m[kx][0] = sx_row_mask(ix + kx, in_w);
            m[kx][1] = sx_row_mask(ix + kx + 16, in_w);
        }
        int iy = oy0 * stride - pad_top;
        __m512 a0, a1, a2, b0, b1, b2, c0, c1, c2;
        dw_row_taps(x, iy, in_h, in_w, ix, stride, m, &a0, &a1, &a2);
        dw_row_taps(x, iy + 1, in_h, in_w, ix, stride, m, &b0, &b1, &b2);
        dw_row_taps(x, iy + 2, in_h, in_w, ix, stride, m, &c0, &c1, &c2);
        for (int oy = oy0; oy < oy1; oy++) {
            __m512 s0 = _mm512_fmadd_ps(wv[0], a0, vb), s1 = _mm512_mul_ps(wv[1], a1), s2 = _mm512_mul_ps(wv[2], a2);
            s0 = _mm512_fmadd_ps(wv[3], b0, s0);
            s1 = _mm512_fmadd_ps(wv[4], b1, s1);
            s2 = _mm512_fmadd_ps(wv[5], b2, s2);
            s0 = _mm512_fmadd_ps(wv[6], c0, s0);
            s1 = _mm512_fmadd_ps(wv[7], c1, s1);
            s2 = _mm512_fmadd_ps(wv[8], c2, s2);
            __m512 y = _mm512_add_ps(s0, _mm512_add_ps(s1, s2));
            if (res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(sm, res + (ptrdiff_t)oy * out_w + ox));
            y = sx_act512(y, act, vlo, vhi);
            _mm512_mask_storeu_ps(out + (ptrdiff_t)oy * out_w + ox, sm, y);
            if (oy + 1 == oy1) break;
            iy += stride;
            if (stride == 1) {
                a0 = b0; a1 = b1; a2 = b2;
                b0 = c0; b1 = c1; b2 = c2;
                dw_row_taps(x, iy + 2, in_h, in_w, ix, stride, m, &c0, &c1, &c2);
            } else {
                a0 = c0; a1 = c1; a2 = c2;
                dw_row_taps(x, iy + 1, in_h, in_w, ix, stride, m, &b0, &b1, &b2);
                dw_row_taps(x, iy + 2, in_h, in_w, ix, stride, m, &c0, &c1, &c2);
            }
        }
    }
}

/// One input row's 3-tap stride-2 maxima for the 16 outputs of a strip starting at input column
/// `b`: the maxima of columns (i, i+1, i+2) for 32 consecutive i, then their even lanes; columns
/// outside the row read as −∞. `max_ps` drops a NaN of its first operand, so `*nan` collects the
/// lanes where any column read is NaN (the caller then redoes the plane NaN-exactly).
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
static inline __m512 maxpool_row3_s2(const float *row, int b, int in_w, __mmask16 *nan) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    __m512 a0 = _mm512_mask_loadu_ps(ninf, sx_row_mask(b, in_w), row + b);
    __m512 b0 = _mm512_mask_loadu_ps(ninf, sx_row_mask(b + 1, in_w), row + b + 1);
    __m512 c0 = _mm512_mask_loadu_ps(ninf, sx_row_mask(b + 2, in_w), row + b + 2);
    __m512 a1 = _mm512_mask_loadu_ps(ninf, sx_row_mask(b + 16, in_w), row + b + 16);
    __m512 b1 = _mm512_mask_loadu_ps(ninf, sx_row_mask(b + 17, in_w), row + b + 17);
    __m512 c1 = _mm512_mask_loadu_ps(ninf, sx_row_mask(b + 18, in_w), row + b + 18);
    // a0 and a1 hold columns b..b+31, c1 the last two (b+32, b+33).
    *nan |= _mm512_cmp_ps_mask(a0, a1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(c1, c1, _CMP_UNORD_Q);
    __m512 m0 = _mm512_max_ps(_mm512_max_ps(a0, b0), c0);
    __m512 m1 = _mm512_max_ps(_mm512_max_ps(a1, b1), c1);
    return _mm512_permutex2var_ps(m0, even, m1);
}

/// 3×3 stride-2 max pooling (ResNet's after the stem: 112×112 → 56×56 a plane) computed
/// separably: each input row's horizontal maxima once (`maxpool_row3_s2`), shared by the two
/// output rows that read it, then two vertical maxima an output vector: 12 loads, 2 permutes and
/// 10 maxima where the general loop below takes 18 loads, 9 permutes, 9 maxima and 9 NaN
/// compares. Returns 0 when the plane holds a NaN (outputs then incomplete: redo it).
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
static int maxpool3x3_s2_avx512(const float *x, int in_h, int in_w, int pad_top, int pad_left, float *out, int out_h, int out_w) {
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    __mmask16 nan = 0;
    for (int ox = 0; ox < out_w; ox += 16) {
        const int n = out_w - ox;
        const __mmask16 sm = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
        const int b = 2 * ox - pad_left;
        // `top`: the maxima of input row 2·oy − pad_top (the bottom row of the output row above).
        int iy = -pad_top;
        __m512 top = iy >= 0 && iy < in_h ? maxpool_row3_s2(x + (ptrdiff_t)iy * in_w, b, in_w, &nan) : ninf;
        for (int oy = 0; oy < out_h; oy++, iy += 2) {
            __m512 mid = iy + 1 >= 0 && iy + 1 < in_h ? maxpool_row3_s2(x + (ptrdiff_t)(iy + 1) * in_w, b, in_w, &nan) : ninf;
            __m512 bot = iy + 2 >= 0 && iy + 2 < in_h ? maxpool_row3_s2(x + (ptrdiff_t)(iy + 2) * in_w, b, in_w, &nan) : ninf;
            _mm512_mask_storeu_ps(out + (ptrdiff_t)oy * out_w + ox, sm, _mm512_max_ps(_mm512_max_ps(top, mid), bot));
            top = bot;
        }
    }
    return nan == 0;
}

/// Max pooling of one plane, dilation 1, stride 1 or 2, kernel up to 3×3 (see `sx_maxpool_direct`).
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
void sxk_maxpool_direct_avx512(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                                  float *out, int out_h, int out_w) {
    if (kh == 3 && kw == 3 && stride == 2 && maxpool3x3_s2_avx512(x, in_h, in_w, pad_top, pad_left, out, out_h, out_w)) return;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    const int chunks = (out_w + 15) / 16;
    __mmask16 lm[DW_MAX_CHUNKS][3][2], sm[DW_MAX_CHUNKS];
    for (int ch = 0; ch < chunks; ch++) {
        int ox = ch * 16, n = out_w - ox;
        sm[ch] = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
        for (int kx = 0; kx < kw; kx++) {
            int ix = ox * stride + kx - pad_left;
            lm[ch][kx][0] = sx_row_mask(ix, in_w);
            lm[ch][kx][1] = sx_row_mask(ix + 16, in_w);
        }
    }
    for (int oy = 0; oy < out_h; oy++) {
        int iy0 = oy * stride - pad_top;
        int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = in_h - iy0 < kh ? in_h - iy0 : kh;
        for (int ch = 0; ch < chunks; ch++) {
            const int ox = ch * 16;
            __m512 m = ninf;
            /* A window holding NaN gives NaN (as ONNX Runtime): max_ps alone drops a NaN on
             * one side or the other, so NaN lanes are tracked and put back at the end. */
            __mmask16 nan = 0;
            for (int ky = ky0; ky < ky1; ky++) {
                const float *row = x + (ptrdiff_t)(iy0 + ky) * in_w + ox * stride - pad_left;
                for (int kx = 0; kx < kw; kx++) {
                    __m512 v = _mm512_mask_loadu_ps(ninf, lm[ch][kx][0], row + kx);
                    if (stride == 2) v = _mm512_permutex2var_ps(v, even, _mm512_mask_loadu_ps(ninf, lm[ch][kx][1], row + kx + 16));
                    m = _mm512_max_ps(m, v);
                    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                }
            }
            m = _mm512_mask_mov_ps(m, nan, _mm512_set1_ps(__builtin_nanf("")));
            _mm512_mask_storeu_ps(out + (ptrdiff_t)oy * out_w + ox, sm[ch], m);
        }
    }
}

__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
void sxk_deinterleave2_avx512(const float *s, float *d, int lo, int hi) {
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int j = lo;
    for (; j + 16 < hi; j += 16) {
        __m512 a = _mm512_loadu_ps(s + 2 * j), b = _mm512_loadu_ps(s + 2 * j + 16);
        _mm512_storeu_ps(d + j, _mm512_permutex2var_ps(a, idx, b));
    }
    if (j < hi) {
        // The last 1..16: loads masked to the floats read (up to s[2·(hi−1)]).
        int reach = 2 * (hi - j) - 1;
        __m512 a = _mm512_maskz_loadu_ps(sx_row_mask(0, reach), s + 2 * j);
        __m512 b = _mm512_maskz_loadu_ps(sx_row_mask(0, reach - 16), s + 2 * j + 16);
        _mm512_mask_storeu_ps(d + j, sx_row_mask(0, hi - j), _mm512_permutex2var_ps(a, idx, b));
    }
}

void sxk_dw3x3_direct_avx512(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                             const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                             int act, float lo, float hi) {
    if (oy0 < oy1) dw3x3_direct_avx512_(x, in_h, in_w, stride, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, act, lo, hi);
}
#endif
