// AVX-512 (F, VL, DQ) kernels of the AVX-512 configuration (configs/kernel_config.c): the packed
// 16×16 and 8×32 GEMM tiles, the direct (implicit-GEMM) product, the channel-major products
// (packed and direct), the few-rows product and the im2col gather. Compiled on x86 only; each
// function carries its own target attribute, so the file builds without -mavx512f and nothing
// here runs unless CPUID says so (the configuration table is the only way in).
#include "../kernels_internal.h"
#include "../avx512_helpers.h"

#if SX_X86
#include <immintrin.h>
#include <string.h>

#define AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx,prfchw")))
#define NR SXK_NR
#define MR_AVX512 SXK_MR_AVX512
#define KC_MAX SXK_KC_MAX
#define residual_in_place sxk_residual_in_place
#define act1 sxk_act1
#define IM2COL_CW 256

/// `im2col_segment` for stride-1 and stride-2 rows with AVX-512 masked loads (padding lanes
/// masked off, never read); stride-2 rows load 32 columns and keep the even ones.
AVX512_TARGET
static void im2col_segment_avx512(const float *x, const sx_im2col_geom *g, int c, int ky, int kx, int oy0, int p0, int p1, float *out) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const int ow = g->out_w, sw = g->stride_w;
    const float *src = x + (size_t)c * g->in_h * g->in_w;
    int off = kx * g->dilation_w - g->pad_left;
    int p = p0;
    int oy = oy0, ox0 = p0;
    if (p0 >= ow) { oy += p0 / ow; ox0 = p0 % ow; }
    while (p < p1) {
        int ox1 = ow < ox0 + (p1 - p) ? ow : ox0 + (p1 - p);
        float *d = out + (p - p0) - ox0;
        int iy = oy * g->stride_h + ky * g->dilation_h - g->pad_top;
        if (iy < 0 || iy >= g->in_h) {
            for (int ox = ox0; ox < ox1; ox += 16) {
                int n = ox1 - ox < 16 ? ox1 - ox : 16;
                _mm512_mask_storeu_ps(d + ox, (__mmask16)((1u << n) - 1u), _mm512_setzero_ps());
            }
        } else {
            const float *row = src + (ptrdiff_t)iy * g->in_w;
            for (int ox = ox0; ox < ox1; ox += 16) {
                int n = ox1 - ox < 16 ? ox1 - ox : 16;
                int ix = ox * sw + off;
                __m512 v;
                if (sw == 1) {
                    v = _mm512_maskz_loadu_ps(sx_row_mask(ix, g->in_w), row + ix);
                } else {
                    __m512 a = _mm512_maskz_loadu_ps(sx_row_mask(ix, g->in_w), row + ix);
                    __m512 b = _mm512_maskz_loadu_ps(sx_row_mask(ix + 16, g->in_w), row + ix + 16);
                    v = _mm512_permutex2var_ps(a, even, b);
                }
                _mm512_mask_storeu_ps(d + ox, (__mmask16)((1u << n) - 1u), v);
            }
        }
        p += ox1 - ox0;
        oy++;
        ox0 = 0;
    }
}

/// gathered through a per-tap table of input offsets, one AVX-512 gather per 16 pixels, instead of
/// a call per row and output row — on a 4×4 or 7×7 plane that per-row overhead was most of the
/// packing time.
#define GATHER_MAX_PIXELS 64
#define GATHER_MAX_TAPS 49

/// The input-plane index (`iy·in_w + ix`) that tap `t` reads for pixel `p` of output rows from
/// `oy0` (`npix` pixels), or −1 where it reads padding or lies past the pixels.
static inline int im2col_tap_index(const sx_im2col_geom *g, int oy0, int npix, int t, int p) {
    const int ky = t / g->kernel_w, kx = t % g->kernel_w;
    const int oy = oy0 + p / g->out_w, ox = p % g->out_w;
    const int iy = oy * g->stride_h + ky * g->dilation_h - g->pad_top;
    const int ix = ox * g->stride_w + kx * g->dilation_w - g->pad_left;
    return p < npix && iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w ? iy * g->in_w + ix : -1;
}

/// Stores the `n` ≤ 16 values of `val` as columns `col ...` of K row `r` of packed B (`k` rows):
/// the rest of one panel, then the start of the next.
AVX512_TARGET
static inline void im2col_store_columns(float *dst, int k, int r, int col, int n, __m512 val) {
    const int off = col & (NR - 1);
    float *row = dst + (size_t)(col / NR) * NR * k + (size_t)r * NR;
    const int first = NR - off < n ? NR - off : n;
    if (first == 16) _mm512_storeu_ps(row, val);
    else _mm512_mask_storeu_ps(row + off, (__mmask16)((1u << first) - 1u), val);
    if (n > first) {
        float *next = row + (size_t)NR * k;
        _mm512_mask_storeu_ps(next - first, (__mmask16)(((1u << n) - 1u) & ~((1u << first) - 1u)), val);
    }
}

AVX512_TARGET
static void im2col_gather_avx512(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst) {
    const int k = g->channels * g->kernel_h * g->kernel_w, taps = g->kernel_h * g->kernel_w;
    const int npix = (oy1 - oy0) * g->out_w, vecs = (npix + 15) / 16;
    const int plane = g->in_h * g->in_w;
    int table[GATHER_MAX_TAPS][GATHER_MAX_PIXELS] __attribute__((aligned(64)));
    for (int t = 0; t < taps; t++)
        for (int p = 0; p < vecs * 16; p++) table[t][p] = im2col_tap_index(g, oy0, npix, t, p);
    const __m512i none = _mm512_set1_epi32(-1);
    for (int r = r0; r < r1; r++) {
        int c = r / taps, t = r % taps;
        const float *src = x + (size_t)c * plane;
        for (int v = 0; v < vecs; v++) {
            __m512i idx = _mm512_load_si512((const void *)&table[t][16 * v]);
            __mmask16 inside = _mm512_cmpneq_epi32_mask(idx, none);
            __m512 val = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), inside, idx, src, 4);
            im2col_store_columns(dst, k, r, col0 + 16 * v, npix - 16 * v < 16 ? npix - 16 * v : 16, val);
        }
    }
}

/// Input planes of at most this many pixels (four registers) take `im2col_permute_avx512`.
#define PERMUTE_MAX_PLANE 64

/// `im2col_gather_avx512` for input planes of ≤ 64 pixels (ResNet-18's layer4 on 28×28 images:
/// 4×4 and 7×7 planes, K up to 4608 rows a sample): a channel's whole plane is loaded once into up
/// to four registers and each tap's 16 pixels are one or two permutes of them, zero-masked where
/// the tap reads padding. A gather costs ≈ 35 cycles on Zen 4 and was 7 % of that layer's time
/// (1 thread, BENCHMARKS §7.15); a permute about one.
AVX512_TARGET
static void im2col_permute_avx512(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst) {
    const int k = g->channels * g->kernel_h * g->kernel_w, taps = g->kernel_h * g->kernel_w;
    const int npix = (oy1 - oy0) * g->out_w, vecs = (npix + 15) / 16;
    const int plane = g->in_h * g->in_w;
    // Per tap and vector: the plane index of each pixel (0..63), which lanes read an input pixel
    // in registers 0–1 (index < 32) and which in registers 2–3.
    int table[GATHER_MAX_TAPS][GATHER_MAX_PIXELS] __attribute__((aligned(64)));
    __mmask16 lo_m[GATHER_MAX_TAPS][GATHER_MAX_PIXELS / 16], hi_m[GATHER_MAX_TAPS][GATHER_MAX_PIXELS / 16];
    for (int t = 0; t < taps; t++) {
        for (int v = 0; v < vecs; v++) {
            unsigned lo = 0, hi = 0;
            for (int j = 0; j < 16; j++) {
                int i = im2col_tap_index(g, oy0, npix, t, 16 * v + j);
                table[t][16 * v + j] = i < 0 ? 0 : i;
                if (i >= 0) { if (i < 32) lo |= 1u << j; else hi |= 1u << j; }
            }
            lo_m[t][v] = (__mmask16)lo;
            hi_m[t][v] = (__mmask16)hi;
        }
    }
    const __mmask16 l0 = sx_row_mask(0, plane), l1 = sx_row_mask(16, plane);
    const __mmask16 l2 = sx_row_mask(32, plane), l3 = sx_row_mask(48, plane);
    __m512 z0 = _mm512_setzero_ps(), z1 = z0, z2 = z0, z3 = z0;
    for (int r = r0, c = r0 / taps, t = r0 % taps; r < r1; r++) {
        if (r == r0 || t == 0) {
            const float *src = x + (size_t)c * plane;
            z0 = _mm512_maskz_loadu_ps(l0, src);
            if (plane > 16) z1 = _mm512_maskz_loadu_ps(l1, src + 16);
            if (plane > 32) z2 = _mm512_maskz_loadu_ps(l2, src + 32);
            if (plane > 48) z3 = _mm512_maskz_loadu_ps(l3, src + 48);
        }
        const int tap = t;
        if (++t == taps) { t = 0; c++; }
        for (int v = 0; v < vecs; v++) {
            __m512i idx = _mm512_load_si512((const void *)&table[tap][16 * v]);
            __m512 val;
            if (plane <= 16) val = _mm512_maskz_permutexvar_ps(lo_m[tap][v], idx, z0);
            else {
                val = _mm512_maskz_permutex2var_ps(lo_m[tap][v], z0, idx, z1);
                if (plane > 32) val = _mm512_mask_mov_ps(val, hi_m[tap][v], _mm512_permutex2var_ps(z2, idx, z3));
            }
            im2col_store_columns(dst, k, r, col0 + 16 * v, npix - 16 * v < 16 ? npix - 16 * v : 16, val);
        }
    }
}

/// im2col for the AVX-512 configuration: permutes or the gather for small planes, else row
/// segments with masked loads (stride 1 and 2) or the portable segment.
void sxk_im2col_avx512(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst) {
    const int npix = (oy1 - oy0) * g->out_w;
    if (npix <= GATHER_MAX_PIXELS && g->kernel_h * g->kernel_w <= GATHER_MAX_TAPS && g->in_h * g->in_w <= PERMUTE_MAX_PLANE) {
        im2col_permute_avx512(x, g, r0, r1, oy0, oy1, col0, dst);
        return;
    }
    if (npix <= GATHER_MAX_PIXELS && g->kernel_h * g->kernel_w <= GATHER_MAX_TAPS) {
        im2col_gather_avx512(x, g, r0, r1, oy0, oy1, col0, dst);
        return;
    }
    sxk_im2col_with(g->stride_w == 1 || g->stride_w == 2 ? im2col_segment_avx512 : sxk_im2col_segment_portable,
                    x, g, r0, r1, oy0, oy1, col0, dst);
}

/// How many k steps ahead the row-major kernels prefetch their A panel (64 bytes a step): far
/// enough to cover a miss to memory when a large weight matrix streams through once.
#ifndef A_PREFETCH
#define A_PREFETCH 48
#endif

AVX512_TARGET
static void kernel_avx512(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                          const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
    enum { MR = MR_AVX512 };
    __m512 acc[MR];
    __mmask16 mask = (__mmask16)((1u << nv) - 1u);
    if (accum) {
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++)
            acc[r] = r < mv ? _mm512_maskz_loadu_ps(mask, c + (ptrdiff_t)r * ldc) : _mm512_setzero_ps();
    } else {
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();
    }
#pragma clang loop unroll_count(2)
    for (int p = 0; p < k; p++) {
        __m512 bv = _mm512_loadu_ps(b + (size_t)p * NR);
        const float *ap = a + (size_t)p * MR;
        _mm_prefetch((const char *)(ap + A_PREFETCH * MR), _MM_HINT_T0);
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(ap[r]), bv, acc[r]);
    }
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r < mv) {
            __m512 v = acc[r];
            if (bias) v = _mm512_add_ps(v, _mm512_set1_ps(bias[r]));
            if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, res + (ptrdiff_t)r * ldr));
            v = sx_act512(v, act, vlo, vhi);
            _mm512_mask_storeu_ps(c + (ptrdiff_t)r * ldc, mask, v);
        }
    }
}

/// Two adjacent B panels (32 columns) per call, as two passes of 8 rows × 32 columns over the
/// 16-row A panel: each broadcast A value feeds two FMAs (16 accumulators per pass).
/// `b1` is the second panel (same K offset as `b`); `nv` counts valid columns over both (17..32).
AVX512_TARGET
static void kernel_avx512_x2(int k, const float *a, const float *b, const float *b1, float *c, ptrdiff_t ldc, int mv, int nv,
                             const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
    enum { MR = MR_AVX512, HR = 8 };
    const __mmask16 m0 = sx_row_mask(0, nv), m1 = sx_row_mask(NR, nv);
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int h = 0; h < MR; h += HR) {
        if (h >= mv) break;
        int hv = mv - h;
        float *ch = c + (ptrdiff_t)h * ldc;
        __m512 acc0[HR], acc1[HR];
        if (accum) {
#pragma clang loop unroll(full)
            for (int r = 0; r < HR; r++) {
                acc0[r] = r < hv ? _mm512_maskz_loadu_ps(m0, ch + (ptrdiff_t)r * ldc) : _mm512_setzero_ps();
                acc1[r] = r < hv ? _mm512_maskz_loadu_ps(m1, ch + (ptrdiff_t)r * ldc + 16) : _mm512_setzero_ps();
            }
        } else {
#pragma clang loop unroll(full)
            for (int r = 0; r < HR; r++) { acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps(); }
        }
        const float *ah = a + h;
#pragma clang loop unroll_count(2)
        for (int p = 0; p < k; p++) {
            __m512 bv0 = _mm512_loadu_ps(b + (size_t)p * NR);
            __m512 bv1 = _mm512_loadu_ps(b1 + (size_t)p * NR);
            const float *ap = ah + (size_t)p * MR;
            _mm_prefetch((const char *)(ap + A_PREFETCH * MR), _MM_HINT_T0);
#pragma clang loop unroll(full)
            for (int r = 0; r < HR; r++) {
                __m512 av = _mm512_set1_ps(ap[r]);
                acc0[r] = _mm512_fmadd_ps(av, bv0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(av, bv1, acc1[r]);
            }
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < HR; r++) {
            if (r < hv) {
                __m512 v0 = acc0[r], v1 = acc1[r];
                if (bias) { __m512 bb = _mm512_set1_ps(bias[h + r]); v0 = _mm512_add_ps(v0, bb); v1 = _mm512_add_ps(v1, bb); }
                if (res) {
                    const float *rr = res + (ptrdiff_t)(h + r) * ldr;
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, rr));
                    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, rr + 16));
                }
                v0 = sx_act512(v0, act, vlo, vhi);
                v1 = sx_act512(v1, act, vlo, vhi);
                _mm512_mask_storeu_ps(ch + (ptrdiff_t)r * ldc, m0, v0);
                _mm512_mask_storeu_ps(ch + (ptrdiff_t)r * ldc + 16, m1, v1);
            }
        }
    }
}

/// Where a 16-column vector of a direct product goes: the grid columns `q..q+15` whose output
/// pixels exist (`valid`), packed to consecutive pixels from `pixel` on.
typedef struct { __mmask16 load, valid; int pixel; } direct_vec;

/// Grid columns `q..<q+16`: loads stop at `n`; a column exists when `col % grid_w < valid_w`.
static inline direct_vec direct_vec_at(const sx_gemm_direct_b *b, int q) {
    direct_vec v;
    int len = b->n - q < 16 ? (b->n - q > 0 ? b->n - q : 0) : 16;
    v.load = (__mmask16)((1u << len) - 1u);
    if (b->grid_w == b->valid_w) {
        v.valid = v.load;
        v.pixel = q;
        return v;
    }
    int row = q / b->grid_w, col = q - row * b->grid_w;
    v.pixel = row * b->valid_w + (col < b->valid_w ? col : b->valid_w);
    unsigned mask = 0;
    for (int i = 0; i < len; i++) {
        if (col < b->valid_w) mask |= 1u << i;
        if (++col == b->grid_w) col = 0;
    }
    v.valid = (__mmask16)mask;
    return v;
}

AVX512_TARGET
static inline __m512 direct_load_c(const float *c, direct_vec v) {
    return v.valid == 0xFFFF ? _mm512_loadu_ps(c + v.pixel) : _mm512_maskz_expandloadu_ps(v.valid, c + v.pixel);
}

AVX512_TARGET
static inline void direct_store_c(float *c, direct_vec v, __m512 x) {
    if (v.valid == 0xFFFF) { _mm512_storeu_ps(c + v.pixel, x); return; }
    int cnt = __builtin_popcount(v.valid);
    _mm512_mask_storeu_ps(c + v.pixel, (__mmask16)((1u << cnt) - 1u), _mm512_maskz_compress_ps(v.valid, x));
}

/// The 3-vector kernel's epilogue for rows `h..h+7` when all 48 columns are output pixels and
/// the activation is none or ReLU: straight-line code per flag combination (`has_bias`,
/// `has_res`, `relu` constants of each inlined copy), without the per-vector tests of the
/// general epilogue, which cost ResNet-50's 1×1 layers 2–8 % (BENCHMARKS §7.28).
__attribute__((always_inline))
AVX512_TARGET
static inline void direct3_store_dense(const int has_bias, const int has_res, const int relu, __m512 acc[3][8], int hv,
                                       float *ch, ptrdiff_t ldc, int pixel, const float *bias, const float *res, ptrdiff_t ldr) {
#pragma clang loop unroll(full)
    for (int r = 0; r < 8; r++) {
        if (r < hv) {
            const __m512 bb = has_bias ? _mm512_set1_ps(bias[r]) : _mm512_setzero_ps();
            float *cr = ch + (ptrdiff_t)r * ldc + pixel;
            const float *rr = has_res ? res + (ptrdiff_t)r * ldr + pixel : NULL;
#pragma clang loop unroll(full)
            for (int v = 0; v < 3; v++) {
                __m512 y = acc[v][r];
                if (has_bias) y = _mm512_add_ps(y, bb);
                if (has_res) y = _mm512_add_ps(y, _mm512_loadu_ps(rr + 16 * v));
                // max(0, y): maxps returns its second operand when either is NaN, so a NaN stays NaN.
                if (relu) y = _mm512_max_ps(_mm512_setzero_ps(), y);
                _mm512_storeu_ps(cr + 16 * v, y);
            }
        }
    }
}

/// `kernel_avx512_direct` for 48 grid columns whose loads are all in range: 8 rows × 3 vectors
/// (24 accumulators) per pass, 11 loads per 24 FMAs instead of 10 per 16.
AVX512_TARGET
static void kernel_avx512_direct3(int k, const float *a, const float *x, const int *off, int q,
                                  const direct_vec *vec, float *c, ptrdiff_t ldc, int mv,
                                  const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
    enum { MR = MR_AVX512, HR = 8 };
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), zero = _mm512_setzero_ps();
    const float *xq = x + q;
    // All 48 columns output pixels, consecutive in C (a grid as wide as the output rows, or a
    // stretch of one row).
    const int dense = vec[0].valid == 0xFFFF && vec[1].valid == 0xFFFF && vec[2].valid == 0xFFFF
        && vec[1].pixel == vec[0].pixel + 16 && vec[2].pixel == vec[0].pixel + 32;
    for (int h = 0; h < MR; h += HR) {
        if (h >= mv) break;
        int hv = mv - h;
        float *ch = c + (ptrdiff_t)h * ldc;
        __m512 acc[3][HR];
        if (accum && dense) {
#pragma clang loop unroll(full)
            for (int r = 0; r < HR; r++)
#pragma clang loop unroll(full)
                for (int v = 0; v < 3; v++) acc[v][r] = r < hv ? _mm512_loadu_ps(ch + (ptrdiff_t)r * ldc + vec[0].pixel + 16 * v) : zero;
        } else {
#pragma clang loop unroll(full)
            for (int r = 0; r < HR; r++)
#pragma clang loop unroll(full)
                for (int v = 0; v < 3; v++) acc[v][r] = accum && r < hv ? direct_load_c(ch + (ptrdiff_t)r * ldc, vec[v]) : zero;
        }
        const float *ah = a + h;
#pragma clang loop unroll_count(2)
        for (int p = 0; p < k; p++) {
            const float *bp = xq + off[p];
            __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), b2 = _mm512_loadu_ps(bp + 32);
            const float *ap = ah + (size_t)p * MR;
            _mm_prefetch((const char *)(ap + A_PREFETCH * MR), _MM_HINT_T0);
#pragma clang loop unroll(full)
            for (int r = 0; r < HR; r++) {
                __m512 av = _mm512_set1_ps(ap[r]);
                acc[0][r] = _mm512_fmadd_ps(av, b0, acc[0][r]);
                acc[1][r] = _mm512_fmadd_ps(av, b1, acc[1][r]);
                acc[2][r] = _mm512_fmadd_ps(av, b2, acc[2][r]);
            }
        }
        if (dense && (act == SX_GEMM_ACT_NONE || act == SX_GEMM_ACT_RELU)) {
            const float *bh = bias ? bias + h : NULL, *rh = res ? res + (ptrdiff_t)h * ldr : NULL;
            const int pixel = vec[0].pixel, relu = act == SX_GEMM_ACT_RELU;
            switch ((bias ? 4 : 0) | (res ? 2 : 0) | relu) {
            case 0: direct3_store_dense(0, 0, 0, acc, hv, ch, ldc, pixel, bh, rh, ldr); break;
            case 1: direct3_store_dense(0, 0, 1, acc, hv, ch, ldc, pixel, bh, rh, ldr); break;
            case 2: direct3_store_dense(0, 1, 0, acc, hv, ch, ldc, pixel, bh, rh, ldr); break;
            case 3: direct3_store_dense(0, 1, 1, acc, hv, ch, ldc, pixel, bh, rh, ldr); break;
            case 4: direct3_store_dense(1, 0, 0, acc, hv, ch, ldc, pixel, bh, rh, ldr); break;
            case 5: direct3_store_dense(1, 0, 1, acc, hv, ch, ldc, pixel, bh, rh, ldr); break;
            case 6: direct3_store_dense(1, 1, 0, acc, hv, ch, ldc, pixel, bh, rh, ldr); break;
            default: direct3_store_dense(1, 1, 1, acc, hv, ch, ldc, pixel, bh, rh, ldr); break;
            }
            continue;
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < HR; r++) {
            if (r < hv) {
#pragma clang loop unroll(full)
                for (int v = 0; v < 3; v++) {
                    __m512 y = acc[v][r];
                    if (bias) y = _mm512_add_ps(y, _mm512_set1_ps(bias[h + r]));
                    if (res) y = _mm512_add_ps(y, direct_load_c(res + (ptrdiff_t)(h + r) * ldr, vec[v]));
                    y = sx_act512(y, act, vlo, vhi);
                    direct_store_c(ch + (ptrdiff_t)r * ldc, vec[v], y);
                }
            }
        }
    }
}

/// The direct product's micro-kernel: rows `< mv` of an A panel (16 rows) against grid columns
/// `q..q+16·nvec` (nvec = 1 or 2), B element (kk, col) read in place at `x[off[kk] + col]`.
/// Two passes of 8 rows keep 16 accumulators; the epilogue is `kernel_avx512_x2`'s.
AVX512_TARGET
static void kernel_avx512_direct(int k, const float *a, const float *x, const int *off, int q, int nvec,
                                 const direct_vec *vec, float *c, ptrdiff_t ldc, int mv,
                                 const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
    enum { MR = MR_AVX512, HR = 8 };
    const __mmask16 l0 = vec[0].load, l1 = nvec > 1 ? vec[1].load : 0;
    const int full = l0 == 0xFFFF && l1 == 0xFFFF;
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), zero = _mm512_setzero_ps();
    const float *xq = x + q;
    for (int h = 0; h < MR; h += HR) {
        if (h >= mv) break;
        int hv = mv - h;
        float *ch = c + (ptrdiff_t)h * ldc;
        __m512 acc0[HR], acc1[HR];
        if (accum) {
#pragma clang loop unroll(full)
            for (int r = 0; r < HR; r++) {
                acc0[r] = r < hv ? direct_load_c(ch + (ptrdiff_t)r * ldc, vec[0]) : zero;
                acc1[r] = r < hv && nvec > 1 ? direct_load_c(ch + (ptrdiff_t)r * ldc, vec[1]) : zero;
            }
        } else {
#pragma clang loop unroll(full)
            for (int r = 0; r < HR; r++) { acc0[r] = zero; acc1[r] = zero; }
        }
        const float *ah = a + h;
        if (full) {
#pragma clang loop unroll_count(2)
            for (int p = 0; p < k; p++) {
                const float *bp = xq + off[p];
                __m512 bv0 = _mm512_loadu_ps(bp), bv1 = _mm512_loadu_ps(bp + 16);
                const float *ap = ah + (size_t)p * MR;
                _mm_prefetch((const char *)(ap + A_PREFETCH * MR), _MM_HINT_T0);
#pragma clang loop unroll(full)
                for (int r = 0; r < HR; r++) {
                    __m512 av = _mm512_set1_ps(ap[r]);
                    acc0[r] = _mm512_fmadd_ps(av, bv0, acc0[r]);
                    acc1[r] = _mm512_fmadd_ps(av, bv1, acc1[r]);
                }
            }
        } else if (nvec > 1) {
            // The tail chunk: the same loop with masked loads, kept apart from the full one,
            // which measured ~10 % faster on its own (unrolled, prefetching) than a shared loop.
            for (int p = 0; p < k; p++) {
                const float *bp = xq + off[p];
                __m512 bv0 = _mm512_maskz_loadu_ps(l0, bp), bv1 = _mm512_maskz_loadu_ps(l1, bp + 16);
                const float *ap = ah + (size_t)p * MR;
#pragma clang loop unroll(full)
                for (int r = 0; r < HR; r++) {
                    __m512 av = _mm512_set1_ps(ap[r]);
                    acc0[r] = _mm512_fmadd_ps(av, bv0, acc0[r]);
                    acc1[r] = _mm512_fmadd_ps(av, bv1, acc1[r]);
                }
            }
        } else {
            // One vector: all 16 rows in one pass would need 16 broadcasts per load; keep 8.
            for (int p = 0; p < k; p++) {
                __m512 bv0 = _mm512_maskz_loadu_ps(l0, xq + off[p]);
                const float *ap = ah + (size_t)p * MR;
#pragma clang loop unroll(full)
                for (int r = 0; r < HR; r++) acc0[r] = _mm512_fmadd_ps(_mm512_set1_ps(ap[r]), bv0, acc0[r]);
            }
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < HR; r++) {
            if (r < hv) {
                for (int v = 0; v < nvec; v++) {
                    __m512 y = v == 0 ? acc0[r] : acc1[r];
                    if (bias) y = _mm512_add_ps(y, _mm512_set1_ps(bias[h + r]));
                    if (res) y = _mm512_add_ps(y, direct_load_c(res + (ptrdiff_t)(h + r) * ldr, vec[v]));
                    y = sx_act512(y, act, vlo, vhi);
                    direct_store_c(ch + (ptrdiff_t)r * ldc, vec[v], y);
                }
            }
        }
    }
}

/// K steps ahead that the channel-major kernels fetch their weights (streamed from memory on
/// the first pass, ahead of the hardware prefetchers).
#ifndef CT_PREFETCH
#define CT_PREFETCH 48
#endif
/// K steps ahead that the channel-major direct kernel fetches its input (B) lines into L1 (2–8
/// measured alike; 4 kept).
#ifndef CTD_XPREFETCH
#define CTD_XPREFETCH 4
#endif

/// `ct_gather_c` when the `R` pixels are consecutive in C (one row segment of one sample): each
/// channel's `R` sums are one masked load, and a transpose turns them into the pixels' vectors.
__attribute__((always_inline))
AVX512_TARGET
static inline void ct_load_c_rows(const int R, __m512 *acc0, __m512 *acc1, int nvec, const __mmask16 *cm,
                                  const float *c, ptrdiff_t ldc) {
    const __mmask16 pixels = (__mmask16)((1u << R) - 1u);
    for (int v = 0; v < nvec; v++) {
        __m512 rows[16];
#pragma clang loop unroll(full)
        for (int ch = 0; ch < 16; ch++)
            rows[ch] = _mm512_maskz_loadu_ps((cm[v] >> ch) & 1 ? pixels : 0, c + (16 * v + ch) * ldc);
        sx_transpose16(rows);
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            if (v == 0) acc0[r] = rows[r]; else acc1[r] = rows[r];
        }
    }
}

/// `ct_store` when the `R` pixels are consecutive in C and in the residual: bias added to the
/// pixels' vectors, a transpose, then per channel the residual's row added (one masked load),
/// the activation and one masked store — 16 stores a vector instead of a 16-lane scatter.
__attribute__((always_inline))
AVX512_TARGET
static inline void ct_store_rows(const int R, const __m512 *acc0, const __m512 *acc1, int nvec, const __mmask16 *cm,
                                 float *c, ptrdiff_t ldc, const float *res, ptrdiff_t ldr,
                                 const float *bias, int act, float lo, float hi) {
    const __mmask16 pixels = (__mmask16)((1u << R) - 1u);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), zero = _mm512_setzero_ps();
    for (int v = 0; v < nvec; v++) {
        __m512 bv = bias ? _mm512_maskz_loadu_ps(cm[v], bias + 16 * v) : zero;
        __m512 rows[16];
#pragma clang loop unroll(full)
        for (int r = 0; r < 16; r++) rows[r] = r < R ? _mm512_add_ps(v == 0 ? acc0[r] : acc1[r], bv) : zero;
        sx_transpose16(rows);
#pragma clang loop unroll(full)
        for (int ch = 0; ch < 16; ch++) {
            if (!((cm[v] >> ch) & 1)) break;  // channels past m (a prefix of the lanes is valid)
            __m512 y = rows[ch];
            if (res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(pixels, res + (16 * v + ch) * ldr));
            _mm512_mask_storeu_ps(c + (16 * v + ch) * ldc, pixels, sx_act512(y, act, vlo, vhi));
        }
    }
}

/// Starts channel-major accumulators from the sums already in C: pixel `r`'s channels run down
/// the column at `cpix[r]` (`ldc` apart, lane offsets `cidx`), 16 in `acc0` and 16 more in `acc1`.
__attribute__((always_inline))
AVX512_TARGET
static inline void ct_gather_c(const int R, __m512 *acc0, __m512 *acc1, int nvec, const __mmask16 *cm,
                               float *const *cpix, __m512i cidx, ptrdiff_t ldc) {
    // Every loop over the pixels is unrolled: an array indexed at run time would live on the
    // stack, not in registers (SwiftPM builds C at -O2).
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        acc0[r] = _mm512_mask_i32gather_ps(acc0[r], cm[0], cidx, cpix[r], 4);
        if (nvec > 1) acc1[r] = _mm512_mask_i32gather_ps(acc1[r], cm[1], cidx, cpix[r] + 16 * ldc, 4);
    }
}

/// The channel-major kernels' epilogue: bias, the residual at `rpix[r]` (gathered; `rpix` may
/// be NULL), the activation, then pixel `r`'s channels scattered down its column at `cpix[r]`.
__attribute__((always_inline))
AVX512_TARGET
static inline void ct_store(const int R, const __m512 *acc0, const __m512 *acc1, int nvec, const __mmask16 *cm,
                            float *const *cpix, __m512i cidx, ptrdiff_t ldc, const float *const *rpix, ptrdiff_t ldr,
                            const float *bias, int act, float lo, float hi) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), zero = _mm512_setzero_ps();
    const __m512i ridx = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)ldr));
    for (int v = 0; v < nvec; v++) {
        __m512 bv = bias ? _mm512_maskz_loadu_ps(cm[v], bias + 16 * v) : zero;
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m512 y = _mm512_add_ps(v == 0 ? acc0[r] : acc1[r], bv);
            if (rpix) y = _mm512_add_ps(y, _mm512_mask_i32gather_ps(zero, cm[v], ridx, rpix[r] + 16 * v * ldr, 4));
            y = sx_act512(y, act, vlo, vhi);
            _mm512_mask_i32scatter_ps(cpix[r] + 16 * v * ldc, cm[v], cidx, y, 4);
        }
    }
}

/// The channel-major micro-kernel of `sx_gemm_compute_ct`: `R` pixels (broadcast from lanes
/// `0..<R` of `px`, a packed B panel offset to the first pixel) × up to 32 output channels (one or
/// two weight panels as vectors), so small planes waste no vector lanes on missing pixels. Each
/// accumulator holds one pixel's 16 channels; the epilogue adds bias and residual, applies the
/// activation and writes each channel's pixels as one row (`ct_store_rows`) when the pixels are
/// consecutive in C, else scatters each pixel down its column (`ct_store`). `cpix[r]`/`rpix[r]`:
/// pixel `r`'s output/residual at the pair's first channel; `cm[v]` masks channels past `m`.
__attribute__((always_inline))
AVX512_TARGET
static inline void kernel_ct(const int R, int k, const float *px, const float *w0, const float *w1, int nvec,
                             const __mmask16 *cm, float *const *cpix, ptrdiff_t ldc, const float *const *rpix, ptrdiff_t ldr,
                             const float *bias, int act, float lo, float hi, int accum) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i cidx = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)ldc));
    __m512 acc0[8], acc1[8];
#pragma clang loop unroll(full)
    for (int r = 0; r < 8; r++) { acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps(); }
    // Pixels of one sample's plane lie side by side in C (and in the residual): per-channel rows
    // instead of gathers and scatters. A group that runs into the next sample scatters.
    const int consecutive = cpix[R - 1] == cpix[0] + (R - 1);
    // A later K block: start from the partial sums the earlier blocks left in C.
    if (accum) {
        if (consecutive) ct_load_c_rows(R, acc0, acc1, nvec, cm, cpix[0], ldc);
        else ct_gather_c(R, acc0, acc1, nvec, cm, cpix, cidx, ldc);
    }
    if (nvec == 2) {
#pragma clang loop unroll_count(2)
        for (int p = 0; p < k; p++) {
            __m512 a0 = _mm512_load_ps(w0 + (size_t)p * NR), a1 = _mm512_load_ps(w1 + (size_t)p * NR);
            // Weights stream from memory on the first pass: fetch well ahead of the hardware.
            _mm_prefetch((const char *)(w0 + (size_t)(p + CT_PREFETCH) * NR), _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + (size_t)(p + CT_PREFETCH) * NR), _MM_HINT_T0);
            const float *xp = px + (size_t)p * NR;
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                __m512 b = _mm512_set1_ps(xp[r]);
                acc0[r] = _mm512_fmadd_ps(a0, b, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(a1, b, acc1[r]);
            }
        }
    } else {
        for (int p = 0; p < k; p++) {
            __m512 a0 = _mm512_load_ps(w0 + (size_t)p * NR);
            const float *xp = px + (size_t)p * NR;
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) acc0[r] = _mm512_fmadd_ps(a0, _mm512_set1_ps(xp[r]), acc0[r]);
        }
    }
    if (consecutive) ct_store_rows(R, acc0, acc1, nvec, cm, cpix[0], ldc, rpix ? rpix[0] : NULL, ldr, bias, act, lo, hi);
    else ct_store(R, acc0, acc1, nvec, cm, cpix, cidx, ldc, rpix, ldr, bias, act, lo, hi);
}


void sxk_gemm_avx512(const float *pa, int m, int k, int mp0, int mp1, const float *pb, int n, int np0, int np1,
                     const sx_gemm_out *out) {
    sxk_gemm_drive(kernel_avx512, NULL, kernel_avx512_x2, MR_AVX512, pa, m, k, mp0, mp1, pb, n, np0, np1, out);
}

/// sx_sgemm's few-columns tile: `R` (1…8) rows of A read in place (`lda` apart) × one or two B
/// panels (`nvec`, `nv` valid columns of them), C added to when `accum`. Each A row is its own
/// contiguous stream (8 streams the prefetchers follow); no packing of the large operand.
__attribute__((always_inline))
AVX512_TARGET
static inline void skinny_tile_avx512(const int R, int k, const float *a, ptrdiff_t lda, const float *b0,
                                      const float *b1, int nvec, float *c, ptrdiff_t ldc, int nv, int accum) {
    const __mmask16 m0 = sx_row_mask(0, nv), m1 = sx_row_mask(NR, nv);
    __m512 acc0[8], acc1[8];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) { acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps(); }
    if (nvec > 1) {
#pragma clang loop unroll_count(4)
        for (int p = 0; p < k; p++) {
            const __m512 x0 = _mm512_loadu_ps(b0 + (size_t)p * NR), x1 = _mm512_loadu_ps(b1 + (size_t)p * NR);
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                const __m512 av = _mm512_set1_ps(a[(ptrdiff_t)r * lda + p]);
                acc0[r] = _mm512_fmadd_ps(av, x0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(av, x1, acc1[r]);
            }
        }
    } else {
        // One panel: two accumulators a row over even and odd K steps, so that even a 4-row
        // tail keeps 8 FMAs in flight.
#pragma clang loop unroll_count(2)
        for (int p = 0; p + 1 < k; p += 2) {
            const __m512 x0 = _mm512_loadu_ps(b0 + (size_t)p * NR), x1 = _mm512_loadu_ps(b0 + (size_t)(p + 1) * NR);
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                acc0[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[(ptrdiff_t)r * lda + p]), x0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[(ptrdiff_t)r * lda + p + 1]), x1, acc1[r]);
            }
        }
        if (k & 1) {
            const __m512 x0 = _mm512_loadu_ps(b0 + (size_t)(k - 1) * NR);
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) acc0[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[(ptrdiff_t)r * lda + k - 1]), x0, acc0[r]);
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) acc0[r] = _mm512_add_ps(acc0[r], acc1[r]);
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        float *cr = c + (ptrdiff_t)r * ldc;
        __m512 v0 = acc0[r];
        if (accum) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
        _mm512_mask_storeu_ps(cr, m0, v0);
        if (nvec > 1) {
            __m512 v1 = acc1[r];
            if (accum) v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + NR));
            _mm512_mask_storeu_ps(cr + NR, m1, v1);
        }
    }
}

AVX512_TARGET
void sxk_sgemm_skinny_avx512(int m, int n, int k, const float *a, ptrdiff_t lda, const float *pb, float *c,
                             ptrdiff_t ldc, int beta1) {
    // As sxk_sgemm_skinny_avx2: few columns (a classifier's 1000×2048 weights times ≤ 32 samples),
    // so A is read in place 8 rows at a time and never copied; B (all of it packed, alpha applied)
    // is the small operand. K in blocks of 256: a pair of B panels (32 KB) stays in L1 while
    // the next rows pass.
    enum { KB = 256, ROWS = 8 };
    const int panels = (n + NR - 1) / NR;
    for (int p0 = 0; p0 < k; p0 += KB) {
        const int kc = k - p0 < KB ? k - p0 : KB;
        for (int jp = 0; jp < panels; jp += 2) {
            const int nvec = panels - jp >= 2 ? 2 : 1;
            const int nv = n - jp * NR < nvec * NR ? n - jp * NR : nvec * NR;
            const float *b0 = pb + (size_t)jp * NR * k + (size_t)p0 * NR;
            const float *b1 = nvec > 1 ? b0 + (size_t)NR * k : NULL;
            const int acc = p0 > 0 || beta1;
            for (int i0 = 0; i0 < m; i0 += ROWS) {
                const float *ai = a + (ptrdiff_t)i0 * lda + p0;
                float *ci = c + (ptrdiff_t)i0 * ldc + jp * NR;
#define SKINNY_CASE(R) case R: skinny_tile_avx512(R, kc, ai, lda, b0, b1, nvec, ci, ldc, nv, acc); break;
                switch (m - i0 < ROWS ? m - i0 : ROWS) {
                    SKINNY_CASE(1) SKINNY_CASE(2) SKINNY_CASE(3) SKINNY_CASE(4)
                    SKINNY_CASE(5) SKINNY_CASE(6) SKINNY_CASE(7) SKINNY_CASE(8)
                }
#undef SKINNY_CASE
            }
        }
    }
}

void sxk_direct_avx512(const float *pa, int m, int k, int mp0, int mp1,
                            const sx_gemm_direct_b *b, int q0, int q1, const sx_gemm_out *out) {
    const int mr = MR_AVX512;
    const int in_place = residual_in_place(out);
    int kblocks = (k + KC_MAX - 1) / KC_MAX;
    if (q1 - q0 <= 2 * NR || (size_t)(mp1 - mp0) * mr * k * sizeof(float) <= (1u << 20)) kblocks = 1;
    const int kc = (k + kblocks - 1) / kblocks;
    for (int kb0 = 0; kb0 < k; kb0 += kc) {
        const int klen = k - kb0 < kc ? k - kb0 : kc;
        const int first = kb0 == 0, last = kb0 + klen >= k;
        // Columns per block: as many as keep the block's B (klen rows) within ~256 KB of L2.
        // Whole 48-column passes per block (the 3-vector kernel's width).
        int cpb = (int)((64 * 1024) / (size_t)klen) / (3 * NR) * (3 * NR);
        if (cpb < 3 * NR) cpb = 3 * NR;
        for (int qb = q0; qb < q1; qb += cpb) {
            int qe = qb + cpb < q1 ? qb + cpb : q1;
            // The next column block's B lines are fetched while this block computes, a slice of
            // its K rows before each 48-column call, spread over the block's calls (P panels ×
            // tiles). B is read in place, 48 columns = 3 lines per K row: a few hundred short
            // streams whose lines the hardware prefetchers fetch late, each a demand miss to L3 when
            // the previous layer's output has left L2. On an Intel Xeon (Emerald Rapids), one
            // thread, inputs rotated through L3: 1×1 layers with K 256–512 on 56×56 / 28×28 ran
            // 0.81–0.93 of the time without; with the input hot in L2, 1.00–1.02 (BENCHMARKS §7.23).
            const int next_end = qe + cpb < q1 ? qe + cpb : q1;
            const int calls = (mp1 - mp0) * ((qe - qb + 3 * NR - 1) / (3 * NR));
            const int rows_per_call = calls > 0 ? (klen + calls - 1) / calls : klen;
            int fetched_rows = qe < q1 ? 0 : klen;
            const int prefetch_c = !first || in_place;
            const int prefetch_res = !prefetch_c && out->residual && last;
            for (int mp = mp0; mp < mp1; mp++) {
                const float *ap = pa + (size_t)mp * mr * k + (size_t)kb0 * mr;
                int row0 = mp * mr;
                int mv = m - row0 < mr ? m - row0 : mr;
                const float *bias = out->bias && last ? out->bias + row0 : NULL;
                float *c = out->c + (ptrdiff_t)row0 * out->ldc;
                const float *res = out->residual && last && !in_place ? out->residual + (ptrdiff_t)row0 * out->ldr : NULL;
                int q = qb;
                for (; q + 3 * NR <= qe && q + 3 * NR <= b->n; q += 3 * NR) {
                    const int fetch_end = fetched_rows + rows_per_call < klen ? fetched_rows + rows_per_call : klen;
                    for (; fetched_rows < fetch_end; fetched_rows++) {
                        const float *row = b->x + b->offsets[kb0 + fetched_rows];
                        for (int col = qe; col < next_end; col += NR) _mm_prefetch((const char *)(row + col), _MM_HINT_T0);
                    }
                    direct_vec vec[3] = {direct_vec_at(b, q), direct_vec_at(b, q + NR), direct_vec_at(b, q + 2 * NR)};
                    if (prefetch_c || prefetch_res) {
                        // The next tile's C (read first when accumulating) or residual (read by
                        // the epilogue) lines, fetched while this tile computes.
                        int nq = q + 3 * NR, nmp = mp;
                        if (nq + 3 * NR > qe || nq + 3 * NR > b->n) { nq = qb; nmp = mp + 1; }
                        if (nmp < mp1) {
                            const int nrow0 = nmp * mr, nmv = m - nrow0 < mr ? m - nrow0 : mr;
                            const int p0 = direct_vec_at(b, nq).pixel, p1 = direct_vec_at(b, nq + 2 * NR).pixel + NR;
                            const float *base = prefetch_c ? out->c + (ptrdiff_t)nrow0 * out->ldc : out->residual + (ptrdiff_t)nrow0 * out->ldr;
                            const ptrdiff_t ld = prefetch_c ? out->ldc : out->ldr;
                            for (int r = 0; r < nmv; r++)
                                for (int px = p0; px < p1; px += NR) _mm_prefetch((const char *)(base + r * ld + px), _MM_HINT_T0);
                        }
                    }
                    kernel_avx512_direct3(klen, ap, b->x, b->offsets + kb0, q, vec, c, out->ldc, mv,
                                          bias, res, out->ldr, last ? out->act : SX_GEMM_ACT_NONE, out->lo, out->hi, !first || in_place);
                }
                for (; q < qe; q += 2 * NR) {
                    int nvec = qe - q > NR ? 2 : 1;
                    direct_vec vec[2];
                    vec[0] = direct_vec_at(b, q);
                    if (nvec > 1) vec[1] = direct_vec_at(b, q + NR);
                    kernel_avx512_direct(klen, ap, b->x, b->offsets + kb0, q, nvec, vec, c, out->ldc, mv,
                                         bias, res, out->ldr, last ? out->act : SX_GEMM_ACT_NONE, out->lo, out->hi, !first || in_place);
                }
            }
        }
    }
}

AVX512_TARGET
void sxk_ct_avx512(const float *pw, int m, int k, int cp0, int cp1,
                              const float *pb, int n, int np0, int np1, const sx_gemm_out *out) {
    const int cps = out->cols_per_sample;
    const int in_place = residual_in_place(out);
    // Channel panels in pairs (two vectors), all pixel panels of the range per pair: the pair's
    // weights (2·k·64 bytes) stay in L2 while every pixel panel streams past them. When the pixel
    // panels outgrow ~1 MB (several samples of a deep layer) K is split into blocks, so a block of
    // them stays in L2 for every pair and the weights stream once, not once per sample; partial
    // sums wait in C (gathered back at the next block).
    int kblocks = (size_t)(np1 - np0) * NR * k * sizeof(float) > (1u << 20) ? (k + KC_MAX - 1) / KC_MAX : 1;
    const int kc = (k + kblocks - 1) / kblocks;
    for (int kb0 = 0; kb0 < k; kb0 += kc) {
        const int klen = k - kb0 < kc ? k - kb0 : kc;
        const int first = kb0 == 0, last = kb0 + klen >= k;
        for (int cp = cp0; cp < cp1; cp += 2) {
            int nvec = cp + 1 < cp1 ? 2 : 1;
            int ch0 = cp * NR;
            __mmask16 cm[2];
            for (int v = 0; v < 2; v++) cm[v] = sx_row_mask(ch0 + 16 * v, m);
            const float *w0 = pw + (size_t)cp * k * NR + (size_t)kb0 * NR, *w1 = w0 + (size_t)k * NR;
            const float *bias = out->bias && last ? out->bias + ch0 : NULL;
            for (int np = np0; np < np1; np++) {
                const float *panel = pb + (size_t)np * NR * k + (size_t)kb0 * NR;
                for (int r0 = 0; r0 < NR; r0 += 8) {
                    int col0 = np * NR + r0;
                    int rows = n - col0 < 8 ? n - col0 : 8;
                    if (rows <= 0) break;
                    float *cpix[8];
                    const float *rpix[8];
                    for (int r = 0; r < rows; r++) {
                        int col = col0 + r, sample = col / cps, pixel = col - sample * cps;
                        cpix[r] = out->c + sample * out->c_sample_stride + (ptrdiff_t)ch0 * out->ldc + pixel;
                        rpix[r] = out->residual ? out->residual + sample * out->r_sample_stride + (ptrdiff_t)ch0 * out->ldr + pixel : NULL;
                    }
                    const float *const *rp = out->residual && last && !in_place ? rpix : NULL;
                    const int act = last ? out->act : SX_GEMM_ACT_NONE;
                    const float *px = panel + r0;
                    // Fewer rows than 8 (a plane's last pixels) take a narrower kernel, not a masked 8;
                    // each case inlines the kernel with a constant row count.
    #define CT_CASE(R) case R: kernel_ct(R, klen, px, w0, w1, nvec, cm, cpix, out->ldc, rp, out->ldr, bias, act, out->lo, out->hi, !first || in_place); break;
                    switch (rows) { CT_CASE(8) CT_CASE(7) CT_CASE(6) CT_CASE(5) CT_CASE(4) CT_CASE(3) CT_CASE(2) CT_CASE(1) }
    #undef CT_CASE
                }
            }
        }
    }
}

/// The K loop of the channel-major direct kernels: for K rows `p` (`kidx[j]` where `listed`,
/// else `j`), pixel `r`'s input `xr[off[p] + r·gstride]` broadcast against one or two weight
/// vectors into `acc0[r]` / `acc1[r]`. Row segments pass `gstride` 1 and fetch their input lines
/// a few K steps ahead (`xprefetch`); border columns (`gstride` a grid row) do not. Every caller
/// passes `listed`, `gstride` 1 and `xprefetch` as constants of its inlined copy (a runtime
/// `listed`, or a NULL test the compiler cannot fold, versions the loop: border columns 1.2 % slower),
/// so each copy carries one loop: one copy holding a listed and a plain loop spilled the 28
/// accumulators (the 28×28 layers 33 % slower).
__attribute__((always_inline))
AVX512_TARGET
static inline void ctd_accumulate(const int R, int k, const float *xr, ptrdiff_t gstride, const int *off,
                                  const int listed, const int *kidx, const int xprefetch, const float *w0, const float *w1, int nvec, __m512 *acc0, __m512 *acc1) {
    if (nvec == 2) {
        for (int j = 0; j < k; j++) {
            const int p = listed ? kidx[j] : j;
            __m512 a0 = _mm512_load_ps(w0 + (size_t)p * NR), a1 = _mm512_load_ps(w1 + (size_t)p * NR);
            // Weights stream from memory on the first pass: fetch well ahead of the hardware.
            _mm_prefetch((const char *)(w0 + (size_t)(p + CT_PREFETCH) * NR), _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + (size_t)(p + CT_PREFETCH) * NR), _MM_HINT_T0);
            if (xprefetch) {
                // The input lines a few K steps on (a segment's K steps jump between channels'
                // planes, which the hardware prefetchers do not follow): +1 % on ResNet-18 w64's
                // 3×3 layers at batch 32, +4–8 % on its stride-2 ones (kernelbench min ctd 2 32).
                int ahead = j + CTD_XPREFETCH < k ? j + CTD_XPREFETCH : k - 1;
                int q = listed ? kidx[ahead] : ahead;
                _mm_prefetch((const char *)(xr + off[q]), _MM_HINT_T0);
                _mm_prefetch((const char *)(xr + off[q] + R - 1), _MM_HINT_T0);
            }
            const float *xp = xr + off[p];
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                __m512 b = _mm512_set1_ps(xp[r * gstride]);
                acc0[r] = _mm512_fmadd_ps(a0, b, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(a1, b, acc1[r]);
            }
        }
    } else {
        for (int j = 0; j < k; j++) {
            const int p = listed ? kidx[j] : j;
            __m512 a0 = _mm512_load_ps(w0 + (size_t)p * NR);
            const float *xp = xr + off[p];
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) acc0[r] = _mm512_fmadd_ps(a0, _mm512_set1_ps(xp[r * gstride]), acc0[r]);
        }
    }
}

/// The micro-kernel of `sx_gemm_compute_ctd`: `R` (≤ 14) consecutive output pixels of one row,
/// B read in place (pixel `r`'s element of K row `kk` at `xr[off[kk] + r]`, broadcast) × up to 32
/// output channels (one or two weight panels as vectors): 28 accumulators, 16 loads per 28 FMAs.
/// `c`/`res`: the first pixel's output/residual at the pair's first channel; the pixels are
/// consecutive in both, so the epilogue is `ct_store_rows` (a transpose, then per-channel rows).
#define CTD_MAX_PIXELS 14
__attribute__((always_inline))
AVX512_TARGET
static inline void kernel_ctd(const int R, int k, const float *xr, const int *off, const int *kidx,
                              const float *w0, const float *w1, int nvec,
                              const __mmask16 *cm, float *c, ptrdiff_t ldc, const float *res, ptrdiff_t ldr,
                              const float *bias, int act, float lo, float hi, int accum, float *partial, int first, int last) {
    __m512 acc0[CTD_MAX_PIXELS], acc1[CTD_MAX_PIXELS];
#pragma clang loop unroll(full)
    for (int r = 0; r < CTD_MAX_PIXELS; r++) { acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps(); }
    if (!first) {
        // A later K block: the sums so far wait in `partial` (pixel-major, 32 channels a pixel).
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) { acc0[r] = _mm512_load_ps(partial + 32 * r); acc1[r] = _mm512_load_ps(partial + 32 * r + 16); }
    }
    ctd_accumulate(R, k, xr, 1, off, kidx != NULL, kidx, 1, w0, w1, nvec, acc0, acc1);
    if (!last) {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) { _mm512_store_ps(partial + 32 * r, acc0[r]); _mm512_store_ps(partial + 32 * r + 16, acc1[r]); }
        return;
    }
    // A residual in place (`accum`): C's rows are the residual, added after the transpose as a
    // separate residual is (each channel's row read before it is written), not loaded into the
    // accumulators first, which cost a second 16×16 transpose per 16 channels.
    ct_store_rows(R, acc0, acc1, nvec, cm, c, ldc, accum ? c : res, accum ? ldc : ldr, bias, act, lo, hi);
}

/// `kernel_ctd` for `R` (≤ 14) output pixels down a border column (`sx_gemm_direct_b.border_col`):
/// pixel `r`'s input at `xr[off[kk] + r·gstride]` and its output at `c + r·pstride` (residual
/// likewise), over the K rows `kidx[0..<k]` whose window column is inside the input. The pixels
/// are not consecutive in C: gathered / scattered epilogue (`ct_gather_c`, `ct_store`), a few
/// per cent of a segment's time, on two columns of a plane.
__attribute__((always_inline))
AVX512_TARGET
static inline void kernel_ctd_column(const int R, int k, const float *xr, ptrdiff_t gstride, const int *off, const int *kidx,
                                     const float *w0, const float *w1, int nvec, const __mmask16 *cm,
                                     float *c, ptrdiff_t pstride, ptrdiff_t ldc, const float *res, ptrdiff_t ldr,
                                     const float *bias, int act, float lo, float hi, int accum) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i cidx = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)ldc));
    __m512 acc0[CTD_MAX_PIXELS], acc1[CTD_MAX_PIXELS];
    float *cpix[CTD_MAX_PIXELS];
    const float *rpix[CTD_MAX_PIXELS];
#pragma clang loop unroll(full)
    for (int r = 0; r < CTD_MAX_PIXELS; r++) {
        acc0[r] = _mm512_setzero_ps();
        acc1[r] = _mm512_setzero_ps();
        cpix[r] = c + r * pstride;
        rpix[r] = res ? res + r * pstride : NULL;
    }
    // A residual in place: start from the sums already in C.
    if (accum) ct_gather_c(R, acc0, acc1, nvec, cm, cpix, cidx, ldc);
    ctd_accumulate(R, k, xr, gstride, off, 1, kidx, 0, w0, w1, nvec, acc0, acc1);
    ct_store(R, acc0, acc1, nvec, cm, cpix, cidx, ldc, res ? rpix : NULL, ldr, bias, act, lo, hi);
}

/// Row segments a channel-major K-blocked pass keeps partial sums for (on the stack, 1.75 KB each).
#ifndef CTD_GROUP_SEGMENTS
#define CTD_GROUP_SEGMENTS 32
#endif
/// K rows a block at most (equal blocks) when a channel pair's weights outgrow `CTD_KC_FROM`
/// rows (1 MB, L2): below that K is not split. Splitting K at 128 rows (16 KB of weights kept in
/// L1 while the group's segments pass) measured 2–5 % slower than one pass per segment on every
/// 3×3 layer of ResNet-18 w64 and ResNet-50 (Zen 4, one thread, a microbenchmark of this function:
/// hot, batch 32 with a new input and output per sample, and cold weights — 48 MB of
/// copies round robin; docs/BENCHMARKS.md §7.14): each block paid a round trip of 28 partial sums
/// and its own loop, and the weights stream from L2 at 128 bytes per 28 FMAs, which the hardware
/// prefetcher keeps up with.
#ifndef CTD_KC
#define CTD_KC 4096
#endif
#ifndef CTD_KC_FROM
#define CTD_KC_FROM 8192
#endif

AVX512_TARGET
void sxk_ctd_avx512(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b,
                               int oy0, int oy1, const sx_gemm_out *out) {
    const int in_place = residual_in_place(out);
    const int out_w = b->valid_w;
    // Where the grid is as wide as the output (a 1×1 product on an unpadded plane) the rows'
    // pixels run on from one row to the next in B and in C: the pixels of all the rows are cut
    // into segments as one run, so a 7-pixel row does not leave half the micro-kernel idle.
    const int dense = b->grid_w == out_w;
    const int segments = (out_w + CTD_MAX_PIXELS - 1) / CTD_MAX_PIXELS;  // a row's, when not dense
    const ptrdiff_t run0 = (ptrdiff_t)oy0 * out_w, run = (ptrdiff_t)(oy1 - oy0) * out_w;
    const int total = dense ? (int)((run + CTD_MAX_PIXELS - 1) / CTD_MAX_PIXELS) : (oy1 - oy0) * segments;
    const int kblocks = k > CTD_KC_FROM ? (k + CTD_KC - 1) / CTD_KC : 1;
    const int kc = (k + kblocks - 1) / kblocks;
    // Border columns apart (`sx_gemm_direct_b.border_cols`): rows without a list of their own
    // run pixels col0..<col1 in `isegments` segments; the border columns run down those rows after
    // each channel pair's row segments. Only in one K block (the lists index all of K).
    const int colsplit = !dense && kblocks == 1 && b->row_k && b->border_cols > 0 && b->col1 > b->col0;
    const int isegments = colsplit ? (b->col1 - b->col0 + CTD_MAX_PIXELS - 1) / CTD_MAX_PIXELS : segments;
    __attribute__((aligned(64))) float partial[CTD_GROUP_SEGMENTS * CTD_MAX_PIXELS * 2 * NR];
    // Channel panels in pairs; for each pair groups of segments, K in blocks (one below
    // `CTD_KC_FROM` rows) whose weights stay in L2 while the group's segments pass (partial sums
    // wait in `partial`).
    for (int cp = cp0; cp < cp1; cp += 2) {
        int nvec = cp + 1 < cp1 ? 2 : 1;
        int ch0 = cp * NR;
        __mmask16 cm[2];
        for (int v = 0; v < 2; v++) cm[v] = sx_row_mask(ch0 + 16 * v, m);
        const float *w0 = pw + (size_t)cp * k * NR, *w1 = w0 + (size_t)k * NR;
        const float *bias = out->bias ? out->bias + ch0 : NULL;
        for (int s0 = 0; s0 < total; s0 += CTD_GROUP_SEGMENTS) {
            int s1 = s0 + CTD_GROUP_SEGMENTS < total ? s0 + CTD_GROUP_SEGMENTS : total;
            for (int kb0 = 0; kb0 < k; kb0 += kc) {
                const int klen = k - kb0 < kc ? k - kb0 : kc;
                const int first = kb0 == 0, last = kb0 + klen >= k;
                const float *wk0 = w0 + (size_t)kb0 * NR, *wk1 = w1 + (size_t)kb0 * NR;
                const int *offk = b->offsets + kb0;
                for (int si = s0; si < s1; si++) {
                    // Near-equal segments of the run, or of each row (a 28-pixel row: two of 14).
                    ptrdiff_t pixel;
                    int len;
                    const float *xr;
                    if (dense) {
                        ptrdiff_t p0 = run0 + run * si / total, p1 = run0 + run * (si + 1) / total;
                        pixel = p0;
                        len = (int)(p1 - p0);
                        xr = b->x + p0;
                    } else {
                        int oy = oy0 + si / segments, sg = si % segments;
                        int from = 0, width = out_w, count = segments;
                        if (colsplit && !sxk_row_listed(b, oy)) {
                            if (sg >= isegments) continue;
                            from = b->col0; width = b->col1 - b->col0; count = isegments;
                        }
                        int ox0 = from + width * sg / count, ox1 = from + width * (sg + 1) / count;
                        pixel = (ptrdiff_t)oy * out_w + ox0;
                        len = ox1 - ox0;
                        xr = b->x + (ptrdiff_t)oy * b->grid_w + ox0;
                    }
                    float *c = out->c + (ptrdiff_t)ch0 * out->ldc + pixel;
                    const float *res = out->residual && !in_place ? out->residual + (ptrdiff_t)ch0 * out->ldr + pixel : NULL;
                    float *part = partial + (size_t)(si - s0) * CTD_MAX_PIXELS * 2 * NR;
                    // A top or bottom row's own K rows (one K block only: the lists index all of K).
                    const int *kidx = NULL;
                    int kn = klen;
                    const int oy = oy0 + si / segments;
                    if (!dense && kblocks == 1 && sxk_row_listed(b, oy)) {
                        kidx = b->row_k + b->row_k_span[2 * oy];
                        kn = b->row_k_span[2 * oy + 1];
                    }
                    if (last && kn >= 256) {
                        // The segment's output (and residual) lines, fetched for writing while the
                        // K loop runs: at batch 32 C is a new sample's, cold, and its 14-pixel rows
                        // are partial cache lines, read before they are written (+1.5–2 % on
                        // ResNet-18 w64's 28×28 layer, one thread, batch 32; at K = 128 they
                        // cost more than they saved: a 1×1 stride-2 128→256 product lost 1 %).
                        const int chs = m - ch0 < 16 * nvec ? m - ch0 : 16 * nvec;
                        for (int ch = 0; ch < chs; ch++) {
                            __builtin_prefetch(c + (ptrdiff_t)ch * out->ldc, 1, 3);
                            __builtin_prefetch(c + (ptrdiff_t)ch * out->ldc + len - 1, 1, 3);
                            if (res) {
                                __builtin_prefetch(res + (ptrdiff_t)ch * out->ldr, 0, 3);
                                __builtin_prefetch(res + (ptrdiff_t)ch * out->ldr + len - 1, 0, 3);
                            }
                        }
                    }
    #define CTD_CASE(R) case R: kernel_ctd(R, kn, xr, offk, KIDX, wk0, wk1, nvec, cm, c, out->ldc, res, out->ldr, bias, out->act, out->lo, out->hi, in_place, part, first, last); break;
    #define CTD_CASES \
                        CTD_CASE(14) CTD_CASE(13) CTD_CASE(12) CTD_CASE(11) CTD_CASE(10) CTD_CASE(9) CTD_CASE(8) \
                        CTD_CASE(7) CTD_CASE(6) CTD_CASE(5) CTD_CASE(4) CTD_CASE(3) CTD_CASE(2) CTD_CASE(1)
                    if (kidx) {
    #define KIDX kidx
                        switch (len) { CTD_CASES }
    #undef KIDX
                    } else {
    #define KIDX NULL
                        switch (len) { CTD_CASES }
    #undef KIDX
                    }
    #undef CTD_CASES
    #undef CTD_CASE
                }
            }
        }
        if (!colsplit) continue;
        // The border columns down each run of rows without a list of their own, in near-equal
        // segments of at most 14 rows.
        const float *res0 = out->residual && !in_place ? out->residual + (ptrdiff_t)ch0 * out->ldr : NULL;
        for (int oy = oy0; oy < oy1;) {
            if (sxk_row_listed(b, oy)) { oy++; continue; }
            const int end = sxk_unlisted_end(b, oy, oy1);
            const int rows = end - oy, pieces = (rows + CTD_MAX_PIXELS - 1) / CTD_MAX_PIXELS;
            for (int bc = 0; bc < b->border_cols; bc++) {
                const int ox = b->border_col[bc];
                const int *kidx = b->row_k + b->col_k_span[2 * bc];
                const int kn = b->col_k_span[2 * bc + 1];
                for (int piece = 0; piece < pieces; piece++) {
                    const int r0 = oy + rows * piece / pieces, r1 = oy + rows * (piece + 1) / pieces;
                    const float *xr = b->x + (ptrdiff_t)r0 * b->grid_w + ox;
                    float *c = out->c + (ptrdiff_t)ch0 * out->ldc + (ptrdiff_t)r0 * out_w + ox;
                    const float *res = res0 ? res0 + (ptrdiff_t)r0 * out_w + ox : NULL;
    #define CTDC_CASE(R) case R: kernel_ctd_column(R, kn, xr, b->grid_w, b->offsets, kidx, w0, w1, nvec, cm, c, out_w, out->ldc, res, out->ldr, bias, out->act, out->lo, out->hi, in_place); break;
                    switch (r1 - r0) {
                        CTDC_CASE(14) CTDC_CASE(13) CTDC_CASE(12) CTDC_CASE(11) CTDC_CASE(10) CTDC_CASE(9) CTDC_CASE(8)
                        CTDC_CASE(7) CTDC_CASE(6) CTDC_CASE(5) CTDC_CASE(4) CTDC_CASE(3) CTDC_CASE(2) CTDC_CASE(1)
                    }
    #undef CTDC_CASE
                }
            }
            oy = end;
        }
    }
}

/// `sx_gemm_small_rows` for `R` rows and the `16·V` columns from `b` (lane masks `m[v]`): B
/// streams once from memory, a row per K step, fetched `SMALL_ROWS_PREFETCH` rows ahead (the rows
/// are `ldb` apart, a stride the hardware prefetchers follow late or not at all). `R·V` ≤ 16
/// accumulators.
#define SMALL_ROWS_PREFETCH 12
__attribute__((always_inline))
AVX512_TARGET
static inline void small_rows_block(const int R, const int V, int k, float alpha, const float *x, ptrdiff_t ldx,
                                    const float *b, ptrdiff_t ldb, const __mmask16 *m, float *y, ptrdiff_t ldy) {
    __m512 acc[16];
#pragma clang loop unroll(full)
    for (int i = 0; i < R * V; i++) acc[i] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++) {
        const float *bp = b + (ptrdiff_t)p * ldb;
        // Every line of the run SMALL_ROWS_PREFETCH rows on (its first float, every 16th, its last).
#pragma clang loop unroll(full)
        for (int v = 0; v < V; v++) _mm_prefetch((const char *)(bp + SMALL_ROWS_PREFETCH * ldb + 16 * v), _MM_HINT_T0);
        _mm_prefetch((const char *)(bp + SMALL_ROWS_PREFETCH * ldb + 16 * V - 1), _MM_HINT_T0);
        __m512 bv[8];
#pragma clang loop unroll(full)
        for (int v = 0; v < V; v++) bv[v] = _mm512_maskz_loadu_ps(m[v], bp + 16 * v);
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_set1_ps(x[(ptrdiff_t)r * ldx + p]);
#pragma clang loop unroll(full)
            for (int v = 0; v < V; v++) acc[r * V + v] = _mm512_fmadd_ps(xv, bv[v], acc[r * V + v]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++)
#pragma clang loop unroll(full)
        for (int v = 0; v < V; v++) _mm512_mask_storeu_ps(y + (ptrdiff_t)r * ldy + 16 * v, m[v], _mm512_mul_ps(va, acc[r * V + v]));
}

/// One or two rows (a classifier at batch 1: a matrix-vector product that only streams B) run
/// 128 columns (8 vectors) a pass before the 32-column passes: each K step reads a 512-byte run of
/// B's row instead of 128 bytes, so a pass visits each 4 KB page of a 1000-column B (a row a page)
/// for 8 lines, not 2. MobileNetV3-Large's two classifier layers at batch 1 ran 1.2–1.35× ORT's
/// time with 32-column passes only.
#define SMALL_ROWS_WIDE 128

AVX512_TARGET
static void small_rows_avx512_(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx,
                              const float *b, ptrdiff_t ldb, float *y, ptrdiff_t ldy) {
    int c0 = 0;
    if (rows <= 2) {
        const __mmask16 all[8] = {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
        for (; c0 + SMALL_ROWS_WIDE <= n; c0 += SMALL_ROWS_WIDE) {
            if (rows == 1) small_rows_block(1, 8, k, alpha, x, ldx, b + c0, ldb, all, y + c0, ldy);
            else small_rows_block(2, 8, k, alpha, x, ldx, b + c0, ldb, all, y + c0, ldy);
        }
    }
    for (; c0 < n; c0 += 32) {
        int left = n - c0;
        const __mmask16 m[2] = {sx_row_mask(0, left), sx_row_mask(0, left - 16)};
        // Each row count inlines the block with a constant R (its loops unrolled, accumulators in registers).
#define SMALL_ROWS_CASE(R) case R: small_rows_block(R, 2, k, alpha, x, ldx, b + c0, ldb, m, y + c0, ldy); break;
        switch (rows) {
            SMALL_ROWS_CASE(1) SMALL_ROWS_CASE(2) SMALL_ROWS_CASE(3) SMALL_ROWS_CASE(4)
            SMALL_ROWS_CASE(5) SMALL_ROWS_CASE(6) SMALL_ROWS_CASE(7) SMALL_ROWS_CASE(8)
        }
#undef SMALL_ROWS_CASE
    }
}

void sxk_small_rows_avx512(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx,
                           const float *b, ptrdiff_t ldb, float *y, ptrdiff_t ldy) {
    if (rows >= 1 && rows <= 8 && n > 0 && k > 0) small_rows_avx512_(rows, n, k, alpha, x, ldx, b, ldb, y, ldy);
}

#endif
