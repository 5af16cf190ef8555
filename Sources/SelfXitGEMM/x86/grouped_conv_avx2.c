// AVX2 + FMA grouped convolution (the AVX2 configuration's `grouped_conv`; layout and row ring in
// grouped_conv.c): as x86/grouped_conv_avx512.c with 8-column strips and the 16 ymm registers
// of AVX2: 4 output channels × 2 strips (8 accumulators, 2 loads, 4 broadcasts), each block of 8
// packed channels taken as two halves. (3 strips, 12 accumulators, left clang spilling three of
// them: 1.6× slower on Zen 4, 8→8 channels 56×56.) Every kernel tap is a plain load (the ring is padded), so
// AVX2 needs none of vmaskmovps's masked loads; only a row's last strip stores through a mask.
// ReLU and Clip are applied as the strips are stored, the other activations after (scalar).
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx2_helpers.h"

#pragma clang diagnostic ignored "-Wpass-failed"

#define GC2_TARGET __attribute__((target("avx2,fma,avx")))
#define GC2_INLINE GC2_TARGET __attribute__((always_inline)) static inline

typedef struct {
    const sx_gconv_geom *g;
    const sxk_gconv_layout *l;
    const float *rows;      // scratch (the ring)
    const int *slot_off;
    int ky0, ky1;
    const float *bias, *res;
    float *out;             // output row oy of channel 0
    size_t oplane;
    int act;
    float lo, hi;
} gc2_ctx;

/// Channels `co0..<co0+nco` (≤ CO) of weights `wb` (a block, offset to the half when CO is 4) × NS
/// strips from column `ox0`.
GC2_INLINE void gc2_tile(const int CO, const int NS, const int KW, const gc2_ctx *t, const float *wb, int co0, int nco, int ox0) {
    const sx_gconv_geom *g = t->g;
    const int kw = KW ? KW : g->kw, kh = g->kh;
    const size_t cstride = t->l->cstride;
    int tap[16];
    for (int kx = 0; kx < kw; kx++) tap[kx] = t->l->tap[kx];
    // Fixed-size arrays (NS is a constant once inlined; a VLA would live on the stack).
    __m256 acc[8][2];
    #pragma clang loop unroll(full)
    for (int co = 0; co < CO; co++)
        #pragma clang loop unroll(full)
        for (int s = 0; s < NS; s++) acc[co][s] = _mm256_setzero_ps();
    for (int c = 0; c < g->cin; c++) {
        const float *rc = t->rows + c * cstride + ox0;
        const float *wc = wb + (size_t)c * kh * kw * SX_GCONV_CO_BLOCK;
        for (int ky = t->ky0; ky < t->ky1; ky++) {
            const float *r = rc + t->slot_off[ky];
            const float *w = wc + ky * kw * SX_GCONV_CO_BLOCK;
            for (int kx = 0; kx < kw; kx++) {
                const float *rp = r + tap[kx];
                __m256 v[2];
                #pragma clang loop unroll(full)
                for (int s = 0; s < NS; s++) v[s] = _mm256_loadu_ps(rp + 8 * s);
                #pragma clang loop unroll(full)
                for (int co = 0; co < CO; co++) {
                    __m256 wv = _mm256_broadcast_ss(w + kx * SX_GCONV_CO_BLOCK + co);
                    #pragma clang loop unroll(full)
                    for (int s = 0; s < NS; s++) acc[co][s] = _mm256_fmadd_ps(wv, v[s], acc[co][s]);
                }
            }
        }
    }
    const __m256 vlo = _mm256_set1_ps(t->lo), vhi = _mm256_set1_ps(t->hi);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    #pragma clang loop unroll(full)
    for (int co = 0; co < CO; co++) {
        if (co >= nco) break;
        int ch = co0 + co;
        const __m256 b = _mm256_set1_ps(t->bias ? t->bias[ch] : 0.0f);
        float *o = t->out + ch * t->oplane;
        const float *rr = t->res ? t->res + ch * t->oplane : NULL;
        #pragma clang loop unroll(full)
        for (int s = 0; s < NS; s++) {
            int x0 = ox0 + 8 * s;
            if (x0 >= g->out_w) break;
            int left = g->out_w - x0;
            __m256 v = _mm256_add_ps(acc[co][s], b);
            if (left >= 8) {
                if (rr) v = _mm256_add_ps(v, _mm256_loadu_ps(rr + x0));
            } else {
                __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
                if (rr) v = _mm256_add_ps(v, _mm256_maskload_ps(rr + x0, m));
            }
            v = sx_act8(v, t->act, vlo, vhi);
            if (left >= 8) _mm256_storeu_ps(o + x0, v);
            else sx_store_tail8(o + x0, v, left);
        }
    }
}

/// Every strip of one output row for one block: two halves of 4 channels × 2 strips; a plane one
/// strip wide (≤ 8 columns: 7×7) takes all 8 channels × 1 strip instead, else 4 accumulators
/// would wait on the FMA latency (ResNeXt's 1024-channel 7×7 layer ran 2.6× AVX-512's time).
GC2_INLINE void gc2_row(const int KW, const gc2_ctx *t, const float *wb, int co0, int nco) {
    const int strips = (t->g->out_w + 7) / 8;
    if (strips == 1 && nco > 4) {
        gc2_tile(8, 1, KW, t, wb, co0, nco, 0);
        return;
    }
    for (int half = 0; half < nco; half += 4) {
        int n4 = nco - half < 4 ? nco - half : 4;
        int st = 0;
        for (; st + 2 <= strips; st += 2) gc2_tile(4, 2, KW, t, wb + half, co0 + half, n4, st * 8);
        if (strips - st == 1) gc2_tile(4, 1, KW, t, wb + half, co0 + half, n4, st * 8);
    }
}

GC2_TARGET
static void gc2_row_k3(const gc2_ctx *t, const float *wb, int co0, int nco) { gc2_row(3, t, wb, co0, nco); }
GC2_TARGET
static void gc2_row_kn(const gc2_ctx *t, const float *wb, int co0, int nco) { gc2_row(0, t, wb, co0, nco); }

GC2_TARGET
void sxk_gconv_avx2(const sx_gconv_geom *g, const float *x, const float *pw, const float *bias, const float *res,
                    float *out, int oy0, int oy1, int act, float lo, float hi, float *scratch) {
    sxk_gconv_layout l;
    sxk_gconv_layout_of(g, &l);
    sxk_gconv_rows rows;
    sxk_gconv_rows_init(&rows);
    const size_t k = (size_t)g->cin * g->kh * g->kw;
    int slot_off[16];
    gc2_ctx t = {.g = g, .l = &l, .rows = scratch, .slot_off = slot_off, .bias = bias,
                 .oplane = (size_t)g->out_h * g->out_w, .act = act, .lo = lo, .hi = hi};
    for (int oy = oy0; oy < oy1; oy++) {
        sxk_gconv_prepare(g, &l, &rows, x, oy, scratch, sxk_deinterleave2_avx2, &t.ky0, &t.ky1, slot_off);
        t.out = out + (size_t)oy * g->out_w;
        t.res = res ? res + (size_t)oy * g->out_w : NULL;
        for (int co0 = 0; co0 < g->cout; co0 += SX_GCONV_CO_BLOCK) {
            const float *wb = pw + (size_t)co0 * k;
            int nco = g->cout - co0 < SX_GCONV_CO_BLOCK ? g->cout - co0 : SX_GCONV_CO_BLOCK;
            (g->kw == 3 ? gc2_row_k3 : gc2_row_kn)(&t, wb, co0, nco);
        }
    }
}
#endif
