// Internal to SelfXitGEMM (not installed, not seen by Swift): what the per-ISA kernel files
// (x86/, arm/, portable.c) share with the drivers in gemm.c / depthwise.c and with the
// configuration tables in configs/kernel_config.c. Every symbol here is hidden (`sxk_` prefix;
// libselfxit.so exports only the names in Sources/SelfXitC/exports.map anyway).
#ifndef SELFXIT_KERNELS_INTERNAL_H
#define SELFXIT_KERNELS_INTERNAL_H

#include "selfxit_gemm.h"

#include <math.h>
#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#define SX_X86 1
#endif
#if defined(__aarch64__)
#define SX_ARM64 1
#endif

#define SXK_HIDDEN __attribute__((visibility("hidden")))
#define SXK_NR SX_GEMM_NR
/// The tallest A panel of any ISA (a straddling tile in the driver lives on the stack).
#define SXK_MR_MAX 16
#define SXK_MR_AVX512 16
#define SXK_MR_AVX2 6
#define SXK_MR_SCALAR 4
#define SXK_MR_NEON 6
/// K block of the packed drivers (see gemm.c).
#define SXK_KC_MAX 512

/// An MR×16 tile over `k` of packed A (`mr` rows a step) × one packed B panel; stores rows `< mv`,
/// columns `< nv` of act(acc + bias[r] + res[r, :]) at `c` (row stride `ldc`). `bias`/`res` may be
/// NULL. With `accum`, acc starts from the tile already in `c`, else from 0.
typedef void (*sxk_tile_fn)(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                            const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum);
/// Two adjacent B panels (`b`, `b1`; `nv` valid columns over both, 17..32) in one call.
typedef void (*sxk_tile2_fn)(int k, const float *a, const float *b, const float *b1, float *c, ptrdiff_t ldc, int mv,
                             int nv, const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi,
                             int accum);

/// The packed-GEMM driver every ISA shares (K blocks, B panel blocks, samples straddling a
/// panel): `tile` per panel, `tile_full` (may be NULL: `tile`) for a full `mr`×16 tile of one
/// sample's columns, `tile2` (may be NULL) for pairs of panels of one sample.
SXK_HIDDEN void sxk_gemm_drive(sxk_tile_fn tile, sxk_tile_fn tile_full, sxk_tile2_fn tile2, int mr, const float *pa,
                               int m, int k, int mp0, int mp1, const float *pb, int n, int np0, int np1, const sx_gemm_out *out);

/// One im2col row segment (see gemm.c); `sxk_im2col_with` drives one for a whole block.
typedef void (*sxk_segment_fn)(const float *, const sx_im2col_geom *, int, int, int, int, int, int, float *);
SXK_HIDDEN void sxk_im2col_segment_portable(const float *x, const sx_im2col_geom *g, int c, int ky, int kx, int oy0,
                                            int p0, int p1, float *out);
SXK_HIDDEN void sxk_im2col_with(sxk_segment_fn seg, const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0,
                                int oy1, int col0, float *dst);

/// Whether output row `oy` of a channel-major product has a K-row list of its own
/// (`sx_gemm_direct_b.row_k_span`: a top or bottom row, only the taps inside the input).
static inline int sxk_row_listed(const sx_gemm_direct_b *b, int oy) {
    return b->row_k_span && b->row_k_span[2 * oy] >= 0;
}

/// The end of the run of rows without a list that starts at `oy` (< `oy1`, itself unlisted).
static inline int sxk_unlisted_end(const sx_gemm_direct_b *b, int oy, int oy1) {
    while (oy < oy1 && !sxk_row_listed(b, oy)) oy++;
    return oy;
}

/// Whether the residual is C itself (the product is then accumulated into C from the first K block on).
static inline int sxk_residual_in_place(const sx_gemm_out *out) {
    return out->residual != NULL && out->residual == out->c;
}

/// NaN in, NaN out (as ONNX Runtime): every comparison with NaN is false, so NaN falls through
/// (expf(NaN) is NaN; expf never traps: ±inf and NaN in, 0 / inf / NaN out).
static inline float sxk_act1(float v, int act, float lo, float hi) {
    if (act == SX_GEMM_ACT_RELU) return v < 0 ? 0 : v;
    if (act == SX_GEMM_ACT_CLIP) return v < lo ? lo : (v > hi ? hi : v);
    if (act == SX_GEMM_ACT_HARDSWISH) {
        float g = v * (1.0f / 6.0f) + 0.5f;
        return v * (g < 0 ? 0 : (g > 1 ? 1 : g));
    }
    if (act == SX_GEMM_ACT_SIGMOID) return 1.0f / (1.0f + expf(-v));
    if (act == SX_GEMM_ACT_SILU) return v * (1.0f / (1.0f + expf(-v)));
    return v;
}

/* ---- portable C (portable.c): the scalar configuration's kernels and every other one's reference */
SXK_HIDDEN void sxk_tile_scalar(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                                const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum);
SXK_HIDDEN void sxk_gemm_scalar(const float *pa, int m, int k, int mp0, int mp1, const float *pb, int n, int np0,
                                int np1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_im2col_portable(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1,
                                    int col0, float *dst);
/// The direct product for A packed in `mr`-row panels (any ISA's packing).
SXK_HIDDEN void sxk_direct_portable(int mr, const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b,
                                    int q0, int q1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_direct_scalar(const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b, int q0,
                                  int q1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_ct_portable(const float *pw, int m, int k, int cp0, int cp1, const float *pb, int n, int np0,
                                int np1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_ctd_portable(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b, int oy0,
                                 int oy1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_small_rows_portable(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx,
                                        const float *b, ptrdiff_t ldb, float *y, ptrdiff_t ldy);
SXK_HIDDEN void sxk_dw3x3_plane_portable(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off,
                                         const float *w, float bias, float *out, int out_h, int out_w, int act,
                                         float lo, float hi);
SXK_HIDDEN void sxk_dw3x3_direct_portable(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                                          const float *w, float bias, const float *res, float *out, int oy0, int oy1,
                                          int out_w, int act, float lo, float hi);
SXK_HIDDEN void sxk_maxpool_direct_portable(const float *x, int in_h, int in_w, int kh, int kw, int stride,
                                            int pad_top, int pad_left, float *out, int out_h, int out_w);
SXK_HIDDEN void sxk_deinterleave2_portable(const float *s, float *d, int lo, int hi);
SXK_HIDDEN void sxk_sigmoid_portable(const float *x, float *y, size_t n);
SXK_HIDDEN void sxk_silu_portable(const float *x, float *y, size_t n);

/* ---- AVX-512 (x86/gemm_avx512.c, x86/depthwise_avx512.c) */
#if SX_X86
SXK_HIDDEN void sxk_gemm_avx512(const float *pa, int m, int k, int mp0, int mp1, const float *pb, int n, int np0,
                                int np1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_im2col_avx512(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0,
                                  float *dst);
SXK_HIDDEN void sxk_direct_avx512(const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b, int q0,
                                  int q1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_ct_avx512(const float *pw, int m, int k, int cp0, int cp1, const float *pb, int n, int np0,
                              int np1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_ctd_avx512(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b, int oy0,
                               int oy1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_small_rows_avx512(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx,
                                      const float *b, ptrdiff_t ldb, float *y, ptrdiff_t ldy);
/// C (`m×n`, n ≤ 2 panels) = A·B (+ C when `beta1`), A row-major read in place 8 rows at a time,
/// B all `k` rows packed in 16-column panels with alpha applied (as `sxk_sgemm_skinny_avx2`).
SXK_HIDDEN void sxk_sgemm_skinny_avx512(int m, int n, int k, const float *a, ptrdiff_t lda, const float *pb, float *c,
                                        ptrdiff_t ldc, int beta1);
SXK_HIDDEN void sxk_dw3x3_plane_avx512(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off,
                                       const float *w, float bias, float *out, int out_h, int out_w, int act, float lo,
                                       float hi);
SXK_HIDDEN void sxk_dw3x3_direct_avx512(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                                        const float *w, float bias, const float *res, float *out, int oy0, int oy1,
                                        int out_w, int act, float lo, float hi);
SXK_HIDDEN void sxk_maxpool_direct_avx512(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top,
                                          int pad_left, float *out, int out_h, int out_w);
SXK_HIDDEN void sxk_deinterleave2_avx512(const float *s, float *d, int lo, int hi);
/* x86/depthwise_kxk_avx512.c */
/// The in-place k×k depthwise kernels' entry (`sxk_dw_direct_avx512`, `sxk_dw_direct_avx2`): square
/// 3×3, 5×5 and 7×7 with stride 1 or 2 go to the constant-size instances `P##_3x3_s1` …
/// `P##_7x7_s2`, anything else to `P##_any` (run-time sizes).
#define SXK_DW_KXK_DISPATCH(P)                                                                                     \
    do {                                                                                                           \
        if (oy0 >= oy1 || out_w <= 0) return;                                                                      \
        if (kh == kw && (stride == 1 || stride == 2)) {                                                            \
            void (*fn)(const float *, int, int, int, int, const float *, float, const float *, float *, int, int, \
                       int, int, float, float) = NULL;                                                             \
            switch (kh * 2 + stride - 1) {                                                                         \
            case 6: fn = P##_3x3_s1; break;                                                                        \
            case 7: fn = P##_3x3_s2; break;                                                                        \
            case 10: fn = P##_5x5_s1; break;                                                                       \
            case 11: fn = P##_5x5_s2; break;                                                                       \
            case 14: fn = P##_7x7_s1; break;                                                                       \
            case 15: fn = P##_7x7_s2; break;                                                                       \
            default: break;                                                                                        \
            }                                                                                                      \
            if (fn) {                                                                                              \
                fn(x, in_h, in_w, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, act, lo, hi);             \
                return;                                                                                            \
            }                                                                                                      \
        }                                                                                                          \
        P##_any(x, in_h, in_w, kh, kw, stride, pad_top, pad_left, w, bias, res, out, oy0, oy1, out_w, act, lo, hi);  \
    } while (0)
SXK_HIDDEN void sxk_dw_direct_avx512(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top,
                                     int pad_left, const float *w, float bias, const float *res, float *out, int oy0,
                                     int oy1, int out_w, int act, float lo, float hi);
SXK_HIDDEN void sxk_sigmoid_avx512(const float *x, float *y, size_t n);
SXK_HIDDEN void sxk_silu_avx512(const float *x, float *y, size_t n);

/* ---- AVX2 + FMA (x86/gemm_avx2.c) */
SXK_HIDDEN void sxk_gemm_avx2(const float *pa, int m, int k, int mp0, int mp1, const float *pb, int n, int np0,
                              int np1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_direct_avx2(const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b, int q0,
                                int q1, const sx_gemm_out *out);
/// `sx_gemm_compute_ctd` on AVX2: row segments of ≤ 6 pixels × 16-channel weight panels.
SXK_HIDDEN void sxk_ctd_avx2(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b, int oy0,
                             int oy1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_dw3x3_plane_avx2(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off,
                                     const float *w, float bias, float *out, int out_h, int out_w, int act, float lo,
                                     float hi);
/// sx_sgemm's product of a packed A block (`mc` rows, `kc` deep) by `nc` columns of a packed B
/// block into C (`accum`: added to C), B panel outer, A panels inner (see gemm_avx2.c).
SXK_HIDDEN void sxk_sgemm_block_avx2(int mc, int nc, int kc, const float *pa, const float *pb, float *c, ptrdiff_t ldc,
                                     int accum);
/// C (`m×n`, n ≤ 3 panels) = A·B (+ C when `beta1`), A row-major read in place, B all `k` rows
/// packed in 16-column panels with alpha applied.
SXK_HIDDEN void sxk_sgemm_skinny_avx2(int m, int n, int k, const float *a, ptrdiff_t lda, const float *pb, float *c,
                                      ptrdiff_t ldc, int beta1);
/* x86/small_rows_avx2.c, x86/pool_avx2.c */
SXK_HIDDEN void sxk_small_rows_avx2(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx,
                                    const float *b, ptrdiff_t ldb, float *y, ptrdiff_t ldy);
SXK_HIDDEN void sxk_maxpool_direct_avx2(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top,
                                        int pad_left, float *out, int out_h, int out_w);
/* x86/depthwise_avx2.c */
SXK_HIDDEN void sxk_dw3x3_direct_avx2(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                                      const float *w, float bias, const float *res, float *out, int oy0, int oy1,
                                      int out_w, int act, float lo, float hi);
SXK_HIDDEN void sxk_deinterleave2_avx2(const float *s, float *d, int lo, int hi);
/* x86/im2col_avx2.c */
SXK_HIDDEN void sxk_im2col_avx2(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0,
                                float *dst);
SXK_HIDDEN void sxk_sigmoid_avx2(const float *x, float *y, size_t n);
/* x86/depthwise_kxk_avx2.c */
SXK_HIDDEN void sxk_dw_direct_avx2(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top,
                                   int pad_left, const float *w, float bias, const float *res, float *out, int oy0,
                                   int oy1, int out_w, int act, float lo, float hi);
SXK_HIDDEN void sxk_dw_plane_avx2(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, int kh, int kw,
                                  const float *w, float bias, float *out, int out_h, int out_w, int act, float lo,
                                  float hi);
SXK_HIDDEN void sxk_silu_avx2(const float *x, float *y, size_t n);
#endif

/* ---- NEON (arm/kernels_neon.c) */
#if SX_ARM64
SXK_HIDDEN void sxk_gemm_neon(const float *pa, int m, int k, int mp0, int mp1, const float *pb, int n, int np0,
                              int np1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_direct_neon(const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b, int q0,
                                int q1, const sx_gemm_out *out);
SXK_HIDDEN void sxk_dw3x3_plane_neon(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off,
                                     const float *w, float bias, float *out, int out_h, int out_w, int act, float lo,
                                     float hi);
SXK_HIDDEN void sxk_sigmoid_neon(const float *x, float *y, size_t n);
SXK_HIDDEN void sxk_silu_neon(const float *x, float *y, size_t n);
#endif

/* ---- grouped convolution (grouped_conv.c; x86/grouped_conv_avx512.c, x86/grouped_conv_avx2.c) */
/// Largest ring of input rows (`(kh−1)·dil_h + 1 + stride_h`) a grouped-conv call keeps.
#define SXK_GCONV_MAX_RING 64
/// Where one group's input rows live in a `grouped_conv` call's scratch: per input channel `c`
/// (`cstride` floats apart) a ring of `ring` blocks (input row `iy` in block `iy % ring`; the ring
/// holds the rows of two consecutive output rows) and one block of zeros after it (`zero_off`,
/// what a kernel row outside the image reads), each `block` floats holding the
/// row zero-padded and split into `stride_w` phases of `plen` floats: phase `p`, float `i` is
/// column `i·stride_w + p − pad_left` of the row. Output column `ox`, kernel column `kx` reads
/// float `tap[kx] + ox` of its block — plain loads, no masks, for every stride and dilation.
/// `plen` covers `ow_r` (out_w rounded up to 16) columns, so 16-wide loads past `out_w` stay inside.
typedef struct sxk_gconv_layout {
    int ow_r, plen, block, ring, zero_off;
    size_t cstride;
    int tap[16];
} sxk_gconv_layout;
SXK_HIDDEN void sxk_gconv_layout_of(const sx_gconv_geom *g, sxk_gconv_layout *l);
/// Row state of one call: which input row each ring slot holds (−1: none yet), and whether the
/// ring's padding has been zeroed (once per call; rows then write only their in-image floats).
typedef struct sxk_gconv_rows {
    int built[SXK_GCONV_MAX_RING];
    int zeroed;
} sxk_gconv_rows;
SXK_HIDDEN void sxk_gconv_rows_init(sxk_gconv_rows *r);
/// Builds (where not built yet) every input row output row `oy` reads, for all `cin` channels,
/// into `scratch` (`deint`: the configuration's `deinterleave2` for stride 2). Returns the valid
/// kernel rows `*ky0..<*ky1` (rows outside the image are skipped: their taps are zero) and, per
/// kernel row, the float offset of its block within a channel's ring (`slot_off[ky]`, `zero_off`
/// for rows outside the image; channel `c`'s ring starts at `c·cstride`).
SXK_HIDDEN void sxk_gconv_prepare(const sx_gconv_geom *g, const sxk_gconv_layout *l, sxk_gconv_rows *r,
                                  const float *x, int oy, float *scratch,
                                  void (*deint)(const float *, float *, int, int), int *ky0, int *ky1,
                                  int *slot_off);
SXK_HIDDEN void sxk_gconv_portable(const sx_gconv_geom *g, const float *x, const float *pw, const float *bias,
                                   const float *res, float *out, int oy0, int oy1, int act, float lo, float hi,
                                   float *scratch);
#if SX_X86
SXK_HIDDEN void sxk_gconv_avx512(const sx_gconv_geom *g, const float *x, const float *pw, const float *bias,
                                 const float *res, float *out, int oy0, int oy1, int act, float lo, float hi,
                                 float *scratch);
SXK_HIDDEN void sxk_gconv_avx2(const sx_gconv_geom *g, const float *x, const float *pw, const float *bias,
                               const float *res, float *out, int oy0, int oy1, int act, float lo, float hi,
                               float *scratch);
#endif

/// The hardware's ISA (CPUID / the build's target), without any override (gemm.c).
SXK_HIDDEN int sxk_hardware_isa(void);
/// Whether the CPU is a Zen-family design: cpuid leaf 0 "AuthenticAMD" or "HygonGenuine"; 0 off x86.
SXK_HIDDEN int sxk_cpu_is_amd(void);
/// One core's L2 in KiB from CPUID (x86), 0 where unknown.
SXK_HIDDEN int sxk_l2_cache_kib(void);

#endif
