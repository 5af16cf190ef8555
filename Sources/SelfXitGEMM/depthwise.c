#include "selfxit_gemm.h"

#include <string.h>
#include "avx512_helpers.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SX_X86 1
#endif

/* NaN in, NaN out (as ONNX Runtime): every comparison with NaN is false, so NaN falls through. */
static inline float dw_act(float v, int act, float lo, float hi) {
    if (act == SX_GEMM_ACT_RELU) return v < 0 ? 0 : v;
    if (act == SX_GEMM_ACT_CLIP) return v < lo ? lo : (v > hi ? hi : v);
    return v;
}

static void dw3x3_scalar(const float *buf, ptrdiff_t row_w, ptrdiff_t step_y, ptrdiff_t dy, const int *off,
                         const float *w, float bias, float *out, int out_h, int out_w, int act, float lo, float hi) {
    for (int oy = 0; oy < out_h; oy++) {
        const float *r0 = buf + oy * step_y, *r1 = r0 + dy, *r2 = r1 + dy;
        for (int ox = 0; ox < out_w; ox++) {
            float a = bias;
            a += w[0] * r0[ox + off[0]] + w[1] * r0[ox + off[1]] + w[2] * r0[ox + off[2]];
            a += w[3] * r1[ox + off[0]] + w[4] * r1[ox + off[1]] + w[5] * r1[ox + off[2]];
            a += w[6] * r2[ox + off[0]] + w[7] * r2[ox + off[1]] + w[8] * r2[ox + off[2]];
            out[oy * out_w + ox] = dw_act(a, act, lo, hi);
        }
    }
    (void)row_w;
}

#if SX_X86
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
static void dw3x3_avx512(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off,
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
static void dw3x3_direct_avx512(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
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

/// Max pooling of one plane, dilation 1, stride 1 or 2, kernel up to 3×3 (see `sx_maxpool_direct`).
__attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
static void maxpool_direct_avx512(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                                  float *out, int out_h, int out_w) {
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
static void deinterleave2_avx512(const float *s, float *d, int lo, int hi) {
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
#endif

void sx_dw3x3_plane(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, const float *w, float bias,
                    float *out, int out_h, int out_w, int act, float lo, float hi) {
#if SX_X86
    if (sx_gemm_default_isa() == SX_GEMM_ISA_AVX512) {
        dw3x3_avx512(buf, step_y, dy, off, w, bias, out, out_h, out_w, act, lo, hi);
        return;
    }
#endif
    dw3x3_scalar(buf, 0, step_y, dy, off, w, bias, out, out_h, out_w, act, lo, hi);
}

void sx_deinterleave2(const float *s, float *d, int lo, int hi) {
#if SX_X86
    if (sx_gemm_default_isa() == SX_GEMM_ISA_AVX512) { deinterleave2_avx512(s, d, lo, hi); return; }
#endif
    for (int j = lo; j < hi; j++) d[j] = s[2 * j];
}

void sx_subsample2_plane(const float *x, int in_h, int in_w, int row0, int col0, float *dst, int plane_h, int plane_w) {
    // Plane columns j read input column 2j + col0; those inside the row: lo..<hi.
    int lo = col0 >= 0 ? 0 : (-col0 + 1) / 2;
    if (lo > plane_w) lo = plane_w;
    int hi = in_w - 1 - col0 < 0 ? 0 : (in_w - 1 - col0) / 2 + 1;
    if (hi > plane_w) hi = plane_w;
    if (hi < lo) hi = lo;
    for (int i = 0; i < plane_h; i++) {
        float *row = dst + (size_t)i * plane_w;
        int iy = 2 * i + row0;
        if (iy < 0 || iy >= in_h) { memset(row, 0, sizeof(float) * (size_t)plane_w); continue; }
        memset(row, 0, sizeof(float) * (size_t)lo);
        sx_deinterleave2(x + (size_t)iy * in_w + col0, row, lo, hi);
        memset(row + hi, 0, sizeof(float) * (size_t)(plane_w - hi));
    }
}

void sx_dw3x3_direct(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                     const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                     int act, float lo, float hi) {
#if SX_X86
    if (oy0 < oy1) dw3x3_direct_avx512(x, in_h, in_w, stride, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, act, lo, hi);
#else
    (void)x; (void)in_h; (void)in_w; (void)stride; (void)pad_top; (void)pad_left; (void)w; (void)bias;
    (void)res; (void)out; (void)oy0; (void)oy1; (void)out_w; (void)act; (void)lo; (void)hi;
#endif
}

void sx_maxpool_direct(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                       float *out, int out_h, int out_w) {
#if SX_X86
    maxpool_direct_avx512(x, in_h, in_w, kh, kw, stride, pad_top, pad_left, out, out_h, out_w);
#else
    (void)x; (void)in_h; (void)in_w; (void)kh; (void)kw; (void)stride; (void)pad_top; (void)pad_left;
    (void)out; (void)out_h; (void)out_w;
#endif
}
