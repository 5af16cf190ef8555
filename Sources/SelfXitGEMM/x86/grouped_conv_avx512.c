// AVX-512 grouped convolution (the AVX-512 configuration's `grouped_conv`; layout and row ring in
// grouped_conv.c). One output row at a time: the rows it reads are in the ring, each kernel tap
// of a 16-column strip is one plain load, and a block of output channels × strips sits in
// registers — 8 channels × 3 strips (24 zmm accumulators, each load feeding 8 FMAs with the
// weights broadcast from memory), or 4 channels × 6 strips for a block of at most 4 channels
// (ResNeXt's group width 4) instead of computing 4 zero rows. 3-wide kernels are compiled with
// the width constant (taps unrolled), others with run-time widths. Bias, residual and the
// activation (every SX_GEMM_ACT_*, sx_act512) are applied as the strips are stored.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx512_helpers.h"

#pragma clang diagnostic ignored "-Wpass-failed"

#define GC_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
#define GC_INLINE GC_TARGET __attribute__((always_inline)) static inline

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
} gc_ctx;

/// Channels `co0..<co0+nco` (≤ CO) of one weight block `wb` × NS strips from column `ox0`.
GC_INLINE void gc_tile(const int CO, const int NS, const int KW, const gc_ctx *t, const float *wb, int co0, int nco,
                       int ox0) {
    const sx_gconv_geom *g = t->g;
    const int kw = KW ? KW : g->kw, kh = g->kh;
    const size_t cstride = t->l->cstride;
    int tap[16];
    for (int kx = 0; kx < kw; kx++) tap[kx] = t->l->tap[kx];
    // Fixed-size arrays (CO and NS are constants once inlined; a VLA would live on the stack).
    __m512 acc[8][6];
    #pragma clang loop unroll(full)
    for (int co = 0; co < CO; co++)
        #pragma clang loop unroll(full)
        for (int s = 0; s < NS; s++) acc[co][s] = _mm512_setzero_ps();
    for (int c = 0; c < g->cin; c++) {
        const float *rc = t->rows + c * cstride + ox0;
        const float *wc = wb + (size_t)c * kh * kw * SX_GCONV_CO_BLOCK;
        for (int ky = t->ky0; ky < t->ky1; ky++) {
            const float *r = rc + t->slot_off[ky];
            const float *w = wc + ky * kw * SX_GCONV_CO_BLOCK;
            for (int kx = 0; kx < kw; kx++) {
                const float *rp = r + tap[kx];
                __m512 v[6];
                #pragma clang loop unroll(full)
                for (int s = 0; s < NS; s++) v[s] = _mm512_loadu_ps(rp + 16 * s);
                #pragma clang loop unroll(full)
                for (int co = 0; co < CO; co++) {
                    __m512 wv = _mm512_set1_ps(w[kx * SX_GCONV_CO_BLOCK + co]);
                    #pragma clang loop unroll(full)
                    for (int s = 0; s < NS; s++) acc[co][s] = _mm512_fmadd_ps(wv, v[s], acc[co][s]);
                }
            }
        }
    }
    const __m512 vlo = _mm512_set1_ps(t->lo), vhi = _mm512_set1_ps(t->hi);
    #pragma clang loop unroll(full)
    for (int co = 0; co < CO; co++) {
        if (co >= nco) break;
        int ch = co0 + co;
        const __m512 b = _mm512_set1_ps(t->bias ? t->bias[ch] : 0.0f);
        float *o = t->out + ch * t->oplane;
        const float *rr = t->res ? t->res + ch * t->oplane : NULL;
        #pragma clang loop unroll(full)
        for (int s = 0; s < NS; s++) {
            int x0 = ox0 + 16 * s;
            if (x0 >= g->out_w) break;
            int left = g->out_w - x0;
            __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
            __m512 v = _mm512_add_ps(acc[co][s], b);
            if (rr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, rr + x0));
            _mm512_mask_storeu_ps(o + x0, m, sx_act512(v, t->act, vlo, vhi));
        }
    }
}

/// Every strip of one output row for one weight block, `CO` channels × `NS` strips a tile.
GC_INLINE void gc_row(const int CO, const int NS, const int KW, const gc_ctx *t, const float *wb, int co0, int nco) {
    const int strips = (t->g->out_w + 15) / 16;
    int st = 0;
    for (; st + NS <= strips; st += NS) gc_tile(CO, NS, KW, t, wb, co0, nco, st * 16);
    switch (strips - st) {  // the remainder, with constant strip counts (registers, not memory)
    case 1: gc_tile(CO, 1, KW, t, wb, co0, nco, st * 16); break;
    case 2: gc_tile(CO, 2, KW, t, wb, co0, nco, st * 16); break;
    case 3: if (NS > 3) gc_tile(CO, 3, KW, t, wb, co0, nco, st * 16); break;
    case 4: if (NS > 4) gc_tile(CO, 4, KW, t, wb, co0, nco, st * 16); break;
    case 5: if (NS > 5) gc_tile(CO, 5, KW, t, wb, co0, nco, st * 16); break;
    default: break;
    }
}

/// Planes at most 8 wide (7×7 in RegNet's and ResNeXt's last stage): two output rows in one
/// vector, row `oy` in lanes 0–7 and row `oy + 1` in lanes 8–15, instead of 7 of 16 lanes — each
/// tap two 8-float loads joined (`offb`: the second row's block offsets, `kyu0..<kyu1` the kernel
/// rows either row reads; a row outside the image reads the zero block).
GC_INLINE void gc_pair(const int CO, const int KW, const gc_ctx *t, const int *offa, const int *offb, int kyu0,
                       int kyu1, const float *wb, int co0, int nco) {
    const sx_gconv_geom *g = t->g;
    const int kw = KW ? KW : g->kw, kh = g->kh;
    const size_t cstride = t->l->cstride;
    int tap[16];
    for (int kx = 0; kx < kw; kx++) tap[kx] = t->l->tap[kx];
    __m512 acc[8];
#pragma clang loop unroll(full)
    for (int co = 0; co < CO; co++) acc[co] = _mm512_setzero_ps();
    for (int c = 0; c < g->cin; c++) {
        const float *rc = t->rows + c * cstride;
        const float *wc = wb + (size_t)c * kh * kw * SX_GCONV_CO_BLOCK;
        for (int ky = kyu0; ky < kyu1; ky++) {
            const float *ra = rc + offa[ky], *rb = rc + offb[ky];
            const float *w = wc + ky * kw * SX_GCONV_CO_BLOCK;
            for (int kx = 0; kx < kw; kx++) {
                __m512 v = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(ra + tap[kx])),
                                              _mm256_loadu_ps(rb + tap[kx]), 1);
#pragma clang loop unroll(full)
                for (int co = 0; co < CO; co++)
                    acc[co] = _mm512_fmadd_ps(_mm512_set1_ps(w[kx * SX_GCONV_CO_BLOCK + co]), v, acc[co]);
            }
        }
    }
    const __m512 vlo = _mm512_set1_ps(t->lo), vhi = _mm512_set1_ps(t->hi);
    const __mmask8 m = (__mmask8)((1u << g->out_w) - 1u);
    const int w0 = g->out_w;
#pragma clang loop unroll(full)
    for (int co = 0; co < CO; co++) {
        if (co >= nco) break;
        int ch = co0 + co;
        __m512 v = _mm512_add_ps(acc[co], _mm512_set1_ps(t->bias ? t->bias[ch] : 0.0f));
        float *o = t->out + ch * t->oplane;
        if (t->res) {
            const float *rr = t->res + ch * t->oplane;
            v = _mm512_add_ps(v, _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_maskz_loadu_ps(m, rr)),
                                                    _mm256_maskz_loadu_ps(m, rr + w0), 1));
        }
        v = sx_act512(v, t->act, vlo, vhi);
        _mm256_mask_storeu_ps(o, m, _mm512_castps512_ps256(v));
        _mm256_mask_storeu_ps(o + w0, m, _mm512_extractf32x8_ps(v, 1));
    }
}

GC_TARGET
static void gc_pair_8_k3(const gc_ctx *t, const int *oa, const int *ob, int u0, int u1, const float *wb, int co0, int nco) {
    gc_pair(8, 3, t, oa, ob, u0, u1, wb, co0, nco);
}
GC_TARGET
static void gc_pair_4_k3(const gc_ctx *t, const int *oa, const int *ob, int u0, int u1, const float *wb, int co0, int nco) {
    gc_pair(4, 3, t, oa, ob, u0, u1, wb, co0, nco);
}
GC_TARGET
static void gc_pair_8_kn(const gc_ctx *t, const int *oa, const int *ob, int u0, int u1, const float *wb, int co0, int nco) {
    gc_pair(8, 0, t, oa, ob, u0, u1, wb, co0, nco);
}
GC_TARGET
static void gc_pair_4_kn(const gc_ctx *t, const int *oa, const int *ob, int u0, int u1, const float *wb, int co0, int nco) {
    gc_pair(4, 0, t, oa, ob, u0, u1, wb, co0, nco);
}

GC_TARGET
static void gc_row_8_k3(const gc_ctx *t, const float *wb, int co0, int nco) { gc_row(8, 3, 3, t, wb, co0, nco); }
GC_TARGET
static void gc_row_4_k3(const gc_ctx *t, const float *wb, int co0, int nco) { gc_row(4, 6, 3, t, wb, co0, nco); }
GC_TARGET
static void gc_row_8_kn(const gc_ctx *t, const float *wb, int co0, int nco) { gc_row(8, 3, 0, t, wb, co0, nco); }
GC_TARGET
static void gc_row_4_kn(const gc_ctx *t, const float *wb, int co0, int nco) { gc_row(4, 6, 0, t, wb, co0, nco); }

GC_TARGET
void sxk_gconv_avx512(const sx_gconv_geom *g, const float *x, const float *pw, const float *bias, const float *res,
                      float *out, int oy0, int oy1, int act, float lo, float hi, float *scratch) {
    sxk_gconv_layout l;
    sxk_gconv_layout_of(g, &l);
    sxk_gconv_rows rows;
    sxk_gconv_rows_init(&rows);
    const size_t k = (size_t)g->cin * g->kh * g->kw;
    int slot_off[16], slot_b[16];
    gc_ctx t = {.g = g, .l = &l, .rows = scratch, .slot_off = slot_off, .bias = bias,
                .oplane = (size_t)g->out_h * g->out_w, .act = act, .lo = lo, .hi = hi};
    int oy = oy0;
    if (g->out_w <= 8) {
        for (; oy + 1 < oy1; oy += 2) {
            int kyb0, kyb1;
            sxk_gconv_prepare(g, &l, &rows, x, oy, scratch, sxk_deinterleave2_avx512, &t.ky0, &t.ky1, slot_off);
            sxk_gconv_prepare(g, &l, &rows, x, oy + 1, scratch, sxk_deinterleave2_avx512, &kyb0, &kyb1, slot_b);
            // Kernel rows either output row reads (the other reads the zero block there).
            int u0 = t.ky0 < t.ky1 ? t.ky0 : kyb0, u1 = t.ky1 > kyb1 ? t.ky1 : kyb1;
            if (kyb0 < kyb1 && kyb0 < u0) u0 = kyb0;
            t.out = out + (size_t)oy * g->out_w;
            t.res = res ? res + (size_t)oy * g->out_w : NULL;
            for (int co0 = 0; co0 < g->cout; co0 += SX_GCONV_CO_BLOCK) {
                const float *wb = pw + (size_t)co0 * k;
                int nco = g->cout - co0 < SX_GCONV_CO_BLOCK ? g->cout - co0 : SX_GCONV_CO_BLOCK;
                if (g->kw == 3) (nco <= 4 ? gc_pair_4_k3 : gc_pair_8_k3)(&t, slot_off, slot_b, u0, u1, wb, co0, nco);
                else (nco <= 4 ? gc_pair_4_kn : gc_pair_8_kn)(&t, slot_off, slot_b, u0, u1, wb, co0, nco);
            }
        }
    }
    for (; oy < oy1; oy++) {
        sxk_gconv_prepare(g, &l, &rows, x, oy, scratch, sxk_deinterleave2_avx512, &t.ky0, &t.ky1, slot_off);
        t.out = out + (size_t)oy * g->out_w;
        t.res = res ? res + (size_t)oy * g->out_w : NULL;
        for (int co0 = 0; co0 < g->cout; co0 += SX_GCONV_CO_BLOCK) {
            const float *wb = pw + (size_t)co0 * k;
            int nco = g->cout - co0 < SX_GCONV_CO_BLOCK ? g->cout - co0 : SX_GCONV_CO_BLOCK;
            if (g->kw == 3) (nco <= 4 ? gc_row_4_k3 : gc_row_8_k3)(&t, wb, co0, nco);
            else (nco <= 4 ? gc_row_4_kn : gc_row_8_kn)(&t, wb, co0, nco);
        }
    }
}
#endif
