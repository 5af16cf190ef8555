// Packed SGEMM: CPU detection, packing, portable im2col and the GEMM driver every ISA shares.
// The ISA-specific kernels live in x86/ (AVX-512, AVX2+FMA), arm/ (NEON) and portable.c; the
// one table per ISA that points at them is configs/kernel_config.c. The public entry points
// below dispatch through a configuration, never on an ISA id.
#include "selfxit_gemm.h"
#include "kernels_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if SX_X86
#include <cpuid.h>
#endif

#define NR SX_GEMM_NR

/* ---------------------------------------------------------------- CPU detection */

#if SX_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static int detect_isa(void) {
#if SX_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return SX_GEMM_ISA_SCALAR;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx)) return SX_GEMM_ISA_SCALAR;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return SX_GEMM_ISA_SCALAR;  // XMM and YMM state
    if (__get_cpuid_max(0, 0) < 7) return SX_GEMM_ISA_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512vl = (b >> 31) & 1;
    if (avx512f && avx512dq && avx512vl && (xcr0 & 0xE6) == 0xE6) return SX_GEMM_ISA_AVX512;
    if (avx2) return SX_GEMM_ISA_AVX2;
#elif SX_ARM64
    return SX_GEMM_ISA_NEON;  // Advanced SIMD is mandatory on AArch64
#endif
    return SX_GEMM_ISA_SCALAR;
}

int sxk_cpu_is_amd(void) {
#if SX_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    // The vendor string is EBX, EDX, ECX: "Auth" "enti" "cAMD", or Hygon's "Hygo" "nGen" "uine"
    // (its cores are licensed Zen cores, with Zen's cache hierarchy).
    return (b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u)
        || (b == 0x6f677948u && d == 0x6e65476eu && c == 0x656e6975u);
#else
    return 0;
#endif
}

int sxk_l2_cache_kib(void) {
#if SX_X86
    // Extended leaf 0x80000006, ECX bits 31–16: the L2 of one core in KiB, on AMD's and Intel's
    // CPUs alike (Intel documents the leaf's L2 field too); 0 where the leaf is missing.
    unsigned a, b, c, d;
    if (__get_cpuid_max(0x80000000u, 0) < 0x80000006u) return 0;
    if (!__get_cpuid(0x80000006u, &a, &b, &c, &d)) return 0;
    return (int)(c >> 16);
#else
    return 0;
#endif
}

int sxk_hardware_isa(void) {
    static int cached = -1;  // benign race: every thread computes the same value
    if (cached < 0) cached = detect_isa();
    return cached;
}

int sx_gemm_isa_supported(int isa) {
    int hw = sxk_hardware_isa();
    if (isa == SX_GEMM_ISA_SCALAR) return 1;
#if SX_X86
    // x86's ISAs nest: an AVX-512 machine runs the AVX2 code too.
    return (isa == SX_GEMM_ISA_AVX2 || isa == SX_GEMM_ISA_AVX512) && isa <= hw;
#else
    return isa == hw;
#endif
}

static int lowered_isa(void) {
    int isa = sxk_hardware_isa();
    const char *env = getenv("SELFXIT_GEMM_ISA");
    if (env) {
        int want = isa;
        if (!strcmp(env, "scalar")) want = SX_GEMM_ISA_SCALAR;
        else if (!strcmp(env, "avx2")) want = SX_GEMM_ISA_AVX2;
        else if (!strcmp(env, "avx512")) want = SX_GEMM_ISA_AVX512;
        else if (!strcmp(env, "neon")) want = SX_GEMM_ISA_NEON;
        if (want != isa && sx_gemm_isa_supported(want)) isa = want;
    }
    return isa;
}

int sx_gemm_default_isa(void) {
    // Read once: kernels ask per plane and per row, and getenv scans the whole environment.
    static int cached = -1;  // benign race, as sxk_hardware_isa
    if (cached < 0) cached = lowered_isa();
    return cached;
}

int sx_gemm_mr(int isa) {
    const sx_kernel_config *cfg = sx_kernel_config_for(isa);
    return cfg ? cfg->mr : SXK_MR_SCALAR;
}

/* ---------------------------------------------------------------- packing */


size_t sx_gemm_packed_a_floats(int isa, int m, int k) {
    size_t mr = (size_t)sx_gemm_mr(isa);
    return ((size_t)m + mr - 1) / mr * mr * (size_t)k;
}

void sx_gemm_pack_a(int isa, const float *a, ptrdiff_t lda, int m, int k, float *dst) {
    int mr = sx_gemm_mr(isa);
    int panels = (m + mr - 1) / mr;
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * mr * k;
        for (int kk = 0; kk < k; kk++) {
            for (int r = 0; r < mr; r++) {
                int row = p * mr + r;
                d[(size_t)kk * mr + r] = row < m ? a[(ptrdiff_t)row * lda + kk] : 0.0f;
            }
        }
    }
}

size_t sx_gemm_packed_b_floats(int n, int k) {
    return ((size_t)n + NR - 1) / NR * NR * (size_t)k;
}

/// Copies `len` floats from `src` (zeros when NULL) into row `r` of packed B, starting at column `col`.
static inline void put_run(float *dst, int k, int r, int col, const float *src, int len) {
    while (len > 0) {
        int off = col & (NR - 1);
        int l = NR - off < len ? NR - off : len;
        float *d = dst + (size_t)(col / NR) * NR * k + (size_t)r * NR + off;
        if (src) {
            if (l == NR) memcpy(d, src, NR * sizeof(float));
            else memcpy(d, src, (size_t)l * sizeof(float));
            src += l;
        } else {
            if (l == NR) memset(d, 0, NR * sizeof(float));
            else for (int i = 0; i < l; i++) d[i] = 0.0f;
        }
        col += l;
        len -= l;
    }
}

void sx_gemm_pack_b(const float *b, ptrdiff_t ldb, int ncols, int k, int r0, int r1, int col0, float *dst) {
    for (int r = r0; r < r1; r++) put_run(dst, k, r, col0, b + (ptrdiff_t)r * ldb, ncols);
}

void sx_gemm_pack_b_zero_tail(int n, int k, int r0, int r1, float *dst) {
    int padded = (n + NR - 1) / NR * NR;
    if (padded == n) return;
    for (int r = r0; r < r1; r++) put_run(dst, k, r, n, NULL, padded - n);
}

#define IM2COL_BUF 4096

/// Pixels `p0..<p1` (of the output rows `oy0...`) of im2col row `r` into `out`.
void sxk_im2col_segment_portable(const float *x, const sx_im2col_geom *g, int c, int ky, int kx, int oy0, int p0, int p1, float *out) {
    const int ow = g->out_w;
    const float *src = x + (size_t)c * g->in_h * g->in_w;
    int off = kx * g->dilation_w - g->pad_left;
    // Output columns whose input column lies inside the image: lo..<hi.
    int lo = off >= 0 ? 0 : (-off + g->stride_w - 1) / g->stride_w;
    if (lo > ow) lo = ow;
    int hi = g->in_w - 1 - off < 0 ? 0 : (g->in_w - 1 - off) / g->stride_w + 1;
    if (hi > ow) hi = ow;
    if (hi < lo) hi = lo;
    int p = p0;
    while (p < p1) {
        int oy = oy0 + p / ow, ox0 = p % ow;
        int ox1 = ow < ox0 + (p1 - p) ? ow : ox0 + (p1 - p);
        float *d = out + (p - p0) - ox0;  // d[ox] for ox in ox0..<ox1
        int iy = oy * g->stride_h + ky * g->dilation_h - g->pad_top;
        if (iy < 0 || iy >= g->in_h) {
            for (int i = ox0; i < ox1; i++) d[i] = 0.0f;
        } else {
            const float *row = src + (size_t)iy * g->in_w + off;
            int a = ox0 > lo ? ox0 : lo, b = ox1 < hi ? ox1 : hi;
            if (a > b) a = b;
            int i = ox0;
            for (; i < a; i++) d[i] = 0.0f;
            if (g->stride_w == 1) for (; i < b; i++) d[i] = row[i];
            else for (; i < b; i++) d[i] = row[(ptrdiff_t)i * g->stride_w];
            for (; i < ox1; i++) d[i] = 0.0f;
        }
        p += ox1 - ox0;
    }
}
#define IM2COL_CW 256

/// Rows `r0..<r1` of the im2col matrix through the row-segment function `seg` (see sx_im2col_packed).
void sxk_im2col_with(sxk_segment_fn im2col_segment, const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst) {
    const int k = g->channels * g->kernel_h * g->kernel_w;
    const int npix = (oy1 - oy0) * g->out_w;
    float buf[NR * IM2COL_CW] __attribute__((aligned(64)));
    if (col0 % NR != 0) {
        // Columns not panel-aligned (a sample starting mid-panel): row by row.
        for (int r = r0; r < r1; r++) {
            int kArea = g->kernel_h * g->kernel_w;
            int c = r / kArea, ky = (r / g->kernel_w) % g->kernel_h, kx = r % g->kernel_w;
            for (int p = 0; p < npix; p += NR * IM2COL_CW) {
                int cnt = npix - p < NR * IM2COL_CW ? npix - p : NR * IM2COL_CW;
                im2col_segment(x, g, c, ky, kx, oy0, p, p + cnt, buf);
                put_run(dst, k, r, col0 + p, buf, cnt);
            }
        }
        return;
    }
    // 16 rows × 256 pixels at a time, then each panel's 16×16 block is one contiguous 1 KB write.
    for (int rb = r0; rb < r1; rb += NR) {
        int rows = r1 - rb < NR ? r1 - rb : NR;
        for (int p = 0; p < npix; p += IM2COL_CW) {
            int cnt = npix - p < IM2COL_CW ? npix - p : IM2COL_CW;
            int kArea = g->kernel_h * g->kernel_w;
            int c = rb / kArea, ky = (rb / g->kernel_w) % g->kernel_h, kx = rb % g->kernel_w;
            for (int i = 0; i < rows; i++) {
                im2col_segment(x, g, c, ky, kx, oy0, p, p + cnt, buf + i * IM2COL_CW);
                if (++kx == g->kernel_w) { kx = 0; if (++ky == g->kernel_h) { ky = 0; c++; } }
            }
            for (int q = 0; q < cnt; q += NR) {
                int len = cnt - q < NR ? cnt - q : NR;
                float *d = dst + (size_t)((col0 + p + q) / NR) * NR * k + (size_t)rb * NR;
                if (len == NR) for (int i = 0; i < rows; i++) memcpy(d + i * NR, buf + i * IM2COL_CW + q, NR * sizeof(float));
                else for (int i = 0; i < rows; i++) memcpy(d + i * NR, buf + i * IM2COL_CW + q, (size_t)len * sizeof(float));
            }
        }
    }
}
void sxk_im2col_portable(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst) {
    sxk_im2col_with(sxk_im2col_segment_portable, x, g, r0, r1, oy0, oy1, col0, dst);
}

void sx_im2col_packed(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst) {
    sx_kernel_config_default()->im2col(x, g, r0, r1, oy0, oy1, col0, dst);
}

/* ---------------------------------------------------------------- driver */

/// K block for long products: A and B sub-panels of KC rows (32 KB for A at MR = 16) stay in L1,
/// and a block of B panels in L2, so the A panels of a large weight matrix are not streamed from
/// memory once per B panel. Partial sums accumulate in C; the epilogue runs on the last block.
#define KC_MAX SXK_KC_MAX

/// One tile of the driver: A panel `mp` × B panel `np` over the K block `kb0..<kb0+klen`, with
/// the epilogue on the last block; a panel straddling samples is computed whole into a tile and
/// scattered (a residual in place is read just before its element is written). `sample`: the
/// sample all of the panel's columns belong to where the caller knows it, else −1 (found here,
/// two divisions — a tenth of a K = 64 tile's ~400 cycles). `kern_full` (may be NULL) takes the
/// full tiles of one sample: no partial-tile masks.
__attribute__((always_inline))
static inline void drive_tile(sxk_tile_fn kern, sxk_tile_fn kern_full, int mr, const float *pa, int m, int k, int mp,
                              const float *pb, int n, int np, int kb0, int klen, int first, int last, int in_place,
                              int sample, const sx_gemm_out *out) {
    const int cps = out->cols_per_sample;
    const float *ap = pa + (size_t)mp * mr * k;
    const int row0 = mp * mr;
    const int mv = m - row0 < mr ? m - row0 : mr;
    const float *bias = out->bias ? out->bias + row0 : NULL;
    const float *bp = pb + (size_t)np * NR * k;
    const int col0 = np * NR;
    int nv = n - col0 < NR ? n - col0 : NR;
    const int s0 = sample >= 0 ? sample : col0 / cps, s1 = sample >= 0 ? sample : (col0 + nv - 1) / cps;
    if (s0 == s1) {
        int pix = col0 - s0 * cps;
        float *c = out->c + s0 * out->c_sample_stride + (ptrdiff_t)row0 * out->ldc + pix;
        const float *res = out->residual && last && !in_place
            ? out->residual + s0 * out->r_sample_stride + (ptrdiff_t)row0 * out->ldr + pix : NULL;
        sxk_tile_fn tile = kern_full && mv == mr && nv == NR ? kern_full : kern;
        tile(klen, ap + (size_t)kb0 * mr, bp + (size_t)kb0 * NR, c, out->ldc, mv, nv, last ? bias : NULL, res, out->ldr,
             last ? out->act : SX_GEMM_ACT_NONE, out->lo, out->hi, !first || in_place);
    } else if (last) {
        float tile[SXK_MR_MAX * NR];
        kern(k, ap, bp, tile, NR, mv, NR, NULL, NULL, 0, SX_GEMM_ACT_NONE, 0, 0, 0);
        for (int j = 0; j < nv; j++) {
            int col = col0 + j, s = col / cps, pix = col - s * cps;
            float *c = out->c + s * out->c_sample_stride + (ptrdiff_t)row0 * out->ldc + pix;
            const float *res = out->residual
                ? out->residual + s * out->r_sample_stride + (ptrdiff_t)row0 * out->ldr + pix : NULL;
            for (int r = 0; r < mv; r++) {
                float v = tile[r * NR + j] + (bias ? bias[r] : 0.0f);
                if (res) v += res[(ptrdiff_t)r * out->ldr];
                c[(ptrdiff_t)r * out->ldc] = sxk_act1(v, out->act, out->lo, out->hi);
            }
        }
    }
}

void sxk_gemm_drive(sxk_tile_fn kern, sxk_tile_fn kern_full, sxk_tile2_fn kern2, int mr, const float *pa, int m, int k,
                    int mp0, int mp1, const float *pb, int n, int np0, int np1, const sx_gemm_out *out) {
    const int cps = out->cols_per_sample;
    const int in_place = sxk_residual_in_place(out);
    int kblocks = (k + KC_MAX - 1) / KC_MAX;
    // Only worth it when A is re-read for several B panels and the A panels in use outgrow half
    // the L3 (32 MB on Zen 4), so that each B panel pair would stream them from memory. A panel
    // streamed whole from L3 is cheap (the kernels prefetch it; 4 bytes a cycle at 16 columns),
    // while K blocks restart that stream every KC steps: ResNet-18 b32's layer4 (A 9.4 MB, K 4608,
    // 64 columns a chunk) ran 7 % slower on two threads K-blocked (1.5 % on one) when the limit
    // was 1 MB (BENCHMARKS §7.15).
    if (np1 - np0 <= 1 || (size_t)(mp1 - mp0) * mr * k * sizeof(float) <= (16u << 20)) kblocks = 1;
    const int kc = (k + kblocks - 1) / kblocks;
    for (int kb0 = 0; kb0 < k; kb0 += kc) {
        const int klen = k - kb0 < kc ? k - kb0 : kc;
        const int first = kb0 == 0, last = kb0 + klen >= k;
        // B panels per block: keep a block of packed B (klen×16 per panel) within ~256 KB of L2,
        // so each A panel (in L1) is reused over the block's panels.
        int ppb = (int)((64 * 1024) / ((size_t)klen * NR));
        // At least a pair of panels for the AVX-512 two-panel kernel: one panel at a time would
        // read each A panel once per B panel with twice the loads per FMA.
        if (ppb < 2) ppb = 2;
        ppb &= ~1;
        // The sample every column of the panels belongs to (a batch-1 product, or a block of one
        // sample's pixels), else −1: its tiles then find their place in C without dividing
        // (MobileNetV2's 24→144 at 56×56 ran in 0.91 of the time, ResNet-50's 64→256 0.94, one
        // thread, Zen 3; BENCHMARKS §7.35).
        const int s_first = (np0 * NR) / cps;
        const int sample = s_first == ((np1 * NR < n ? np1 * NR : n) - 1) / cps ? s_first : -1;
        for (int nb = np0; nb < np1; nb += ppb) {
            int ne = nb + ppb < np1 ? nb + ppb : np1;
            for (int mp = mp0; mp < mp1; mp++) {
                const float *ap = pa + (size_t)mp * mr * k;
                int row0 = mp * mr;
                int mv = m - row0 < mr ? m - row0 : mr;
                const float *bias = out->bias ? out->bias + row0 : NULL;
                for (int np = nb; np < ne; np++) {
                    const float *bp = pb + (size_t)np * NR * k;
                    int col0 = np * NR;
                    if (kern2 && np + 1 < ne) {
                        // Two panels at once when all their columns belong to one sample.
                        int nv2 = n - col0 < 2 * NR ? n - col0 : 2 * NR;
                        int t0 = sample >= 0 ? sample : col0 / cps, t1 = sample >= 0 ? sample : (col0 + nv2 - 1) / cps;
                        if (t0 == t1) {
                            int pix = col0 - t0 * cps;
                            float *c = out->c + t0 * out->c_sample_stride + (ptrdiff_t)row0 * out->ldc + pix;
                            const float *res = out->residual && last && !in_place
                                ? out->residual + t0 * out->r_sample_stride + (ptrdiff_t)row0 * out->ldr + pix : NULL;
                            kern2(klen, ap + (size_t)kb0 * mr, bp + (size_t)kb0 * NR, bp + (size_t)NR * k + (size_t)kb0 * NR,
                                  c, out->ldc, mv, nv2, last ? bias : NULL, res, out->ldr,
                                  last ? out->act : SX_GEMM_ACT_NONE, out->lo, out->hi, !first || in_place);
                            np++;
                            continue;
                        }
                    }
                    drive_tile(kern, kern_full, mr, pa, m, k, mp, pb, n, np, kb0, klen, first, last, in_place, sample, out);
                }
            }
        }
    }
}

size_t sx_gemm_packed_wt_floats(int m, int k) { return sx_gemm_packed_b_floats(m, k); }

void sx_gemm_pack_wt(const float *w, int m, int k, float *dst) {
    int panels = (m + NR - 1) / NR;
    for (int p = 0; p < panels; p++)
        for (int kk = 0; kk < k; kk++)
            for (int j = 0; j < NR; j++) {
                int row = p * NR + j;
                dst[((size_t)p * k + kk) * NR + j] = row < m ? w[(size_t)row * k + kk] : 0.0f;
            }
}

/* ---------------------------------------------------------------- entry points by ISA id / default config */

void sx_gemm_compute(int isa, const float *pa, int m, int k, int mp0, int mp1,
                     const float *pb, int n, int np0, int np1, const sx_gemm_out *out) {
    const sx_kernel_config *cfg = sx_kernel_config_for(isa);
    (cfg ? cfg : sx_kernel_config_for(SX_GEMM_ISA_SCALAR))->gemm(pa, m, k, mp0, mp1, pb, n, np0, np1, out);
}

// The entry points below run the default configuration's kernel, or, where it has none, the
// portable C one (same results): never a silent no-op on a machine without AVX-512.
void sx_gemm_compute_direct(const float *pa, int m, int k, int mp0, int mp1,
                            const sx_gemm_direct_b *b, int q0, int q1, const sx_gemm_out *out) {
    const sx_kernel_config *cfg = sx_kernel_config_default();
    if (cfg->direct) cfg->direct(pa, m, k, mp0, mp1, b, q0, q1, out);
    else sxk_direct_portable(cfg->mr, pa, m, k, mp0, mp1, b, q0, q1, out);
}

void sx_gemm_compute_ct(const float *pw, int m, int k, int cp0, int cp1,
                        const float *pb, int n, int np0, int np1, const sx_gemm_out *out) {
    const sx_kernel_config *cfg = sx_kernel_config_default();
    (cfg->ct ? cfg->ct : sxk_ct_portable)(pw, m, k, cp0, cp1, pb, n, np0, np1, out);
}

void sx_gemm_compute_ctd(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b,
                         int oy0, int oy1, const sx_gemm_out *out) {
    const sx_kernel_config *cfg = sx_kernel_config_default();
    (cfg->ctd ? cfg->ctd : sxk_ctd_portable)(pw, m, k, cp0, cp1, b, oy0, oy1, out);
}

void sx_gemm_small_rows(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx,
                        const float *b, ptrdiff_t ldb, float *y, ptrdiff_t ldy) {
    const sx_kernel_config *cfg = sx_kernel_config_default();
    (cfg->small_rows ? cfg->small_rows : sxk_small_rows_portable)(rows, n, k, alpha, x, ldx, b, ldb, y, ldy);
}
