// AVX2 im2col of the AVX2 configuration (`sx_kernel_config.im2col`): packed B for the
// convolutions no direct kernel takes — on AVX2 the stride-2 3×3 layers past a stem
// (`s2_packed`). The portable path built each K row (channel, ky, kx) by its own pass over the
// output rows, copying a stride-2 row a float at a time: 0.10–0.15 ms of a 0.45–0.54 ms layer
// (ResNet-18 w64's 64→128 at 28→14 and 128→256 at 14→7, one thread; bench/packed_conv_ab.c,
// Zen 3; BENCHMARKS §7.37). Here one pass over an input row builds all of its taps.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx2_helpers.h"

#define AVX2_TARGET __attribute__((target("avx2,fma,avx")))
#define NR SXK_NR

/// Pixels a tap's line holds (whole output rows of them a pass), and the most taps a row
/// (`kernel_w`) the line-based path takes; wider rows or kernels go to the segment path.
#define LINE_PIXELS 256
#define LINE_TAPS 8
/// Floats past a line's pixels that a row's last 8-float store may write (overwritten by the
/// next row, or never read).
#define LINE_SLACK 16

/// The `sxk_im2col_segment_portable` contract on 8-float vectors (stride 1 or 2): plain loads
/// inside the input row, masked ones (masked-off lanes never read, zero) where a vector reaches
/// the padding; stride-2 rows load 16 columns and keep the even ones. Writes exactly pixels
/// `p0..<p1` of `out`. For rows too wide or kernels too large for the line path.
AVX2_TARGET
static void im2col_segment_avx2(const float *x, const sx_im2col_geom *g, int c, int ky, int kx, int oy0, int p0, int p1,
                                float *out) {
    const int ow = g->out_w, sw = g->stride_w, in_w = g->in_w;
    const float *src = x + (size_t)c * g->in_h * in_w;
    const int off = kx * g->dilation_w - g->pad_left;
    int p = p0, oy = oy0 + p0 / ow, ox0 = p0 % ow;
    while (p < p1) {
        const int ox1 = ow < ox0 + (p1 - p) ? ow : ox0 + (p1 - p);
        float *d = out + (p - p0) - ox0;  // d[ox] for ox in ox0..<ox1
        const int iy = oy * g->stride_h + ky * g->dilation_h - g->pad_top;
        const float *row = iy >= 0 && iy < g->in_h ? src + (ptrdiff_t)iy * in_w : NULL;
        for (int ox = ox0; ox < ox1; ox += 8) {
            const int ix = ox * sw + off;
            __m256 v = _mm256_setzero_ps();
            if (row && sw == 1) {
                v = sx_row_load8(row, ix, in_w, ix >= 0 && ix + 8 <= in_w);
            } else if (row) {
                const __m256 a = sx_row_load8(row, ix, in_w, ix >= 0 && ix + 8 <= in_w);
                const __m256 b = sx_row_load8(row, ix + 8, in_w, ix + 8 >= 0 && ix + 16 <= in_w);
                v = sx_even8(a, b);
            }
            if (ox1 - ox >= 8) _mm256_storeu_ps(d + ox, v);
            else sx_store_tail8(d + ox, v, ox1 - ox);
        }
        p += ox1 - ox0;
        oy++;
        ox0 = 0;
    }
}

/// Pixels `p..p+len` of one tap's line into K row `r` of packed B (`k` rows) from column `col`:
/// a panel's 16 columns of a row are 64 contiguous bytes. gemm.c's `put_run` on vectors (its
/// `memcpy` of a panel's partial run is a library call a chunk).
AVX2_TARGET
static inline void line_to_panels(float *dst, int k, int r, int col, const float *line, int len) {
    while (len > 0) {
        const int off = col & (NR - 1), l = NR - off < len ? NR - off : len;
        float *d = dst + (size_t)(col / NR) * NR * k + (size_t)r * NR + off;
        if (l == NR) {
            _mm256_storeu_ps(d, _mm256_loadu_ps(line));
            _mm256_storeu_ps(d + 8, _mm256_loadu_ps(line + 8));
        } else {
            int i = 0;
            if (l >= 8) { _mm256_storeu_ps(d, _mm256_loadu_ps(line)); i = 8; }
            if (i < l) sx_store_tail8(d + i, _mm256_loadu_ps(line + i), l - i);
        }
        line += l;
        col += l;
        len -= l;
    }
}

/// K rows `r0..<r1` for output rows `oy0..<oy1`, a kernel row (channel `c`, row `ky`) at a time:
/// each input row the window reaches is read once for all of that kernel row's taps `kx`, into
/// one line per tap (whole output rows, ≤ `LINE_PIXELS` pixels), and the lines are then copied
/// into B's panels. With stride 2 a 16-column load serves two taps — its even columns are tap
/// `kx`'s 8 pixels and its odd ones tap `kx + 1`'s. Dilation 1 only.
AVX2_TARGET
static void im2col_lines_avx2(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0,
                              float *dst) {
    const int kw = g->kernel_w, kh = g->kernel_h, taps = kw * kh, sw = g->stride_w;
    const int k = g->channels * taps, ow = g->out_w, in_w = g->in_w, in_h = g->in_h;
    const size_t plane = (size_t)in_h * in_w;
    const int rows_a_pass = LINE_PIXELS / ow;
    // Two sets of lines: a kernel row's lines are copied out after the next one's are built, so
    // the copy's 32-byte loads need not wait on the stores that wrote them (at other offsets).
    // Measured against one set (a /tmp probe, one thread, Zen 3, three runs alternating): 0.83–0.97
    // of its packing time on 64 channels 28×28 stride 2, level on 14×14 and 7×7 planes.
    float lines[2][LINE_TAPS][LINE_PIXELS + LINE_SLACK] __attribute__((aligned(32)));
    for (int ya = oy0; ya < oy1; ya += rows_a_pass) {
        const int yb = ya + rows_a_pass < oy1 ? ya + rows_a_pass : oy1;
        const int col = col0 + (ya - oy0) * ow, npix = (yb - ya) * ow;
        // Kernel rows (c, ky) overlapping r0..<r1, and the taps of each inside it.
        int pending = -1, pa = 0, pb = 0;  // the kernel row whose lines wait to be copied, its taps
        for (int kr = r0 / kw; kr * kw < r1; kr++) {
            const int c = kr / kh, ky = kr % kh;
            float (*line)[LINE_PIXELS + LINE_SLACK] = lines[kr & 1];
            const int ka = r0 - kr * kw > 0 ? r0 - kr * kw : 0, kb = r1 - kr * kw < kw ? r1 - kr * kw : kw;
            const float *src = x + (size_t)c * plane;
            for (int oy = ya; oy < yb; oy++) {
                const int iy = oy * g->stride_h + ky * g->dilation_h - g->pad_top;
                const int at = (oy - ya) * ow;
                if (iy < 0 || iy >= in_h) {
                    for (int kx = ka; kx < kb; kx++)
                        for (int ox = 0; ox < ow; ox += 8) _mm256_storeu_ps(&line[kx][at + ox], _mm256_setzero_ps());
                    continue;
                }
                const float *row = src + (ptrdiff_t)iy * in_w;
                for (int ox = 0; ox < ow; ox += 8) {
                    if (sw == 1) {
                        for (int kx = ka; kx < kb; kx++) {
                            const int ix = ox + kx - g->pad_left;
                            _mm256_storeu_ps(&line[kx][at + ox], sx_row_load8(row, ix, in_w, ix >= 0 && ix + 8 <= in_w));
                        }
                    } else {
                        for (int kx = ka & ~1; kx < kb; kx += 2) {
                            const int ix = 2 * ox + kx - g->pad_left;
                            const __m256 a = sx_row_load8(row, ix, in_w, ix >= 0 && ix + 8 <= in_w);
                            const __m256 b = sx_row_load8(row, ix + 8, in_w, ix + 8 >= 0 && ix + 16 <= in_w);
                            if (kx >= ka) _mm256_storeu_ps(&line[kx][at + ox], sx_even8(a, b));
                            if (kx + 1 < kb) _mm256_storeu_ps(&line[kx + 1][at + ox], sx_odd8(a, b));
                        }
                    }
                }
            }
            if (pending >= 0)
                for (int kx = pa; kx < pb; kx++) line_to_panels(dst, k, pending * kw + kx, col, lines[pending & 1][kx], npix);
            pending = kr, pa = ka, pb = kb;
        }
        if (pending >= 0)
            for (int kx = pa; kx < pb; kx++) line_to_panels(dst, k, pending * kw + kx, col, lines[pending & 1][kx], npix);
    }
}

void sxk_im2col_avx2(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst) {
    if (g->out_w <= 0 || oy1 <= oy0 || r1 <= r0) return;  // no pixels or no rows: nothing to write
    if (g->stride_w != 1 && g->stride_w != 2) {
        sxk_im2col_portable(x, g, r0, r1, oy0, oy1, col0, dst);
    } else if (g->dilation_w == 1 && g->kernel_w <= LINE_TAPS && g->out_w <= LINE_PIXELS) {
        im2col_lines_avx2(x, g, r0, r1, oy0, oy1, col0, dst);
    } else {
        sxk_im2col_with(im2col_segment_avx2, x, g, r0, r1, oy0, oy1, col0, dst);
    }
}

#endif
