// Depthwise / pooling entry points: each runs the default configuration's kernel (the kernels
// themselves live in x86/, arm/ and portable.c), the portable C one where it has none.
#include "selfxit_gemm.h"
#include "kernels_internal.h"

#include <string.h>

void sx_dw3x3_plane(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, const float *w, float bias,
                    float *out, int out_h, int out_w, int act, float lo, float hi) {
    sx_kernel_config_default()->dw3x3_plane(buf, step_y, dy, off, w, bias, out, out_h, out_w, act, lo, hi);
}

void sx_deinterleave2(const float *s, float *d, int lo, int hi) {
    sx_kernel_config_default()->deinterleave2(s, d, lo, hi);
}

void sx_subsample2_plane(const float *x, int in_h, int in_w, int row0, int col0, float *dst, int plane_h, int plane_w) {
    // Plane columns j read input column 2j + col0; those inside the row: lo..<hi.
    int lo = col0 >= 0 ? 0 : (-col0 + 1) / 2;
    if (lo > plane_w) lo = plane_w;
    int hi = in_w - 1 - col0 < 0 ? 0 : (in_w - 1 - col0) / 2 + 1;
    if (hi > plane_w) hi = plane_w;
    if (hi < lo) hi = lo;
    // The kernel looked up once a plane, and the one or two padding columns a row has zeroed in
    // place: a stride-2 channel-major layer splits every channel into 4 such planes of ~15-float
    // rows, where a configuration lookup and two memset calls a row took longer than the copy
    // (64 channels of 28×28: 44 µs a sample, 15 % of ResNet-18 w64's layer2.0 3×3).
    void (*deinterleave)(const float *, float *, int, int) = sx_kernel_config_default()->deinterleave2;
    for (int i = 0; i < plane_h; i++) {
        float *row = dst + (size_t)i * plane_w;
        int iy = 2 * i + row0;
        if (iy < 0 || iy >= in_h) { memset(row, 0, sizeof(float) * (size_t)plane_w); continue; }
        for (int j = 0; j < lo; j++) row[j] = 0;
        if (hi > lo) deinterleave(x + (size_t)iy * in_w + col0, row, lo, hi);
        for (int j = hi; j < plane_w; j++) row[j] = 0;
    }
}

void sx_pad_plane_rows(const float *x, int in_h, int in_w, int pad_top, int pad_left, float *dst, int padded_w,
                       int row0, int row1) {
    // Columns of a padded row that hold input: pad_left ..< pad_left + in_w, clipped to the row.
    int lo = pad_left < 0 ? 0 : (pad_left > padded_w ? padded_w : pad_left);
    int hi = pad_left + in_w < lo ? lo : (pad_left + in_w > padded_w ? padded_w : pad_left + in_w);
    // One call a plane instead of three a row: a 3x3 layer on 28x28 planes pads 30 rows a
    // channel, and the per-row memset/memmove calls (for 1, 28 and 1 floats) cost more than
    // the floats they moved (1.7 % of ResNet-18 w64 at batch 32, perf cpu-clock, Zen 4).
    for (int r = row0; r < row1; r++) {
        float *d = dst + (size_t)r * padded_w;
        int iy = r - pad_top;
        if (iy < 0 || iy >= in_h || hi == lo) {
            for (int j = 0; j < padded_w; j++) d[j] = 0;
            continue;
        }
        const float *s = x + (size_t)iy * in_w + (lo - pad_left);
        for (int j = 0; j < lo; j++) d[j] = 0;
        for (int j = lo; j < hi; j++) d[j] = s[j - lo];
        for (int j = hi; j < padded_w; j++) d[j] = 0;
    }
}

void sx_dw3x3_direct(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                     const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                     int act, float lo, float hi) {
    const sx_kernel_config *cfg = sx_kernel_config_default();
    (cfg->dw3x3_direct ? cfg->dw3x3_direct : sxk_dw3x3_direct_portable)(x, in_h, in_w, stride, pad_top, pad_left, w,
                                                                        bias, res, out, oy0, oy1, out_w, act, lo, hi);
}

void sx_maxpool_direct(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                       float *out, int out_h, int out_w) {
    const sx_kernel_config *cfg = sx_kernel_config_default();
    (cfg->maxpool_direct ? cfg->maxpool_direct : sxk_maxpool_direct_portable)(x, in_h, in_w, kh, kw, stride, pad_top,
                                                                              pad_left, out, out_h, out_w);
}
