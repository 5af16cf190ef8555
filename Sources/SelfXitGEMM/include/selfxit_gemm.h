// Packed single-precision GEMM for SelfXit's convolutions.
//
// C[m, n] = act(A[m, k] · B[k, n] + bias[m] + residual[m, n])
//
// A (the weights) is packed once into MR-row panels, k-major (for each k, MR consecutive rows,
// zero-padded to a multiple of MR). B (im2col matrix or the input of a 1×1 conv) is packed per call
// into 16-column panels, k-major, zero-padded to a multiple of 16 columns. Micro-kernels:
// AVX-512 (MR = 16, NR = 16; adjacent B panels in pairs, 8×32 per pass), AVX2+FMA (MR = 6, NR = 16),
// NEON (MR = 8, NR = 16), portable C (MR = 4, NR = 16), picked at run time from CPUID (overridable
// with SELFXIT_GEMM_ISA=avx512|avx2|neon|scalar). Each ISA is one `sx_kernel_config` (tile sizes +
// kernels, NULL where it has none): callers ask the configuration what it has, never an ISA id.
#ifndef SELFXIT_GEMM_H
#define SELFXIT_GEMM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { SX_GEMM_ISA_SCALAR = 0, SX_GEMM_ISA_AVX2 = 1, SX_GEMM_ISA_AVX512 = 2, SX_GEMM_ISA_NEON = 3 };
/// ISA ids are `0..<SX_GEMM_ISA_COUNT`.
#define SX_GEMM_ISA_COUNT 4
enum { SX_GEMM_ACT_NONE = 0, SX_GEMM_ACT_RELU = 1, SX_GEMM_ACT_CLIP = 2 };
/// Activations only the configurations that list them in `fused_acts` apply in their kernels'
/// stores (AVX-512 and portable C today); the others take NONE/RELU/CLIP only.
enum { SX_GEMM_ACT_HARDSWISH = 3, SX_GEMM_ACT_SILU = 4, SX_GEMM_ACT_SIGMOID = 5 };
#define SX_GEMM_NR 16

/// Best ISA this CPU (and OS) supports, lowered to SELFXIT_GEMM_ISA when that is set (read at the first call).
int sx_gemm_default_isa(void);
/// Whether `isa` runs on this machine.
int sx_gemm_isa_supported(int isa);
/// Rows per A panel for `isa`.
int sx_gemm_mr(int isa);

/// Floats of a packed `m×k` A for `isa`.
size_t sx_gemm_packed_a_floats(int isa, int m, int k);
/// Packs row-major `a` (`m×k`, row stride `lda`) into `dst`.
void sx_gemm_pack_a(int isa, const float *a, ptrdiff_t lda, int m, int k, float *dst);

/// Floats of a packed `k×n` B.
size_t sx_gemm_packed_b_floats(int n, int k);
/// Copies rows `r0..<r1` of row-major `b` (`ncols` columns, row stride `ldb`) into columns
/// `col0..<col0+ncols` of packed B (`k` rows in all).
void sx_gemm_pack_b(const float *b, ptrdiff_t ldb, int ncols, int k, int r0, int r1, int col0, float *dst);
/// Zeroes rows `r0..<r1` of the padding columns `n..<roundup(n, 16)` of packed B.
void sx_gemm_pack_b_zero_tail(int n, int k, int r0, int r1, float *dst);

/// One convolution group's geometry for `sx_im2col_packed`.
typedef struct sx_im2col_geom {
    int channels, in_h, in_w;
    int out_h, out_w;
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int dilation_h, dilation_w;
    int pad_top, pad_left;
} sx_im2col_geom;

/// Writes rows `r0..<r1` of the im2col matrix of `x` (one sample, one group, CHW), output pixel
/// rows `oy0..<oy1` only, into columns `col0..<col0 + (oy1 - oy0)·out_w` of packed B with
/// `k = channels·kernel_h·kernel_w` rows.
void sx_im2col_packed(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst);

/// Where the product goes. Column `j` of C is pixel `j % cols_per_sample` of sample
/// `j / cols_per_sample`: element (i, j) lives at `c + sample·c_sample_stride + i·ldc + pixel`
/// (residual likewise with its own strides). `bias` (may be NULL) has one entry per row.
/// `residual` may be `c` itself (with the same strides): the product is then added to C in place.
typedef struct sx_gemm_out {
    float *c;
    ptrdiff_t ldc, c_sample_stride;
    const float *residual;
    ptrdiff_t ldr, r_sample_stride;
    const float *bias;
    int cols_per_sample;
    int act;
    float lo, hi;
} sx_gemm_out;

/// Computes the A panels `mp0..<mp1` against the B panels `np0..<np1` (`m×k` packed A,
/// `k×n` packed B) with the fused epilogue. Sizes must be positive; panels in range.
void sx_gemm_compute(int isa, const float *pa, int m, int k, int mp0, int mp1,
                     const float *pb, int n, int np0, int np1, const sx_gemm_out *out);

/// B of a direct ("implicit") product, read in place instead of packed: element (kk, col) is
/// `x[offsets[kk] + col]` for grid columns `col < n`. A 1×1 convolution reads its input with
/// `offsets[kk] = kk·plane`; a stride-1 convolution reads a zero-padded copy of its input over a
/// grid of `grid_w`-wide rows, of which the first `valid_w` columns are output pixels (the rest
/// are computed and dropped). Grid column `col` is output pixel `(col / grid_w)·valid_w + col % grid_w`.
typedef struct sx_gemm_direct_b {
    const float *x;
    const int *offsets;
    int n, grid_w, valid_w;
    /// Optional, read by the channel-major products (`ctd`) only; NULL: every output row runs all
    /// `k` K rows. Where `row_k_span[2·oy] >= 0`, output row `oy` runs only the K rows
    /// `row_k[row_k_span[2·oy] ..< row_k_span[2·oy] + row_k_span[2·oy + 1]]` (ascending). The
    /// convolution planner lists, for the top and bottom output rows, the K rows whose window row
    /// lies inside the input: the taps that read only zero padding rows are skipped (a third of a
    /// 3×3 kernel's work on those rows; ONNX Runtime's NCHWc kernels skip them too). The padding
    /// stays in B, so a kernel that ignores the lists computes the same sums.
    const int *row_k_span;
    const int *row_k;
    /// Optional, channel-major only, with `row_k` (`border_cols` 0: none): the rows without a
    /// list of their own run only pixels `col0 ..< col1` as row segments, and each of the
    /// `border_cols` output columns `border_col[i]` outside that range runs down those rows
    /// (≤ 14 rows a segment, pixel `r` one grid row further in B and one output row in C) over
    /// the K rows `row_k[col_k_span[2·i] ..< col_k_span[2·i] + col_k_span[2·i + 1]]`: the taps whose
    /// window column lies inside the input. Top and bottom rows (with a list) keep whole-row
    /// segments, so their corner pixels still read the padding columns (zeros).
    int col0, col1, border_cols;
    const int *border_col;
    const int *col_k_span;
    /// Optional (`win_h` 0: not stated), read by the channel-major products only: K rows are
    /// (channel, ky, kx) over a `win_h` × `win_w` window with
    /// `offsets[(c·win_h + ky)·win_w + kx] == offsets[0] + c·win_channel + ky·win_row + kx·win_col`
    /// for every K row (a stride-1 convolution on its padded copy). A kernel may then compute a
    /// tap's position instead of loading it from `offsets` (AVX2: windows 3 wide, `win_col` 1).
    int win_h, win_w, win_row, win_col, win_channel;
} sx_gemm_direct_b;

/// Computes A panels `mp0..<mp1` (packed for the default ISA) against grid columns `q0..<q1`
/// of the direct B `b`, into one sample: output pixel `p` of row `i` at
/// `out->c + i·ldc + p` (residual likewise); `cols_per_sample` and the sample strides are unused.
/// Runs the default configuration's `direct` kernel, or portable C where it has none.
void sx_gemm_compute_direct(const float *pa, int m, int k, int mp0, int mp1,
                            const sx_gemm_direct_b *b, int q0, int q1, const sx_gemm_out *out);

/// Floats of `m×k` weights packed for `sx_gemm_compute_ct`.
size_t sx_gemm_packed_wt_floats(int m, int k);
/// Packs row-major weights `w` (`m×k`) into 16-channel panels, k-major (the layout of packed B
/// for `wᵀ`), zero-padded to a multiple of 16 channels; `dst` 64-byte aligned.
void sx_gemm_pack_wt(const float *w, int m, int k, float *dst);

/// The product of `sx_gemm_compute` computed channel-major, for small planes: the vectors run
/// over 16 output channels and pixels are broadcast, so a plane of 49 pixels costs 49 pixel
/// rows, not 64 pixel lanes. Channel panels `cp0..<cp1` (weights from `sx_gemm_pack_wt`) against
/// pixel panels `np0..<np1` of packed B; C, residual, bias, activation as `sx_gemm_compute`.
/// The default configuration's `ct` (portable C where it has none); channel and residual
/// strides (`ldc`, `ldr`) must fit 16× in an int.
void sx_gemm_compute_ct(const float *pw, int m, int k, int cp0, int cp1,
                        const float *pb, int n, int np0, int np1, const sx_gemm_out *out);

/// A direct product computed channel-major, for planes with short rows: output rows `oy0..<oy1`
/// (`b->valid_w` pixels each, taken ≤ 14 at a time; B element (kk, pixel (oy, ox)) read in place at
/// `b->x[b->offsets[kk] + oy·b->grid_w + ox]` and broadcast) × channel panels `cp0..<cp1` of
/// weights packed by `sx_gemm_pack_wt`, vectors over 16 output channels. No grid column is
/// computed for padding, and 14 pixels × 32 channels keep 28 accumulators busy. C, residual
/// (in place allowed), bias, activation as `sx_gemm_compute_direct`. Where `b->grid_w ==
/// b->valid_w` the rows' pixels are taken as one run. The default configuration's `ctd` (portable C
/// where it has none).
void sx_gemm_compute_ctd(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b,
                         int oy0, int oy1, const sx_gemm_out *out);

/// `y[r, c] = alpha · Σ_kk x[r, kk] · b[kk, c]` for rows `r < rows` (1 to 8) and columns `c < n`:
/// a product with a few rows (a classifier at a small batch) reads row-major B once, in place,
/// 32 columns at a time for all rows, where a packed GEMM would copy all of B for a handful of
/// rows. The default configuration's `small_rows` (portable C where it has none); `ldx`, `ldb`,
/// `ldy` in floats.
void sx_gemm_small_rows(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx,
                        const float *b, ptrdiff_t ldb, float *y, ptrdiff_t ldy);

/// `C = alpha·op(A)·op(B) + beta·C` (row-major), single-threaded: op(A) is `m×k` (`a` stored
/// `k×m` when `trans_a`), op(B) is `k×n` (`b` stored `n×k` when `trans_b`); `lda`, `ldb`, `ldc`
/// are row strides in floats. Runs on `isa`'s code (lowered to what this machine runs; pass
/// `sx_gemm_default_isa()` outside tests): a few rows unpacked (dot products for op(B) = Bᵀ, row
/// updates or `sx_gemm_small_rows` for B), otherwise packed blocks of op(A) and op(B) through
/// `sx_gemm_compute`; any other beta scales C first. With beta 0, C is written without being
/// read; with k 0 or alpha 0, neither A nor B is read. Nothing returned, no error: sizes ≤ 0 do
/// nothing. Thread-safe for distinct C; callers split a product over threads themselves. Scratch:
/// one fixed buffer per calling thread (about 0.75 MB, allocated on first use, freed when the thread
/// exits), or a 10 KB stack fallback when that allocation fails. Process-wide, only the one
/// pthread key holding those buffers (created at the first call); no BLAS, no environment.
void sx_sgemm(int isa, int trans_a, int trans_b, int m, int n, int k, float alpha,
              const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc);

/// Depthwise 3×3 over one zero-padded plane (see DepthwisePlan): output row `oy` reads rows
/// `buf + oy·step_y + {0, dy, 2·dy}` at column offsets `off[0..2]` (+ output column), 16 columns
/// at a time (the buffer is padded to whole vectors). Writes `act(sum + bias)` to `out` (`out_h×out_w`).
void sx_dw3x3_plane(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, const float *w, float bias,
                    float *out, int out_h, int out_w, int act, float lo, float hi);
/// Depthwise 3×3, dilation 1, stride 1 or 2, over one plane `x` (`in_h×in_w`) read in place
/// (out-of-image taps masked off, no padded copy): output rows `oy0..<oy1` of `out` (`out_w`
/// wide, row 0 at `out`) get `act(conv + bias + res)` (`res`, laid out as `out`, may be NULL).
/// The default configuration's `dw3x3_direct` (portable C where it has none).
void sx_dw3x3_direct(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left,
                     const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                     int act, float lo, float hi);
/// Widest output row `sx_maxpool_direct` takes (its load masks live on the stack).
#define SX_MAXPOOL_DIRECT_MAX_WIDTH 1024
/// Max pooling of one plane `x` (`in_h×in_w`) read in place, padding never winning:
/// `kh, kw <= 3`, dilation 1, stride 1 or 2 in both directions. Preconditions:
/// `out_w <= SX_MAXPOOL_DIRECT_MAX_WIDTH`, and every window touches at least one input pixel.
/// The default configuration's `maxpool_direct` (portable C where it has none).
void sx_maxpool_direct(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                       float *out, int out_h, int out_w);
/// `d[j] = s[2j]` for `j` in `lo..<hi` (reads `s` only at offsets `2·lo ... 2·(hi−1)`).
void sx_deinterleave2(const float *s, float *d, int lo, int hi);
/// A stride-2 subsampled plane: `dst[i][j] = x[2i + row0][2j + col0]` (`plane_h × plane_w`, rows
/// packed), zero where that falls outside `x` (`in_h × in_w`).
void sx_subsample2_plane(const float *x, int in_h, int in_w, int row0, int col0, float *dst, int plane_h, int plane_w);
/// Rows `row0 ..< row1` of one zero-padded plane: `dst[r][j] = x[r − pad_top][j − pad_left]`
/// (`padded_w` floats a row, rows packed), zero where that falls outside `x` (`in_h × in_w`).
void sx_pad_plane_rows(const float *x, int in_h, int in_w, int pad_top, int pad_left, float *dst, int padded_w,
                       int row0, int row1);


/// One group of a grouped convolution (`groups > 1`, not depthwise) for
/// `sx_kernel_config.grouped_conv`: `cin` input planes `in_h×in_w` in, `cout` output planes
/// `out_h×out_w` out, `kh×kw` kernel, strides, dilations and the top/left padding (bottom/right
/// are implied by the output size). Every field positive except the paddings (≥ 0).
typedef struct sx_gconv_geom {
    int cin, in_h, in_w;
    int cout, out_h, out_w;
    int kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
} sx_gconv_geom;
/// Output channels a packed grouped-conv weight block holds (the last block zero-padded).
#define SX_GCONV_CO_BLOCK 8
/// Whether `grouped_conv` takes `g`: kernel sides ≤ 16, the rows one output row reads
/// (`(kh−1)·dil_h + 1`) ≤ 64, strides ≤ 8, and a few more size limits (see grouped_conv.c);
/// 0 for a NULL or inconsistent `g`.
int sx_gconv_supported(const sx_gconv_geom *g);
/// Floats of `sx_gconv_pack`'s output: `ceil(cout/8)·8 · cin·kh·kw`.
size_t sx_gconv_packed_floats(const sx_gconv_geom *g);
/// Packs one group's weights `w` (`[cout][cin][kh][kw]`, ONNX order) for `grouped_conv` into `dst`
/// (`sx_gconv_packed_floats` floats, 64-byte aligned): blocks of 8 output channels, each
/// `[cin][kh][kw][8]`, missing channels zero.
void sx_gconv_pack(const sx_gconv_geom *g, const float *w, float *dst);
/// Floats of scratch one `grouped_conv` call needs (its input rows, zero-padded and split into
/// stride phases); 64-byte aligned scratch is best.
size_t sx_gconv_scratch_floats(const sx_gconv_geom *g);

/// One ISA's kernels (XNNPACK-style configuration): tile sizes and function pointers, filled once
/// per ISA in configs/kernel_config.c. A NULL kernel means this ISA has no fast path of that kind
/// and planners take the general one (im2col + `gemm`, a padded copy + `dw3x3_plane`, portable
/// pooling). Planners read the widths below and test the pointers; they never compare ISA ids.
/// Tables are immutable and live for the process (the AVX-512 one's CPU-dependent fields are set
/// once, before `sx_kernel_config_for` first returns it; thread-safe).
typedef struct sx_kernel_config {
    int isa;                 ///< SX_GEMM_ISA_*
    const char *name;        ///< "avx512", "avx2", "neon", "scalar" (as SELFXIT_GEMM_ISA spells it)
    int mr;                  ///< rows per packed A panel (`sx_gemm_pack_a`)
    int nr;                  ///< columns per packed B panel (SX_GEMM_NR)
    int direct_unit;         ///< grid columns per `direct` work unit (a multiple of the kernel's width); 0 without `direct`
    int ctd_max_pixels;      ///< pixels per `ctd` row segment (its accumulators); 0 without `ctd`
    int small_rows_max;      ///< rows `small_rows` takes (1...this); 0 without `small_rows`
    int vector_floats;       ///< floats per vector register (16, 8, 4, 1)
    /// `sx_gemm_compute` for this ISA (A packed with `mr`).
    void (*gemm)(const float *pa, int m, int k, int mp0, int mp1, const float *pb, int n, int np0, int np1,
                 const sx_gemm_out *out);
    /// `sx_gemm_compute_direct` (A packed with `mr`), or NULL.
    void (*direct)(const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b, int q0, int q1,
                   const sx_gemm_out *out);
    /// `sx_gemm_compute_ct`, or NULL.
    void (*ct)(const float *pw, int m, int k, int cp0, int cp1, const float *pb, int n, int np0, int np1,
               const sx_gemm_out *out);
    /// `sx_gemm_compute_ctd`, or NULL.
    void (*ctd)(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b, int oy0, int oy1,
                const sx_gemm_out *out);
    /// `sx_gemm_small_rows`, or NULL.
    void (*small_rows)(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx, const float *b,
                       ptrdiff_t ldb, float *y, ptrdiff_t ldy);
    /// `sx_im2col_packed` (never NULL).
    void (*im2col)(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst);
    /// `sx_dw3x3_plane` (never NULL).
    void (*dw3x3_plane)(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, const float *w, float bias,
                        float *out, int out_h, int out_w, int act, float lo, float hi);
    /// `sx_dw3x3_direct`, or NULL.
    void (*dw3x3_direct)(const float *x, int in_h, int in_w, int stride, int pad_top, int pad_left, const float *w,
                         float bias, const float *res, float *out, int oy0, int oy1, int out_w, int act, float lo,
                         float hi);
    /// `sx_maxpool_direct`, or NULL.
    void (*maxpool_direct)(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                           float *out, int out_h, int out_w);
    /// `sx_deinterleave2` (never NULL).
    void (*deinterleave2)(const float *s, float *d, int lo, int hi);
    /// `y[i] = 1 / (1 + e^−x[i])` for `i < n` (`y` may be `x`), total: NaN → NaN, ±inf → 1 / 0, never traps (never NULL).
    void (*sigmoid)(const float *x, float *y, size_t n);
    /// `y[i] = x[i] · sigmoid(x[i])`, total as `sigmoid` (never NULL).
    void (*silu)(const float *x, float *y, size_t n);
    /// Depthwise `kh×kw` (each ≤ SX_DW_DIRECT_MAX_K), dilation 1, stride 1 or 2 in both directions,
    /// over one plane read in place: as `dw3x3_direct` with `w` holding `kh·kw` taps, and applying
    /// every SX_GEMM_ACT_* code (HardSwish, SiLU, Sigmoid too, whatever `fused_acts` says). Or NULL.
    void (*dw_direct)(const float *x, int in_h, int in_w, int kh, int kw, int stride, int pad_top, int pad_left,
                      const float *w, float bias, const float *res, float *out, int oy0, int oy1, int out_w,
                      int act, float lo, float hi);
    /// Bit `1 << code` for each SX_GEMM_ACT_* code above CLIP that every kernel of this
    /// configuration taking an `act` applies as it stores (0: those activations run as a separate pass);
    /// `dw_direct` applies them all regardless.
    unsigned fused_acts;
    /// Depthwise `kh×kw` over one zero-padded plane, as `dw3x3_plane` with `off` holding `kw` column
    /// offsets and `w` `kh·kw` taps (any stride or dilation: the caller's padded, phase-split copy
    /// encodes them). Or NULL (the caller's own loop).
    void (*dw_plane)(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, int kh, int kw, const float *w,
                     float bias, float *out, int out_h, int out_w, int act, float lo, float hi);

    /// `sx_sgemm`'s blocks (Goto/BLIS): rows of a packed A block (a multiple of `mr`), its depth K,
    /// and columns of a packed B block (a multiple of 16), sized for this ISA's tile and the caches
    /// of the CPUs it targets.
    int sgemm_mc, sgemm_kc, sgemm_nc;
    /// `sx_sgemm`'s product of a packed A block (`mc` rows, `kc` deep) by `nc` columns of a packed
    /// B block into C (added to C when `accum`) in this tile's loop order, or NULL (then `gemm`).
    void (*sgemm_block)(int mc, int nc, int kc, const float *pa, const float *pb, float *c, ptrdiff_t ldc, int accum);
    /// `sx_sgemm` of a plain A (row-major, read in place) by at most `sgemm_skinny_max_n` columns
    /// of B (all `k` rows packed, alpha applied), or NULL.
    void (*sgemm_skinny)(int m, int n, int k, const float *a, ptrdiff_t lda, const float *pb, float *c, ptrdiff_t ldc,
                         int beta1);
    int sgemm_skinny_max_n;
    /// Largest stride-1 plane (floats) the depthwise planner reads in place with `dw3x3_direct`;
    /// 0: no limit. Larger ones take the padded copy + `dw3x3_plane` (measured faster there).
    int dw3x3_direct_max_plane_s1;
    /// Grouped convolution, one group (`sx_gconv_supported(g)`), output rows `oy0..<oy1`:
    /// `x` the group's `cin` input planes, `pw` its weights packed by `sx_gconv_pack`, `bias` its
    /// `cout` biases (may be NULL), `out` its `cout` output planes (`out_h×out_w`, row 0 at `out`),
    /// `res` (laid out as `out`, may be NULL, may be `out`) added before the activation;
    /// `scratch` holds `sx_gconv_scratch_floats(g)`. Or NULL (im2col + `gemm` per group).
    void (*grouped_conv)(const sx_gconv_geom *g, const float *x, const float *pw, const float *bias,
                         const float *res, float *out, int oy0, int oy1, int act, float lo, float hi,
                         float *scratch);

    /// The direct grid (`direct`, not channel-major) only for convolutions of K (in channels ×
    /// kernel taps) ≥ this; 0: any. Below it im2col + `gemm` (a stem's 27 rows: the grid's tiles
    /// are mostly epilogue there).
    int direct_min_k;
    /// 1×1 convolutions take the direct grid only with at most this many output channels; 0: any,
    /// negative: none. With more, packing B is spread over enough rows that the packed product's
    /// contiguous panels win over reading B in place.
    int direct_pointwise_max_m;
    /// The widest output rows (pixels) the convolution planner gives `ctd` (channel-major direct;
    /// rows narrower than 7 never), per kind of convolution: kernels larger than 1×1 at stride 1
    /// and at stride 2, 1×1 at stride 1 and at stride 2. 0: that kind never channel-major.
    int ctd_max_width, ctd_max_width_s2, ctd_max_width_1x1, ctd_max_width_1x1_s2;
    /// A stride-1 1×1 convolution with fewer inputs than outputs goes channel-major only on planes
    /// of fewer pixels than this (0: never); with at least as many inputs, within the width above.
    int ctd_1x1_expand_max_plane;
    /// When a packed product on output rows narrower than 7 pixels (ResNet-18 w64's 4×4 layer4)
    /// runs its samples channel-major direct (`ctd`) instead, as flags: `SX_CTD_NARROW_SHARED`,
    /// one sample shared by the threads (batch < threads); `SX_CTD_NARROW_BATCHED`, at stride 1
    /// from 8 samples a thread. That kernel streams a channel pair's weights once per output row
    /// and sample, which pays on a CPU whose cores read L3 fast (AMD) and not on one whose do not
    /// (an Intel Xeon's mesh); it depends on the CPU, not only the ISA, so the tables' values are
    /// set from the CPU's vendor when a table is first asked for (`sx_kernel_config_for`). Where
    /// the table's A panels are not its channel vectors' height (`mr` ≠ `nr`: AVX2's 6 rows), the
    /// layer keeps a second, channel-major copy of its weights for that kernel.
    int ctd_narrow_planes;
    /// Whether stride-2 convolutions with kernels over 1×1 and more than 16 input channels (not a
    /// stem) take the packed product (im2col + `gemm`) instead of the grid or channel-major direct
    /// kernels (0: the rules above decide). Set from the CPU's L2 size (AVX2 under 1 MB:
    /// `sx_kernel_config_for`).
    int s2_packed;
} sx_kernel_config;
/// `sx_kernel_config.ctd_narrow_planes` flags.
#define SX_CTD_NARROW_SHARED 1
#define SX_CTD_NARROW_BATCHED 2

/// Largest kernel side `sx_kernel_config.dw_direct` takes.
#define SX_DW_DIRECT_MAX_K 16

/// The configuration of `isa`, or NULL when this machine cannot run it (or `isa` is no ISA id).
const sx_kernel_config *sx_kernel_config_for(int isa);
/// The configuration of `sx_gemm_default_isa()` (never NULL).
const sx_kernel_config *sx_kernel_config_default(void);

/// A spin-wait hint (x86 `pause`, Arm `yield`) for busy-wait loops.
static inline void sx_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

#ifdef __cplusplus
}
#endif
#endif
