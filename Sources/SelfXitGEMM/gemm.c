#include "selfxit_gemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define SX_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#define NR SX_GEMM_NR
#define MR_MAX 16
#define MR_AVX512 16
#define MR_AVX2 6
#define MR_SCALAR 4

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
#endif
    return SX_GEMM_ISA_SCALAR;
}

static int hardware_isa(void) {
    static int cached = -1;  // benign race: every thread computes the same value
    if (cached < 0) cached = detect_isa();
    return cached;
}

int sx_gemm_isa_supported(int isa) {
    return isa >= SX_GEMM_ISA_SCALAR && isa <= hardware_isa();
}

int sx_gemm_default_isa(void) {
    int isa = hardware_isa();
    const char *env = getenv("SELFXIT_GEMM_ISA");
    if (env) {
        int want = isa;
        if (!strcmp(env, "scalar")) want = SX_GEMM_ISA_SCALAR;
        else if (!strcmp(env, "avx2")) want = SX_GEMM_ISA_AVX2;
        else if (!strcmp(env, "avx512")) want = SX_GEMM_ISA_AVX512;
        if (want < isa) isa = want;
    }
    return isa;
}

int sx_gemm_mr(int isa) {
    switch (isa) {
    case SX_GEMM_ISA_AVX512: return MR_AVX512;
    case SX_GEMM_ISA_AVX2: return MR_AVX2;
    default: return MR_SCALAR;
    }
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
            else for (int i = 0; i < l; i++) d[i] = src[i];
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

void sx_im2col_packed(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst) {
    const int kArea = g->kernel_h * g->kernel_w;
    const int k = g->channels * kArea;
    const int ow = g->out_w;
    float gather[256];
    for (int r = r0; r < r1; r++) {
        int c = r / kArea, ky = (r / g->kernel_w) % g->kernel_h, kx = r % g->kernel_w;
        const float *src = x + (size_t)c * g->in_h * g->in_w;
        int off = kx * g->dilation_w - g->pad_left;
        // Output columns whose input column lies inside the image: lo..<hi.
        int lo = off >= 0 ? 0 : (-off + g->stride_w - 1) / g->stride_w;
        if (lo > ow) lo = ow;
        int hi = g->in_w - 1 - off < 0 ? 0 : (g->in_w - 1 - off) / g->stride_w + 1;
        if (hi > ow) hi = ow;
        if (hi < lo) hi = lo;
        for (int oy = oy0; oy < oy1; oy++) {
            int col = col0 + (oy - oy0) * ow;
            int iy = oy * g->stride_h + ky * g->dilation_h - g->pad_top;
            if (iy < 0 || iy >= g->in_h) { put_run(dst, k, r, col, NULL, ow); continue; }
            if (lo > 0) put_run(dst, k, r, col, NULL, lo);
            const float *row = src + (size_t)iy * g->in_w + off;
            if (g->stride_w == 1) {
                put_run(dst, k, r, col + lo, row + lo, hi - lo);
            } else {
                for (int x0 = lo; x0 < hi; x0 += 256) {
                    int cnt = hi - x0 < 256 ? hi - x0 : 256;
                    for (int i = 0; i < cnt; i++) gather[i] = row[(ptrdiff_t)(x0 + i) * g->stride_w];
                    put_run(dst, k, r, col + x0, gather, cnt);
                }
            }
            if (hi < ow) put_run(dst, k, r, col + hi, NULL, ow - hi);
        }
    }
}

/* ---------------------------------------------------------------- micro-kernels */

/// Computes an MR×16 tile over `k` and stores rows `< mv`, columns `< nv` of
/// act(acc + bias[r] + res[r, :]) at `c` (row stride `ldc`). `bias`/`res` may be NULL.
typedef void (*kernel_fn)(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                          const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi);

static inline float act1(float v, int act, float lo, float hi) {
    if (act == SX_GEMM_ACT_RELU) return v > 0 ? v : 0;
    if (act == SX_GEMM_ACT_CLIP) return v < lo ? lo : (v > hi ? hi : v);
    return v;
}

static void kernel_scalar(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                          const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi) {
    float acc[MR_SCALAR][NR];
    memset(acc, 0, sizeof acc);
    for (int p = 0; p < k; p++) {
        const float *bp = b + (size_t)p * NR;
        const float *ap = a + (size_t)p * MR_SCALAR;
        for (int r = 0; r < MR_SCALAR; r++) {
            float av = ap[r];
            for (int j = 0; j < NR; j++) acc[r][j] += av * bp[j];
        }
    }
    for (int r = 0; r < mv; r++) {
        float bv = bias ? bias[r] : 0.0f;
        for (int j = 0; j < nv; j++) {
            float v = acc[r][j] + bv;
            if (res) v += res[(ptrdiff_t)r * ldr + j];
            c[(ptrdiff_t)r * ldc + j] = act1(v, act, lo, hi);
        }
    }
}

#if SX_X86
#define AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
#define AVX2_TARGET __attribute__((target("avx2,fma,avx")))

AVX512_TARGET
static void kernel_avx512(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                          const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi) {
    enum { MR = MR_AVX512 };
    __m512 acc[MR];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();
#pragma clang loop unroll_count(2)
    for (int p = 0; p < k; p++) {
        __m512 bv = _mm512_loadu_ps(b + (size_t)p * NR);
        const float *ap = a + (size_t)p * MR;
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(ap[r]), bv, acc[r]);
    }
    __mmask16 mask = (__mmask16)((1u << nv) - 1u);
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), zero = _mm512_setzero_ps();
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r < mv) {
            __m512 v = acc[r];
            if (bias) v = _mm512_add_ps(v, _mm512_set1_ps(bias[r]));
            if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, res + (ptrdiff_t)r * ldr));
            if (act == SX_GEMM_ACT_RELU) v = _mm512_max_ps(v, zero);
            else if (act == SX_GEMM_ACT_CLIP) v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
            _mm512_mask_storeu_ps(c + (ptrdiff_t)r * ldc, mask, v);
        }
    }
}

AVX2_TARGET
static inline __m256 act8(__m256 v, int act, __m256 vlo, __m256 vhi) {
    if (act == SX_GEMM_ACT_RELU) return _mm256_max_ps(v, _mm256_setzero_ps());
    if (act == SX_GEMM_ACT_CLIP) return _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);
    return v;
}

AVX2_TARGET
static void kernel_avx2(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                        const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi) {
    enum { MR = MR_AVX2 };
    __m256 acc0[MR], acc1[MR];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) { acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }
#pragma clang loop unroll_count(2)
    for (int p = 0; p < k; p++) {
        __m256 b0 = _mm256_loadu_ps(b + (size_t)p * NR), b1 = _mm256_loadu_ps(b + (size_t)p * NR + 8);
        const float *ap = a + (size_t)p * MR;
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            __m256 av = _mm256_broadcast_ss(ap + r);
            acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
        }
    }
    __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r < mv) {
            __m256 v0 = acc0[r], v1 = acc1[r];
            if (bias) { __m256 bv = _mm256_set1_ps(bias[r]); v0 = _mm256_add_ps(v0, bv); v1 = _mm256_add_ps(v1, bv); }
            float *cr = c + (ptrdiff_t)r * ldc;
            if (nv == NR) {
                if (res) {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res + (ptrdiff_t)r * ldr));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res + (ptrdiff_t)r * ldr + 8));
                }
                _mm256_storeu_ps(cr, act8(v0, act, vlo, vhi));
                _mm256_storeu_ps(cr + 8, act8(v1, act, vlo, vhi));
            } else {
                float t[NR];
                _mm256_storeu_ps(t, v0);
                _mm256_storeu_ps(t + 8, v1);
                for (int j = 0; j < nv; j++) {
                    float v = t[j];
                    if (res) v += res[(ptrdiff_t)r * ldr + j];
                    cr[j] = act1(v, act, lo, hi);
                }
            }
        }
    }
}
#endif

static kernel_fn kernel_for(int isa) {
#if SX_X86
    if (isa == SX_GEMM_ISA_AVX512 && sx_gemm_isa_supported(isa)) return kernel_avx512;
    if (isa == SX_GEMM_ISA_AVX2 && sx_gemm_isa_supported(isa)) return kernel_avx2;
#endif
    (void)isa;
    return kernel_scalar;
}

/* ---------------------------------------------------------------- driver */

void sx_gemm_compute(int isa, const float *pa, int m, int k, int mp0, int mp1,
                     const float *pb, int n, int np0, int np1, const sx_gemm_out *out) {
    kernel_fn kern = kernel_for(isa);
    const int mr = sx_gemm_mr(isa);
    const int cps = out->cols_per_sample;
    // B panels per block: keep a block of packed B (k×16 per panel) within ~256 KB of L2,
    // so each A panel (in L1) is reused over the block's panels.
    int ppb = (int)((64 * 1024) / ((size_t)k * NR));
    if (ppb < 1) ppb = 1;
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
                int nv = n - col0 < NR ? n - col0 : NR;
                int s0 = col0 / cps, s1 = (col0 + nv - 1) / cps;
                if (s0 == s1) {
                    int pix = col0 - s0 * cps;
                    float *c = out->c + s0 * out->c_sample_stride + (ptrdiff_t)row0 * out->ldc + pix;
                    const float *res = out->residual
                        ? out->residual + s0 * out->r_sample_stride + (ptrdiff_t)row0 * out->ldr + pix : NULL;
                    kern(k, ap, bp, c, out->ldc, mv, nv, bias, res, out->ldr, out->act, out->lo, out->hi);
                } else {
                    // The panel straddles samples: compute into a tile, then scatter.
                    float tile[MR_MAX * NR];
                    kern(k, ap, bp, tile, NR, mv, NR, NULL, NULL, 0, SX_GEMM_ACT_NONE, 0, 0);
                    for (int j = 0; j < nv; j++) {
                        int col = col0 + j, s = col / cps, pix = col - s * cps;
                        float *c = out->c + s * out->c_sample_stride + (ptrdiff_t)row0 * out->ldc + pix;
                        const float *res = out->residual
                            ? out->residual + s * out->r_sample_stride + (ptrdiff_t)row0 * out->ldr + pix : NULL;
                        for (int r = 0; r < mv; r++) {
                            float v = tile[r * NR + j] + (bias ? bias[r] : 0.0f);
                            if (res) v += res[(ptrdiff_t)r * out->ldr];
                            c[(ptrdiff_t)r * out->ldc] = act1(v, out->act, out->lo, out->hi);
                        }
                    }
                }
            }
        }
    }
}
