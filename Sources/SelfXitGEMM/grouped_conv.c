// Grouped convolution (groups > 1, not depthwise) computed directly, one group at a time:
// RegNet (group width 8 or 16), ResNeXt (4…32). Before it, each group ran im2col + the packed
// GEMM: 8 output channels on AVX-512's 16-row A panel (half the tile idle) and packing B cost
// about as much as the product (RegNetY-400MF b1 1.30× ONNX Runtime, Zen 4, BENCHMARKS §7.9).
//
// How (every ISA): the input rows an output row reads are copied once into a small ring in
// scratch, zero-padded and split into stride phases (sxk_gconv_layout), so that every kernel
// tap of 16 (or 8) consecutive output columns is one plain vector load, whatever the stride,
// dilation or padding. Each input row is copied once per call (the ring keeps the rows the
// next output row shares); the kernels then hold a block of 8 output channels × several
// 16-column strips in registers and broadcast the weights (packed [cin][kh][kw][8] per block).
// This file: the layout, the row ring, weight packing and the portable C kernel (the scalar
// configuration's, and the reference of the others in Tests/Kernels/kernel_test.c).
#include "kernels_internal.h"

#include <string.h>

int sx_gconv_supported(const sx_gconv_geom *g) {
    if (!g) return 0;
    if (g->cin <= 0 || g->in_h <= 0 || g->in_w <= 0 || g->cout <= 0 || g->out_h <= 0 || g->out_w <= 0) return 0;
    if (g->kh <= 0 || g->kw <= 0 || g->kh > 16 || g->kw > 16) return 0;
    if (g->stride_h <= 0 || g->stride_w <= 0 || g->stride_h > 8 || g->stride_w > 8) return 0;
    if (g->dil_h <= 0 || g->dil_w <= 0 || g->dil_h > 64 || g->dil_w > 64) return 0;
    if (g->pad_top < 0 || g->pad_left < 0 || g->pad_top > 1024 || g->pad_left > 1024) return 0;
    if ((g->kh - 1) * g->dil_h + 1 + g->stride_h > SXK_GCONV_MAX_RING) return 0;
    if (g->out_w > 8192 || g->in_w > 65536 || g->cin > 4096 || g->cout > 4096) return 0;
    // Scratch stays bounded (at most 64 M floats; RegNet and ResNeXt need a few thousand).
    sxk_gconv_layout l;
    sxk_gconv_layout_of(g, &l);
    if ((double)g->cin * l.cstride > (double)(1 << 26)) return 0;
    return 1;
}

void sxk_gconv_layout_of(const sx_gconv_geom *g, sxk_gconv_layout *l) {
    l->ow_r = (g->out_w + 15) / 16 * 16;
    l->plen = l->ow_r + ((g->kw - 1) * g->dil_w) / g->stride_w;
    l->block = (g->stride_w * l->plen + 15) / 16 * 16;
    // The rows of output rows oy and oy + 1 (kernels for narrow planes take two rows at once).
    l->ring = (g->kh - 1) * g->dil_h + 1 + g->stride_h;
    l->zero_off = l->ring * l->block;
    l->cstride = (size_t)(l->ring + 1) * l->block;
    for (int kx = 0; kx < 16; kx++) {
        int q = kx * g->dil_w;
        l->tap[kx] = kx < g->kw ? (q % g->stride_w) * l->plen + q / g->stride_w : 0;
    }
}

size_t sx_gconv_packed_floats(const sx_gconv_geom *g) {
    if (!g || g->cout <= 0 || g->cin <= 0 || g->kh <= 0 || g->kw <= 0) return 0;
    size_t blocks = ((size_t)g->cout + SX_GCONV_CO_BLOCK - 1) / SX_GCONV_CO_BLOCK;
    return blocks * SX_GCONV_CO_BLOCK * (size_t)g->cin * g->kh * g->kw;
}

void sx_gconv_pack(const sx_gconv_geom *g, const float *w, float *dst) {
    size_t k = (size_t)g->cin * g->kh * g->kw;
    size_t total = sx_gconv_packed_floats(g);
    memset(dst, 0, total * sizeof(float));
    for (int co = 0; co < g->cout; co++) {
        float *blk = dst + (size_t)(co / SX_GCONV_CO_BLOCK) * SX_GCONV_CO_BLOCK * k;
        int j = co % SX_GCONV_CO_BLOCK;
        for (size_t r = 0; r < k; r++) blk[r * SX_GCONV_CO_BLOCK + j] = w[(size_t)co * k + r];
    }
}

size_t sx_gconv_scratch_floats(const sx_gconv_geom *g) {
    if (!sx_gconv_supported(g)) return 0;
    sxk_gconv_layout l;
    sxk_gconv_layout_of(g, &l);
    // The rows, plus one output row of accumulators for the portable kernel.
    return (size_t)g->cin * l.cstride + (size_t)l.ow_r;
}

void sxk_gconv_rows_init(sxk_gconv_rows *r) {
    for (int i = 0; i < SXK_GCONV_MAX_RING; i++) r->built[i] = -1;
    r->zeroed = 0;
}

/// Input row `row` (`in_w` floats) into its phase-split block `dst` (see sxk_gconv_layout): only
/// the floats that come from the row; the padding around them is the same for every row and was
/// zeroed once per call (sxk_gconv_prepare). With 8-channel groups a call builds 8 rows per output
/// row (16 at stride 2) against only 8 × 9 × 8 multiply-adds per output pixel, so the rows cost
/// about as much as the product when each one also cleared its padding (memset calls, Zen 4).
static void build_row(const sx_gconv_geom *g, const sxk_gconv_layout *l, const float *row, float *dst,
                      void (*deint)(const float *, float *, int, int)) {
    const int s = g->stride_w, pl = g->pad_left, plen = l->plen;
    for (int p = 0; p < s; p++) {
        float *d = dst + (size_t)p * plen;
        // Floats i with 0 ≤ i·s + p − pl < in_w.
        int lo = pl - p > 0 ? (pl - p + s - 1) / s : 0;
        int last = g->in_w - 1 - p + pl;  // i·s ≤ last
        int hi = last < 0 ? 0 : last / s + 1;
        if (hi > plen) hi = plen;
        if (lo > hi) lo = hi;
        const float *src = row + (lo * s + p - pl);
        if (hi > lo) {
            if (s == 1) memcpy(d + lo, src, (size_t)(hi - lo) * sizeof(float));
            else if (s == 2 && deint) deint(src, d + lo, 0, hi - lo);
            else for (int i = 0; i < hi - lo; i++) d[lo + i] = src[(size_t)i * s];
        }
    }
}

void sxk_gconv_prepare(const sx_gconv_geom *g, const sxk_gconv_layout *l, sxk_gconv_rows *r, const float *x, int oy,
                       float *scratch, void (*deint)(const float *, float *, int, int), int *ky0, int *ky1,
                       int *slot_off) {
    const size_t plane = (size_t)g->in_h * g->in_w, cstride = l->cstride;
    if (!r->zeroed) {  // the first output row of this call: clear the padding of every block once
        memset(scratch, 0, (size_t)g->cin * cstride * sizeof(float));
        r->zeroed = 1;
    }
    int first = -1, end = 0;
    for (int ky = 0; ky < g->kh; ky++) {
        int iy = oy * g->stride_h - g->pad_top + ky * g->dil_h;
        slot_off[ky] = l->zero_off;
        if (iy < 0 || iy >= g->in_h) continue;
        if (first < 0) first = ky;
        end = ky + 1;
        int slot = iy % l->ring;
        slot_off[ky] = slot * l->block;
        if (r->built[slot] == iy) continue;
        for (int c = 0; c < g->cin; c++)
            build_row(g, l, x + c * plane + (size_t)iy * g->in_w, scratch + c * cstride + slot_off[ky], deint);
        r->built[slot] = iy;
    }
    *ky0 = first < 0 ? 0 : first;
    *ky1 = first < 0 ? 0 : end;
}

void sxk_gconv_portable(const sx_gconv_geom *g, const float *x, const float *pw, const float *bias, const float *res,
                        float *out, int oy0, int oy1, int act, float lo, float hi, float *scratch) {
    sxk_gconv_layout l;
    sxk_gconv_layout_of(g, &l);
    sxk_gconv_rows rows;
    sxk_gconv_rows_init(&rows);
    const size_t cstride = l.cstride, k = (size_t)g->cin * g->kh * g->kw;
    const size_t oplane = (size_t)g->out_h * g->out_w;
    float *acc = scratch + (size_t)g->cin * cstride;
    int slot_off[16];
    for (int oy = oy0; oy < oy1; oy++) {
        int ky0, ky1;
        sxk_gconv_prepare(g, &l, &rows, x, oy, scratch, sxk_deinterleave2_portable, &ky0, &ky1, slot_off);
        for (int co = 0; co < g->cout; co++) {
            const float *wb = pw + (size_t)(co / SX_GCONV_CO_BLOCK) * SX_GCONV_CO_BLOCK * k + co % SX_GCONV_CO_BLOCK;
            for (int ox = 0; ox < g->out_w; ox++) acc[ox] = 0;
            for (int c = 0; c < g->cin; c++)
                for (int ky = ky0; ky < ky1; ky++) {
                    const float *r = scratch + c * cstride + slot_off[ky];
                    for (int kx = 0; kx < g->kw; kx++) {
                        float w = wb[(((size_t)c * g->kh + ky) * g->kw + kx) * SX_GCONV_CO_BLOCK];
                        const float *rp = r + l.tap[kx];
                        for (int ox = 0; ox < g->out_w; ox++) acc[ox] += w * rp[ox];
                    }
                }
            size_t o = co * oplane + (size_t)oy * g->out_w;
            float b = bias ? bias[co] : 0;
            for (int ox = 0; ox < g->out_w; ox++) {
                float v = acc[ox] + b;
                if (res) v += res[o + ox];
                out[o + ox] = sxk_act1(v, act, lo, hi);
            }
        }
    }
}
