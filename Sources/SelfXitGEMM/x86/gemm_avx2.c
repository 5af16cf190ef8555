// AVX2 + FMA kernels of the AVX2 configuration (configs/kernel_config.c), written for 16 ymm
// registers: the packed 6×16 GEMM tile (12 accumulators, 2 B vectors, 1 broadcast), the direct
// (implicit-GEMM) product on the same tile, the channel-major direct product (6 pixels × 16
// channels), depthwise 3×3 and the vector activations. Compiled on
// x86 only, with per-function target attributes (the table is the only way in).
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include <string.h>
#include "../avx2_helpers.h"

#define AVX2_TARGET __attribute__((target("avx2,fma,avx")))
#define NR SXK_NR
#define MR_AVX2 SXK_MR_AVX2
#define act1 sxk_act1
#define act8 sx_act8_basic

/// One K step of the 6×16 tile for `R` rows: A's packed rows at `ap` broadcast against the two
/// B vectors at `bp`, into `acc0` / `acc1` (in registers once inlined with a constant `R`).
__attribute__((always_inline))
AVX2_TARGET
static inline void tile_step_avx2(const int R, const float *ap, const float *bp, __m256 *acc0, __m256 *acc1) {
    __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        __m256 av = _mm256_broadcast_ss(ap + r);
        acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
        acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
}

/// The epilogue of one full 16-column row of a tile (`v0`, `v1`: its two vectors): C added when
/// accumulating, then the row's bias, the residual row, the activation; plain loads and stores.
__attribute__((always_inline))
AVX2_TARGET
static inline void store_full_row_avx2(__m256 v0, __m256 v1, float *cr, int accum, const float *bias, int r,
                                       const float *rr, int act, __m256 vlo, __m256 vhi) {
    if (accum) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8)); }
    if (bias) { __m256 bv = _mm256_set1_ps(bias[r]); v0 = _mm256_add_ps(v0, bv); v1 = _mm256_add_ps(v1, bv); }
    if (rr) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(rr)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(rr + 8)); }
    _mm256_storeu_ps(cr, act8(v0, act, vlo, vhi));
    _mm256_storeu_ps(cr + 8, act8(v1, act, vlo, vhi));
}

/// The 6×16 tile for `R` rows (1…6, a constant after inlining: a tail panel computes only its
/// rows — 64 or 128 output channels are 10⅔ or 21⅓ panels of 6, and a full-height tile there
/// wasted 3 % of the FMAs). A element (p, r) is `a[p·6 + r]` (packed) or, with `lda` > 0,
/// `a[r·lda + p]` (read in place: sx_sgemm's few-column products, where packing A would cost
/// about as much as the product).
__attribute__((always_inline))
AVX2_TARGET
static inline void tile_avx2(const int R, const ptrdiff_t lda, int k, const float *a, const float *b, float *c,
                             ptrdiff_t ldc, int nv, const float *bias, const float *res, ptrdiff_t ldr, int act, float lo,
                             float hi, int accum) {
    __m256 acc0[MR_AVX2], acc1[MR_AVX2];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) { acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }
    // Columns `< nv` of a row: masked loads and stores (maskload never touches masked-off lanes).
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv - 8), lane);
    // The tile of C is fetched now and read (with `accum`) only after the K loop: loaded here, a
    // C that lives in L3 (a 1024² product's, read back once per K block) stalled every call.
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        _mm_prefetch((const char *)(c + (ptrdiff_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (ptrdiff_t)r * ldc + NR - 1), _MM_HINT_T0);
    }
    if (lda == 0 && R <= 3) {
        // 1–3 rows are 2–6 FMA chains, fewer than latency × 2 ports keep busy (8 on Zen 4, 10 on
        // Zen 2): even and odd K steps accumulate apart (4–12 chains), added after the loop. A
        // 128-row product (21 panels + 2 rows) ran its last panel at half speed.
        __m256 e0[3], e1[3];
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) { e0[r] = _mm256_setzero_ps(); e1[r] = _mm256_setzero_ps(); }
        int p = 0;
        for (; p + 1 < k; p += 2) {
            tile_step_avx2(R, a + (size_t)p * MR_AVX2, b + (size_t)p * NR, acc0, acc1);
            tile_step_avx2(R, a + (size_t)(p + 1) * MR_AVX2, b + (size_t)(p + 1) * NR, e0, e1);
        }
        if (p < k) tile_step_avx2(R, a + (size_t)p * MR_AVX2, b + (size_t)p * NR, acc0, acc1);
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) { acc0[r] = _mm256_add_ps(acc0[r], e0[r]); acc1[r] = _mm256_add_ps(acc1[r], e1[r]); }
    } else if (lda == 0) {
#pragma clang loop unroll_count(2)
        for (int p = 0; p < k; p++) tile_step_avx2(R, a + (size_t)p * MR_AVX2, b + (size_t)p * NR, acc0, acc1);
    } else {
        const float *ar[MR_AVX2];
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) ar[r] = a + (ptrdiff_t)r * lda;
#pragma clang loop unroll_count(2)
        for (int p = 0; p < k; p++) {
            __m256 b0 = _mm256_loadu_ps(b + (size_t)p * NR), b1 = _mm256_loadu_ps(b + (size_t)p * NR + 8);
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                __m256 av = _mm256_broadcast_ss(ar[r] + p);
                acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
            }
        }
    }
    __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        __m256 v0 = acc0[r], v1 = acc1[r];
        float *cr = c + (ptrdiff_t)r * ldc;
        if (nv == NR) {
            store_full_row_avx2(v0, v1, cr, accum, bias, r, res ? res + (ptrdiff_t)r * ldr : NULL, act, vlo, vhi);
        } else {
            if (accum) {
                v0 = _mm256_add_ps(v0, _mm256_maskload_ps(cr, m0));
                v1 = _mm256_add_ps(v1, _mm256_maskload_ps(cr + 8, m1));
            }
            if (bias) { __m256 bv = _mm256_set1_ps(bias[r]); v0 = _mm256_add_ps(v0, bv); v1 = _mm256_add_ps(v1, bv); }
            if (res) {
                v0 = _mm256_add_ps(v0, _mm256_maskload_ps(res + (ptrdiff_t)r * ldr, m0));
                v1 = _mm256_add_ps(v1, _mm256_maskload_ps(res + (ptrdiff_t)r * ldr + 8, m1));
            }
            // Tails stored 4 + 2 + 1 (sx_store_tail8: vmaskmovps stores are microcoded on AMD).
            if (nv >= 8) {
                _mm256_storeu_ps(cr, act8(v0, act, vlo, vhi));
                sx_store_tail8(cr + 8, act8(v1, act, vlo, vhi), nv - 8);
            } else {
                sx_store_tail8(cr, act8(v0, act, vlo, vhi), nv);
            }
        }
    }
}

/// `tile_avx2` for a panel's last columns when at most 8 exist (`nv` ≤ 8): one vector a row
/// instead of two, so a 196-pixel plane (12 panels + 4 columns) or a 49-pixel one (3 + 1) does not
/// compute a whole 16-column panel for its tail. With one vector a row the 6 rows are only 6
/// FMA chains — fewer than the FMA latency × 2 ports keep busy (8 on Zen 4, 10 on Zen 2) — so
/// even and odd K steps accumulate apart (12 chains) and are added after the loop.
__attribute__((always_inline))
AVX2_TARGET
static inline void tile8_avx2(const int R, const ptrdiff_t lda, int k, const float *a, const float *b, float *c,
                              ptrdiff_t ldc, int nv, const float *bias, const float *res, ptrdiff_t ldr, int act,
                              float lo, float hi, int accum) {
    __m256 acc0[MR_AVX2], acc1[MR_AVX2];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) { acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), lane);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) _mm_prefetch((const char *)(c + (ptrdiff_t)r * ldc), _MM_HINT_T0);
    int p = 0;
    for (; p + 1 < k; p += 2) {
        __m256 b0 = _mm256_loadu_ps(b + (size_t)p * NR), b1 = _mm256_loadu_ps(b + (size_t)(p + 1) * NR);
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const float *a0 = lda ? a + (ptrdiff_t)r * lda + p : a + (size_t)p * MR_AVX2 + r;
            const float *a1 = lda ? a0 + 1 : a0 + MR_AVX2;
            acc0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a0), b0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a1), b1, acc1[r]);
        }
    }
    if (p < k) {
        __m256 b0 = _mm256_loadu_ps(b + (size_t)p * NR);
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const float *a0 = lda ? a + (ptrdiff_t)r * lda + p : a + (size_t)p * MR_AVX2 + r;
            acc0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a0), b0, acc0[r]);
        }
    }
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        __m256 v = _mm256_add_ps(acc0[r], acc1[r]);
        float *cr = c + (ptrdiff_t)r * ldc;
        if (accum) v = _mm256_add_ps(v, nv == 8 ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, m0));
        if (bias) v = _mm256_add_ps(v, _mm256_set1_ps(bias[r]));
        if (res) {
            const float *rr = res + (ptrdiff_t)r * ldr;
            v = _mm256_add_ps(v, nv == 8 ? _mm256_loadu_ps(rr) : _mm256_maskload_ps(rr, m0));
        }
        v = act8(v, act, vlo, vhi);
        if (nv == 8) _mm256_storeu_ps(cr, v);
        else sx_store_tail8(cr, v, nv);
    }
}

/// The packed tile for a panel's last `NV` ≤ 4 columns, computed transposed: the vectors run over
/// the A panel's 6 rows (one load a K step: the panel stores a step's 6 rows together) and each of
/// the `NV` B columns is broadcast, so no FMA lane is spent on columns that do not exist. `tile8`
/// for these spent 6 FMAs and 7 loads a K step on 8 lanes of which `NV` were real: a 196-pixel
/// plane's 4-column tail (12 panels + 4) took 5 % of a 512×196×2304 product's kernel time, a
/// 49-pixel plane's 1-column tail (3 panels + 1) as long as half a full panel. `U` K steps
/// accumulate apart (`NV`·`U` FMA chains). Lanes of rows past `mv` hold the panel's zero padding
/// and are not stored; the epilogue (≤ 24 outputs) is scalar.
__attribute__((always_inline))
AVX2_TARGET
static inline void tilet_avx2(const int NV, int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv,
                              const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi,
                              int accum) {
    const int u = NV == 1 ? 4 : 2;  // K steps accumulated apart: 4–8 chains
    __m256 acc[4][4];
#pragma clang loop unroll(full)
    for (int q = 0; q < 4; q++)
#pragma clang loop unroll(full)
        for (int j = 0; j < NV; j++) acc[q][j] = _mm256_setzero_ps();
    const __m256i m6 = _mm256_cmpgt_epi32(_mm256_set1_epi32(MR_AVX2), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma clang loop unroll(full)
    for (int r = 0; r < MR_AVX2; r++) _mm_prefetch((const char *)(c + (ptrdiff_t)(r < mv ? r : 0) * ldc), _MM_HINT_T0);
    int p = 0;
    // An 8-float load at step p reads 2 floats of step p + 1: plain loads while those exist.
    if (u == 4) {
        for (; p + 4 < k; p += 4) {
#pragma clang loop unroll(full)
            for (int q = 0; q < 4; q++) {
                const __m256 av = _mm256_loadu_ps(a + (size_t)(p + q) * MR_AVX2);
                acc[q][0] = _mm256_fmadd_ps(av, _mm256_broadcast_ss(b + (size_t)(p + q) * NR), acc[q][0]);
            }
        }
    } else {
        for (; p + 2 < k; p += 2) {
#pragma clang loop unroll(full)
            for (int q = 0; q < 2; q++) {
                const __m256 av = _mm256_loadu_ps(a + (size_t)(p + q) * MR_AVX2);
#pragma clang loop unroll(full)
                for (int j = 0; j < NV; j++)
                    acc[q][j] = _mm256_fmadd_ps(av, _mm256_broadcast_ss(b + (size_t)(p + q) * NR + j), acc[q][j]);
            }
        }
    }
    for (; p < k; p++) {
        const __m256 av = _mm256_maskload_ps(a + (size_t)p * MR_AVX2, m6);
#pragma clang loop unroll(full)
        for (int j = 0; j < NV; j++) acc[0][j] = _mm256_fmadd_ps(av, _mm256_broadcast_ss(b + (size_t)p * NR + j), acc[0][j]);
    }
    float t[4][8];
#pragma clang loop unroll(full)
    for (int j = 0; j < NV; j++) {
        __m256 v = _mm256_add_ps(acc[0][j], acc[1][j]);
        if (u == 4) v = _mm256_add_ps(v, _mm256_add_ps(acc[2][j], acc[3][j]));
        _mm256_storeu_ps(t[j], v);
    }
    for (int r = 0; r < mv; r++) {
        float *cr = c + (ptrdiff_t)r * ldc;
        const float *rr = res ? res + (ptrdiff_t)r * ldr : NULL;
        const float br = bias ? bias[r] : 0.0f;
#pragma clang loop unroll(full)
        for (int j = 0; j < NV; j++) {
            float v = t[j][r];
            if (accum) v += cr[j];
            v += br;
            if (rr) v += rr[j];
            cr[j] = act1(v, act, lo, hi);
        }
    }
}

/// The packed tile (`sxk_tile_fn`): a panel's `mv` rows on the tile of that height.
AVX2_TARGET
static void kernel_avx2(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                        const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
#define TILE_CASE(R) case R: tile_avx2(R, 0, k, a, b, c, ldc, nv, bias, res, ldr, act, lo, hi, accum); break;
#define TILE8_CASE(R) case R: tile8_avx2(R, 0, k, a, b, c, ldc, nv, bias, res, ldr, act, lo, hi, accum); return;
#define TILET_CASE(NV) case NV: tilet_avx2(NV, k, a, b, c, ldc, mv, bias, res, ldr, act, lo, hi, accum); return;
    if (nv <= 4) {
        switch (nv) { TILET_CASE(1) TILET_CASE(2) TILET_CASE(3) default: tilet_avx2(4, k, a, b, c, ldc, mv, bias, res, ldr, act, lo, hi, accum); return; }
    }
#undef TILET_CASE
    if (nv <= 8) {
        switch (mv) {
            TILE8_CASE(1) TILE8_CASE(2) TILE8_CASE(3) TILE8_CASE(4) TILE8_CASE(5)
            default: tile8_avx2(MR_AVX2, 0, k, a, b, c, ldc, nv, bias, res, ldr, act, lo, hi, accum); return;
        }
    }
#undef TILE8_CASE
    switch (mv) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5)
        default: tile_avx2(MR_AVX2, 0, k, a, b, c, ldc, nv, bias, res, ldr, act, lo, hi, accum); break;
    }
#undef TILE_CASE
}

/// A full 6×16 tile's K loop, four steps at a time with the pointers advanced once per four steps,
/// into zeroed accumulators (C's lines fetched first, as `tile_avx2` does).
__attribute__((always_inline))
AVX2_TARGET
static inline void full_tile_loop_avx2(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, __m256 *acc0,
                                       __m256 *acc1) {
#pragma clang loop unroll(full)
    for (int r = 0; r < MR_AVX2; r++) {
        acc0[r] = _mm256_setzero_ps();
        acc1[r] = _mm256_setzero_ps();
        _mm_prefetch((const char *)(c + (ptrdiff_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (ptrdiff_t)r * ldc + NR - 1), _MM_HINT_T0);
    }
    int p = 0;
    for (; p + 4 <= k; p += 4, a += 4 * MR_AVX2, b += 4 * NR) {
        tile_step_avx2(MR_AVX2, a, b, acc0, acc1);
        tile_step_avx2(MR_AVX2, a + MR_AVX2, b + NR, acc0, acc1);
        tile_step_avx2(MR_AVX2, a + 2 * MR_AVX2, b + 2 * NR, acc0, acc1);
        tile_step_avx2(MR_AVX2, a + 3 * MR_AVX2, b + 3 * NR, acc0, acc1);
    }
    for (; p < k; p++, a += MR_AVX2, b += NR) tile_step_avx2(MR_AVX2, a, b, acc0, acc1);
}

/// `kernel_avx2` for a full tile (`mv` 6, `nv` 16), as the driver calls it for one sample's
/// columns: sx_sgemm's K loop (`full_tile_loop_avx2`), one call from the driver, and an epilogue
/// without the partial tile's masks. On products with a short K the tile's fixed cost weighs:
/// MobileNetV2's 24→144 1×1 at 56×56 (K 24) ran in 0.79–0.96 of its time through `kernel_avx2`,
/// ResNet-50's 64→256 (K 64) in 0.95–0.98, its 256→64 (K 256) level (bench/packed_conv_ab.c's
/// product, the two alternating in one process, one thread, EPYC Zen 3; BENCHMARKS §7.35).
AVX2_TARGET __attribute__((noinline))
static void kernel_full_avx2(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                             const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
    (void)mv, (void)nv;
    __m256 acc0[MR_AVX2], acc1[MR_AVX2];
    full_tile_loop_avx2(k, a, b, c, ldc, acc0, acc1);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR_AVX2; r++)
        store_full_row_avx2(acc0[r], acc1[r], c + (ptrdiff_t)r * ldc, accum, bias, r, res ? res + (ptrdiff_t)r * ldr : NULL,
                            act, vlo, vhi);
}

/// `kernel_avx2` with A read in place (row stride `lda` > 0), no epilogue but the accumulation.
AVX2_TARGET
static void kernel_avx2_inplace_a(int k, const float *a, ptrdiff_t lda, const float *b, float *c, ptrdiff_t ldc, int mv,
                                  int nv, int accum) {
#define TILE_CASE(R) case R: tile_avx2(R, lda, k, a, b, c, ldc, nv, NULL, NULL, 0, SX_GEMM_ACT_NONE, 0, 0, accum); break;
#define TILE8_CASE(R) case R: tile8_avx2(R, lda, k, a, b, c, ldc, nv, NULL, NULL, 0, SX_GEMM_ACT_NONE, 0, 0, accum); return;
    if (nv <= 8) {
        switch (mv) {
            TILE8_CASE(1) TILE8_CASE(2) TILE8_CASE(3) TILE8_CASE(4) TILE8_CASE(5)
            default: tile8_avx2(MR_AVX2, lda, k, a, b, c, ldc, nv, NULL, NULL, 0, SX_GEMM_ACT_NONE, 0, 0, accum); return;
        }
    }
#undef TILE8_CASE
    switch (mv) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5)
        default: tile_avx2(MR_AVX2, lda, k, a, b, c, ldc, nv, NULL, NULL, 0, SX_GEMM_ACT_NONE, 0, 0, accum); break;
    }
#undef TILE_CASE
}

void sxk_gemm_avx2(const float *pa, int m, int k, int mp0, int mp1, const float *pb, int n, int np0, int np1,
                   const sx_gemm_out *out) {
    sxk_gemm_drive(kernel_avx2, kernel_full_avx2, NULL, MR_AVX2, pa, m, k, mp0, mp1, pb, n, np0, np1, out);
}

/* ---------------------------------------------------------------- sx_sgemm's blocks */

/// sx_sgemm's full 6×16 tile: no bias, residual, activation or masks, so that the call costs only
/// what the K loop needs (kernel_avx2 for these spent ~4 % of its samples outside the loop).
AVX2_TARGET __attribute__((noinline))
static void sgemm_tile_full_avx2(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int accum) {
    __m256 acc0[MR_AVX2], acc1[MR_AVX2];
    full_tile_loop_avx2(k, a, b, c, ldc, acc0, acc1);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR_AVX2; r++) {
        float *cr = c + (ptrdiff_t)r * ldc;
        __m256 v0 = acc0[r], v1 = acc1[r];
        if (accum) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
        }
        _mm256_storeu_ps(cr, v0);
        _mm256_storeu_ps(cr + 8, v1);
    }
}

void sxk_sgemm_block_avx2(int mc, int nc, int kc, const float *pa, const float *pb, float *c, ptrdiff_t ldc,
                          int accum) {
    // BLIS's loop order for a tile that is wider than tall: each B panel (kc×16 floats, 16 KB at
    // kc 256) stays in L1 while the block's A panels (6 rows, 24 bytes a K step) stream past it
    // from L2. The other order (sxk_gemm_drive: A panel in L1, B streamed) moves 64 bytes a K
    // step out of L2 for the same 12 FMAs, and needs A's block and B's in L2 together — more
    // than Haswell's 256 KB or Zen 2's 512 KB hold at sx_sgemm's AVX-512 blocks.
    for (int jp = 0; jp < nc; jp += NR) {
        const int nv = nc - jp < NR ? nc - jp : NR;
        const float *bp = pb + (size_t)jp * kc;
        for (int ip = 0; ip < mc; ip += MR_AVX2) {
            const int mv = mc - ip < MR_AVX2 ? mc - ip : MR_AVX2;
            if (mv == MR_AVX2 && nv == NR) {
                sgemm_tile_full_avx2(kc, pa + (size_t)ip * kc, bp, c + (ptrdiff_t)ip * ldc + jp, ldc, accum);
                continue;
            }
            kernel_avx2(kc, pa + (size_t)ip * kc, bp, c + (ptrdiff_t)ip * ldc + jp, ldc, mv, nv, NULL, NULL, 0,
                        SX_GEMM_ACT_NONE, 0, 0, accum);
        }
    }
}

void sxk_sgemm_skinny_avx2(int m, int n, int k, const float *a, ptrdiff_t lda, const float *pb, float *c,
                           ptrdiff_t ldc, int beta1) {
    // Few columns (a classifier's 1000×2048 weights times 32 samples): each element of A meets
    // only one or two B panels, so A is read in place, 6 rows at a time (6 streams the
    // prefetchers follow), never copied; B (all of it packed, alpha applied) is the small operand.
    // K in blocks of 512: a 6-row strip of A (12 KB) stays in L1 for the second B panel.
    enum { KB = 512 };
    const int panels = (n + NR - 1) / NR;
    for (int i0 = 0; i0 < m; i0 += MR_AVX2) {
        const int mv = m - i0 < MR_AVX2 ? m - i0 : MR_AVX2;
        for (int p0 = 0; p0 < k; p0 += KB) {
            const int kc = k - p0 < KB ? k - p0 : KB;
            for (int jp = 0; jp < panels; jp++) {
                const int nv = n - jp * NR < NR ? n - jp * NR : NR;
                kernel_avx2_inplace_a(kc, a + (ptrdiff_t)i0 * lda + p0, lda, pb + (size_t)jp * NR * k + (size_t)p0 * NR,
                                      c + (ptrdiff_t)i0 * ldc + jp * NR, ldc, mv, nv, p0 > 0 || beta1);
            }
        }
    }
}

/* ---------------------------------------------------------------- direct (implicit GEMM) */

/// `direct_tile_avx2_r`'s epilogue on 16 consecutive output pixels with no activation but ReLU
/// (`has_bias`, `has_res`, `relu`: constants of each inlined copy).
__attribute__((always_inline))
AVX2_TARGET
static inline void direct_store_dense_avx2(const int R, const int has_bias, const int has_res, const int relu,
                                           const __m256 *acc0, const __m256 *acc1, float *c, ptrdiff_t ldc, ptrdiff_t pix0,
                                           const float *bias, const float *res, ptrdiff_t ldr) {
    const __m256 zero = _mm256_setzero_ps();
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        __m256 v0 = acc0[r], v1 = acc1[r];
        if (has_bias) { const __m256 bv = _mm256_set1_ps(bias[r]); v0 = _mm256_add_ps(v0, bv); v1 = _mm256_add_ps(v1, bv); }
        if (has_res) {
            const float *rr = res + (ptrdiff_t)r * ldr + pix0;
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(rr));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(rr + 8));
        }
        // max(0, v): maxps returns its second operand when either is NaN, so a NaN stays NaN.
        if (relu) { v0 = _mm256_max_ps(zero, v0); v1 = _mm256_max_ps(zero, v1); }
        float *cr = c + (ptrdiff_t)r * ldc + pix0;
        _mm256_storeu_ps(cr, v0);
        _mm256_storeu_ps(cr + 8, v1);
    }
}

/// The direct product's AVX2 tile: rows `< mv` of a 6-row A panel × grid columns `q..q+15`
/// (`len` of them exist, 1..16), B element (kk, col) read in place at `x[off[kk] + col]`: 12 ymm
/// accumulators, 2 loads + 6 broadcasts per 12 FMAs, as the packed tile. Where the 16 columns are
/// 16 consecutive output pixels the epilogue works on vectors; otherwise (a grid row's padding
/// columns among them, or the tail) on the same vectors through lane masks, one per run of pixels.
/// `R` (1…6, constant after inlining) is the panel's row count: a tail panel computes only its rows.
__attribute__((always_inline))
AVX2_TARGET
static inline void direct_tile_avx2_r(const int R, int k, const float *a, const float *x, const int *off, int q,
                                      int len, const sx_gemm_direct_b *b, float *c, ptrdiff_t ldc, const float *bias,
                                      const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
    enum { MR = MR_AVX2 };
    const int mv = R;
    int q_row = q / b->grid_w, q_col = q - q_row * b->grid_w;
    const int fast = len == 16 && (b->grid_w == b->valid_w || q_col + 16 <= b->valid_w);
    const ptrdiff_t pix0 = fast ? (b->grid_w == b->valid_w ? q : (ptrdiff_t)q_row * b->valid_w + q_col) : 0;
    // Otherwise the 16 columns are runs of consecutive output pixels (one per grid row they
    // touch) between a row's padding columns: run `s` is lanes `lo..<hi` of the tile at pixels
    // `pix − lo + lane`, read and written through lane masks. The scalar loop this replaced (a
    // pixel table, 16 loads and 16 stores a row) cost up to a fifth of a tile where K runs in
    // blocks and C is re-read each block (ResNet-50's 14×14 3×3 layer, 36 % behind im2col).
    struct { __m256i m0, m1; ptrdiff_t base; } run[16];
    int runs = 0;
    if (!fast) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), lane8 = _mm256_add_epi32(lane, _mm256_set1_epi32(8));
        int j = 0, row = q_row, col = q_col;
        while (j < len) {
            if (col >= b->valid_w) {  // padding columns: skip to the next grid row
                j += b->grid_w - col;
                row++, col = 0;
                continue;
            }
            int hi = j + (b->valid_w - col);
            if (hi > len) hi = len;
            const __m256i vlo_ = _mm256_set1_epi32(j - 1), vhi_ = _mm256_set1_epi32(hi);
            run[runs].m0 = _mm256_and_si256(_mm256_cmpgt_epi32(lane, vlo_), _mm256_cmpgt_epi32(vhi_, lane));
            run[runs].m1 = _mm256_and_si256(_mm256_cmpgt_epi32(lane8, vlo_), _mm256_cmpgt_epi32(vhi_, lane8));
            run[runs].base = (ptrdiff_t)row * b->valid_w + col - j;
            runs++;
            col += hi - j;
            j = hi;
        }
    }
    __m256 acc0[MR], acc1[MR];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) { acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }
    if (accum) {
#pragma clang loop unroll(full)
        for (int r = 0; r < mv; r++) {
            const float *cr = c + (ptrdiff_t)r * ldc;
            if (fast) {
                acc0[r] = _mm256_loadu_ps(cr + pix0);
                acc1[r] = _mm256_loadu_ps(cr + pix0 + 8);
            } else {
                // Runs' lanes are disjoint, masked-off lanes load 0 (and are never touched: the
                // base may lie before C's start by up to 15 floats, none of them accessed).
                for (int s = 0; s < runs; s++) {
                    acc0[r] = _mm256_add_ps(acc0[r], _mm256_maskload_ps(cr + run[s].base, run[s].m0));
                    acc1[r] = _mm256_add_ps(acc1[r], _mm256_maskload_ps(cr + run[s].base + 8, run[s].m1));
                }
            }
        }
    }
    const float *xq = x + q;
    if (len == 16) {
#pragma clang loop unroll_count(2)
        for (int p = 0; p < k; p++) {
            const float *bp = xq + off[p];
            __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
            const float *ap = a + (size_t)p * MR;
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                __m256 av = _mm256_broadcast_ss(ap + r);
                acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
            }
        }
    } else {
        // The tail: loads masked to the columns that exist (B's last row ends at column n).
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(len), lane);
        const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(len - 8), lane);
        for (int p = 0; p < k; p++) {
            const float *bp = xq + off[p];
            __m256 b0 = _mm256_maskload_ps(bp, m0), b1 = _mm256_maskload_ps(bp + 8, m1);
            const float *ap = a + (size_t)p * MR;
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                __m256 av = _mm256_broadcast_ss(ap + r);
                acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
            }
        }
    }
    if (fast && (act == SX_GEMM_ACT_NONE || act == SX_GEMM_ACT_RELU)) {
        // 16 consecutive output pixels and no activation but ReLU: straight-line code per
        // (bias, residual, ReLU), without the general epilogue's tests per vector.
        switch ((bias ? 4 : 0) | (res ? 2 : 0) | (act == SX_GEMM_ACT_RELU)) {
        case 0: direct_store_dense_avx2(R, 0, 0, 0, acc0, acc1, c, ldc, pix0, bias, res, ldr); break;
        case 1: direct_store_dense_avx2(R, 0, 0, 1, acc0, acc1, c, ldc, pix0, bias, res, ldr); break;
        case 2: direct_store_dense_avx2(R, 0, 1, 0, acc0, acc1, c, ldc, pix0, bias, res, ldr); break;
        case 3: direct_store_dense_avx2(R, 0, 1, 1, acc0, acc1, c, ldc, pix0, bias, res, ldr); break;
        case 4: direct_store_dense_avx2(R, 1, 0, 0, acc0, acc1, c, ldc, pix0, bias, res, ldr); break;
        case 5: direct_store_dense_avx2(R, 1, 0, 1, acc0, acc1, c, ldc, pix0, bias, res, ldr); break;
        case 6: direct_store_dense_avx2(R, 1, 1, 0, acc0, acc1, c, ldc, pix0, bias, res, ldr); break;
        default: direct_store_dense_avx2(R, 1, 1, 1, acc0, acc1, c, ldc, pix0, bias, res, ldr); break;
        }
        return;
    }
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        {
            __m256 v0 = acc0[r], v1 = acc1[r];
            if (bias) { __m256 bv = _mm256_set1_ps(bias[r]); v0 = _mm256_add_ps(v0, bv); v1 = _mm256_add_ps(v1, bv); }
            float *cr = c + (ptrdiff_t)r * ldc;
            const float *rr = res ? res + (ptrdiff_t)r * ldr : NULL;
            if (fast) {
                if (rr) {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(rr + pix0));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(rr + pix0 + 8));
                }
                _mm256_storeu_ps(cr + pix0, act8(v0, act, vlo, vhi));
                _mm256_storeu_ps(cr + pix0 + 8, act8(v1, act, vlo, vhi));
            } else {
                if (rr)
                    for (int s = 0; s < runs; s++) {
                        v0 = _mm256_add_ps(v0, _mm256_maskload_ps(rr + run[s].base, run[s].m0));
                        v1 = _mm256_add_ps(v1, _mm256_maskload_ps(rr + run[s].base + 8, run[s].m1));
                    }
                v0 = act8(v0, act, vlo, vhi);
                v1 = act8(v1, act, vlo, vhi);
                for (int s = 0; s < runs; s++) {
                    _mm256_maskstore_ps(cr + run[s].base, run[s].m0, v0);
                    _mm256_maskstore_ps(cr + run[s].base + 8, run[s].m1, v1);
                }
            }
        }
    }
}

/// The direct tile for a panel of `mv` rows (see `direct_tile_avx2_r`).
AVX2_TARGET
static void direct_tile_avx2(int k, const float *a, const float *x, const int *off, int q, int len,
                             const sx_gemm_direct_b *b, float *c, ptrdiff_t ldc, int mv, const float *bias,
                             const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
#define DIRECT_CASE(R) case R: direct_tile_avx2_r(R, k, a, x, off, q, len, b, c, ldc, bias, res, ldr, act, lo, hi, accum); break;
    switch (mv) {
        DIRECT_CASE(1) DIRECT_CASE(2) DIRECT_CASE(3) DIRECT_CASE(4) DIRECT_CASE(5)
        default: direct_tile_avx2_r(MR_AVX2, k, a, x, off, q, len, b, c, ldc, bias, res, ldr, act, lo, hi, accum); break;
    }
#undef DIRECT_CASE
}

void sxk_direct_avx2(const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b, int q0, int q1,
                     const sx_gemm_out *out) {
    const int mr = MR_AVX2;
    const int in_place = sxk_residual_in_place(out);
    // K blocks as the AVX-512 driver: when the A panels in use outgrow L2, a block of B columns
    // (klen rows, ~128 KB) is swept by every A panel before the next K block.
    int kblocks = (k + SXK_KC_MAX - 1) / SXK_KC_MAX;
    if (q1 - q0 <= 2 * NR || (size_t)(mp1 - mp0) * mr * k * sizeof(float) <= (1u << 20)) kblocks = 1;
    const int kc = (k + kblocks - 1) / kblocks;
    const int qend = q1 < b->n ? q1 : b->n;
    for (int kb0 = 0; kb0 < k; kb0 += kc) {
        const int klen = k - kb0 < kc ? k - kb0 : kc;
        const int first = kb0 == 0, last = kb0 + klen >= k;
        // Columns per block: B's block (klen rows) within ~128 KB (half of Zen 2's 512 KB L2).
        int cpb = (int)((32 * 1024) / (size_t)klen) / NR * NR;
        if (cpb < NR) cpb = NR;
        for (int qb = q0; qb < qend; qb += cpb) {
            int qe = qb + cpb < qend ? qb + cpb : qend;
            for (int mp = mp0; mp < mp1; mp++) {
                const float *ap = pa + (size_t)mp * mr * k + (size_t)kb0 * mr;
                int row0 = mp * mr;
                int mv = m - row0 < mr ? m - row0 : mr;
                const float *bias = out->bias && last ? out->bias + row0 : NULL;
                float *c = out->c + (ptrdiff_t)row0 * out->ldc;
                const float *res = out->residual && last && !in_place ? out->residual + (ptrdiff_t)row0 * out->ldr : NULL;
                for (int q = qb; q < qe; q += NR) {
                    int len = qe - q < NR ? qe - q : NR;
                    direct_tile_avx2(klen, ap, b->x, b->offsets + kb0, q, len, b, c, out->ldc, mv, bias, res, out->ldr,
                                     last ? out->act : SX_GEMM_ACT_NONE, out->lo, out->hi, !first || in_place);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- channel-major direct */

/// Pixels per channel-major segment: 6 pixels × 16 output channels are 12 ymm accumulators beside
/// 2 weight vectors and a broadcast (16 registers).
#define CTD_PIXELS_AVX2 6
/// Segments a K-blocked pass keeps partial sums for (on the stack, 384 bytes each).
#ifndef CTD_GROUP_AVX2
#define CTD_GROUP_AVX2 32
#endif
/// K rows per block when a 16-channel panel's weights outgrow 32 KB: 8 KB of them then stay in L1
/// while the group's segments pass.
#ifndef CTD_KC_AVX2
#define CTD_KC_AVX2 128
#endif
/// K rows ahead the channel-major tile fetches its weights (one 64-byte line a row): a layer's
/// weights come from L3 or memory in a model (2.4 MB for ResNet-50's layer3 3×3), and the first
/// segment of each K block otherwise waits on every line of it.
#ifndef CTD_PREFETCH_AVX2
#define CTD_PREFETCH_AVX2 48
#endif

/// One window row's three taps for 6 consecutive pixels from `p` (pixel r, tap kx at
/// `p[r + kx]`): 6 weight vectors from `wr` and 18 broadcasts at fixed displacements into the 12
/// accumulators, written out so that the compiler's flags cannot change it. The same loop in C
/// ran 0.88–0.95 of the offsets' time at -O3 but level at SwiftPM's -O2, where clang kept a
/// pointer a pixel, advanced every window row, and reloaded the window's height each row.
__attribute__((always_inline))
AVX2_TARGET
static inline void ctd_window_row_avx2(const float *p, const float *wr, __m256 *acc0, __m256 *acc1) {
    __m256 w0, w1, bv;
#define SXK_WIN_PIX(A, D) "vbroadcastss " #D "(%[p]), %[bv]\n\t" \
    "vfmadd231ps %[bv], %[w0], %[a" #A "]\n\t" "vfmadd231ps %[bv], %[w1], %[c" #A "]\n\t"
#define SXK_WIN_TAP(WD0, WD1, D0, D1, D2, D3, D4, D5) "vmovups " #WD0 "(%[wr]), %[w0]\n\t" "vmovups " #WD1 "(%[wr]), %[w1]\n\t" \
    SXK_WIN_PIX(0, D0) SXK_WIN_PIX(1, D1) SXK_WIN_PIX(2, D2) SXK_WIN_PIX(3, D3) SXK_WIN_PIX(4, D4) SXK_WIN_PIX(5, D5)
    __asm__(SXK_WIN_TAP(0, 32, 0, 4, 8, 12, 16, 20) SXK_WIN_TAP(64, 96, 4, 8, 12, 16, 20, 24)
            SXK_WIN_TAP(128, 160, 8, 12, 16, 20, 24, 28)
            : [a0] "+x"(acc0[0]), [a1] "+x"(acc0[1]), [a2] "+x"(acc0[2]), [a3] "+x"(acc0[3]), [a4] "+x"(acc0[4]),
              [a5] "+x"(acc0[5]), [c0] "+x"(acc1[0]), [c1] "+x"(acc1[1]), [c2] "+x"(acc1[2]), [c3] "+x"(acc1[3]),
              [c4] "+x"(acc1[4]), [c5] "+x"(acc1[5]), [w0] "=&x"(w0), [w1] "=&x"(w1), [bv] "=&x"(bv)
            : [wr] "r"(wr), [p] "r"(p)
            : "memory");
#undef SXK_WIN_TAP
#undef SXK_WIN_PIX
}

/// `R` (≤ 6) consecutive output pixels of one row × 16 output channels (one weight panel): pixel
/// `r`'s element of K row `p` read in place at `xr[off[p] + r]` and broadcast, for K rows
/// `0..<k`, or with `listed` (a constant of each inlined copy) the rows `kidx[0..<k]` (a top or
/// bottom row's taps inside the input, `sx_gemm_direct_b.row_k`). `first`/`last`: the K block's
/// place (partial sums wait in `part` between blocks). The epilogue transposes the 16-channel
/// vectors into per-channel rows of `R` pixels (C is channel-major, `ldc` apart).
/// With `win` (a constant of each inlined copy, `R` 6 and pixels consecutive in B; `b` states a
/// window 3 wide, `win_col` 1, and the block's `k` rows are whole channels, `off` at the first)
/// the taps' positions follow from `b`'s window instead of being loaded from `off`. 3×3 layers
/// alone (EPYC Zen 3, one thread, the two kernels alternating call by call, a new input each
/// call, SwiftPM's -O2; bench/ctd_variant_ab.sh, BENCHMARKS §7.38): 0.86–0.96 of the offsets'
/// time on 28×28 and 56×56 planes, 0.89–1.02 on 14×14, level on 7×7 and 4×4 (their segments
/// mostly cross rows). `fetch`: whether the window path prefetches the weights ahead (the
/// offsets path keeps its own rule, unlisted rows always).
__attribute__((always_inline))
AVX2_TARGET
static inline void ctd_tile_avx2(const int R, const int listed, const int win, int k, const int *kidx, const float *xr,
                                 ptrdiff_t gstride, const float *const *xb, const int *off, const sx_gemm_direct_b *b,
                                 const float *w, int chans, float *c, ptrdiff_t pstride, ptrdiff_t ldc, const float *res,
                                 ptrdiff_t ldr, const float *bias, int act, float lo, float hi, int in_place, float *part,
                                 int first, int last, int fetch) {
    // Pixel r's input: `xb[r]` (a run of pixels over several rows), else `xr + r·gstride`.
    const float *base[8];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) base[r] = xb ? xb[r] : xr + r * gstride;
    __m256 acc0[8], acc1[8];
#pragma clang loop unroll(full)
    for (int r = 0; r < 8; r++) { acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }
    if (!first) {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) { acc0[r] = _mm256_loadu_ps(part + 16 * r); acc1[r] = _mm256_loadu_ps(part + 16 * r + 8); }
    }
    if (win) {
        // Six consecutive pixels (`xr`), the block's channels one by one, a window row at a time
        // (`ctd_window_row_avx2`): no offset load before each broadcast, no loop step a tap.
        const int taps = 3 * b->win_h, win_h = b->win_h;
        const ptrdiff_t row = b->win_row, channel = b->win_channel;
        const float *pc = xr + off[0];
        const float *wc = w;
        for (int cc = 0; cc < k; cc += taps) {
            const float *pr = pc, *wr = wc;
            for (int ky = 0; ky < win_h; ky++) {
                if (CTD_PREFETCH_AVX2 > 0 && fetch)
                    for (int kx = 0; kx < 3; kx++) _mm_prefetch((const char *)(wr + (size_t)(CTD_PREFETCH_AVX2 + kx) * NR), _MM_HINT_T0);
                ctd_window_row_avx2(pr, wr, acc0, acc1);
                pr += row;
                wr += 3 * NR;
            }
            wc += (size_t)taps * NR;
            pc += channel;
        }
    } else
    for (int j = 0; j < k; j++) {
        const int p = listed ? kidx[j] : j;
        const __m256 w0 = _mm256_loadu_ps(w + (size_t)p * NR), w1 = _mm256_loadu_ps(w + (size_t)p * NR + 8);
        if (!listed && CTD_PREFETCH_AVX2 > 0) _mm_prefetch((const char *)(w + (size_t)(p + CTD_PREFETCH_AVX2) * NR), _MM_HINT_T0);
        const int o = off[p];
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const __m256 bv = _mm256_broadcast_ss(base[r] + o);
            acc0[r] = _mm256_fmadd_ps(w0, bv, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(w1, bv, acc1[r]);
        }
    }
    if (!last) {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) { _mm256_storeu_ps(part + 16 * r, acc0[r]); _mm256_storeu_ps(part + 16 * r + 8, acc1[r]); }
        return;
    }
    if (pstride != 1) {
        // Pixels down a border column (`ldc` / `ldr` apart per channel, `pstride` per pixel): a
        // scalar epilogue — two columns a plane.
        float sums[8 * 16];
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) { _mm256_storeu_ps(sums + 16 * r, acc0[r]); _mm256_storeu_ps(sums + 16 * r + 8, acc1[r]); }
        for (int ch = 0; ch < chans; ch++)
            for (int r = 0; r < R; r++) {
                float *cp = c + (ptrdiff_t)ch * ldc + r * pstride;
                float v = sums[16 * r + ch] + (bias ? bias[ch] : 0.0f);
                if (in_place) v += *cp;
                else if (res) v += res[(ptrdiff_t)ch * ldr + r * pstride];
                *cp = act1(v, act, lo, hi);
            }
        return;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i pm = _mm256_cmpgt_epi32(_mm256_set1_epi32(R), lane);  // the segment's pixels
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
#pragma clang loop unroll(full)
    for (int h = 0; h < 2; h++) {
        // Channels 8h..8h+7: v[q] lane r = pixel r of channel 8h + q after the transpose.
        __m256 v[8];
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) v[r] = h ? acc1[r] : acc0[r];
        if (bias) {
            const __m256i cm = _mm256_cmpgt_epi32(_mm256_set1_epi32(chans - 8 * h), lane);
            const __m256 bv = _mm256_maskload_ps(bias + 8 * h, cm);
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) v[r] = _mm256_add_ps(v[r], bv);
        }
        sx_transpose8(v);
#pragma clang loop unroll(full)
        for (int q = 0; q < 8; q++) {
            const int ch = 8 * h + q;
            if (ch >= chans) break;
            float *cr = c + (ptrdiff_t)ch * ldc;
            __m256 t = v[q];
            if (in_place) t = _mm256_add_ps(t, _mm256_maskload_ps(cr, pm));
            else if (res) t = _mm256_add_ps(t, _mm256_maskload_ps(res + (ptrdiff_t)ch * ldr, pm));
            sx_store_tail8(cr, act8(t, act, vlo, vhi), R);  // R ≤ 6 pixels: 4 + 2 + 1, not vmaskmovps
        }
    }
}


/// One run of output pixels `p0..<p1` (raster order: consecutive in C, row after row) of channel
/// panel `cp`, in near-equal segments of ≤ 6 pixels whatever the rows' width — a 7-pixel row is
/// not cut 4 + 3 (8 and 6 accumulators, short of the 8 FMA chains two pipes need), and pixel r
/// of a segment reads B at its own row's base. `kidx`/`kn`: a listed row's K rows (one block).
AVX2_TARGET
static void ctd_run_avx2(const float *w, int chans, int k, const sx_gemm_direct_b *b, ptrdiff_t p0, ptrdiff_t p1,
                         const int *kidx, int kn, const sx_gemm_out *out, int ch0, const float *bias, int in_place,
                         float *partial) {
    const int out_w = b->valid_w;
    const ptrdiff_t run = p1 - p0;
    const int total = (int)((run + CTD_PIXELS_AVX2 - 1) / CTD_PIXELS_AVX2);
    // A listed row runs its K rows in one block — also none at all (a row wholly in the padding:
    // bias, residual and activation only), hence at least one block and kc ≥ 1.
    // K blocks only where a full group of segments shares each block's weights: a run of fewer
    // segments (a 14×14 or 7×7 plane, or a thread's share of one) would pay a partial-sum store
    // and reload per block for weights used a few times, and it streams the whole panel from L2
    // faster (bench/ctd_ceiling_avx2.c, Zen 3, one thread, batch 32 with a new input a sample: ResNet-18's
    // 128→128 on 14×14 82 → 88 GF/s, 256→256 on 7×7 80 → 85; 28×28 and 56×56 planes level).
    const int blocked = (size_t)k * NR * sizeof(float) > 32 * 1024 && total >= CTD_GROUP_AVX2;
    // The window's taps computed (`ctd_tile_avx2`'s `win`) where `b` states a 3-wide window whose
    // whole channels make up K; K blocks are then whole channels too.
    const int taps = b->win_w == 3 && b->win_col == 1 && b->win_h > 0 ? 3 * b->win_h : 0;
    const int win = !kidx && taps > 0 && taps <= CTD_KC_AVX2 && k % taps == 0;
    const int kc = kidx ? (k > 0 ? k : 1) : blocked ? (win ? CTD_KC_AVX2 / taps * taps : CTD_KC_AVX2) : k;
    for (int s0 = 0; s0 < total; s0 += CTD_GROUP_AVX2) {
        const int s1 = s0 + CTD_GROUP_AVX2 < total ? s0 + CTD_GROUP_AVX2 : total;
        for (int kb0 = 0; kb0 == 0 || kb0 < k; kb0 += kc) {
            const int klen = k - kb0 < kc ? k - kb0 : kc;
            const int first = kb0 == 0, last = kb0 + klen >= k;
            const float *wk = w + (size_t)kb0 * NR;
            const int *offk = b->offsets + kb0;
            for (int si = s0; si < s1; si++) {
                const ptrdiff_t q0 = p0 + run * si / total, q1 = p0 + run * (si + 1) / total;
                const int len = (int)(q1 - q0);
                // Pixels consecutive in B too (one grid row, or a grid as wide as the output) read
                // from one base; a segment across rows from a base per pixel.
                const float *xb[CTD_PIXELS_AVX2];
                int oy = (int)(q0 / out_w), ox = (int)(q0 - (ptrdiff_t)oy * out_w);
                const float *xr = b->x + (ptrdiff_t)oy * b->grid_w + ox;
                const int across = b->grid_w != out_w && ox + len > out_w;
                for (int r = 0; across && r < len; r++) {
                    xb[r] = b->x + (ptrdiff_t)oy * b->grid_w + ox;
                    if (++ox == out_w) { ox = 0; oy++; }
                }
                float *c = out->c + (ptrdiff_t)ch0 * out->ldc + q0;
                const float *res = out->residual && !in_place ? out->residual + (ptrdiff_t)ch0 * out->ldr + q0 : NULL;
                float *part = partial + (size_t)(si - s0) * CTD_PIXELS_AVX2 * NR;
                // Weights fetched ahead by the group's first segment of a K block (the others find
                // the block in L1) or, unblocked, by every segment (the panel streams from L2).
                const int fetch = !blocked || si == s0;
                // (A listed row is one grid row: never across.)
#define CTD_RCASES(T) switch (len) { T(6) T(5) T(4) T(3) T(2) T(1) default: break; }
#define CTD_RLIST(R) case R: ctd_tile_avx2(R, 1, 0, kn, kidx, xr, 1, NULL, b->offsets, b, w, chans, c, 1, out->ldc, res, out->ldr, bias, out->act, out->lo, out->hi, in_place, part, 1, 1, 1); break;
#define CTD_RONE(R) case R: ctd_tile_avx2(R, 0, 0, klen, NULL, xr, 1, NULL, offk, b, wk, chans, c, 1, out->ldc, res, out->ldr, bias, out->act, out->lo, out->hi, in_place, part, first, last, fetch); break;
#define CTD_RPIX(R) case R: ctd_tile_avx2(R, 0, 0, klen, NULL, NULL, 0, xb, offk, b, wk, chans, c, 1, out->ldc, res, out->ldr, bias, out->act, out->lo, out->hi, in_place, part, first, last, fetch); break;
#define CTD_RONEW(R) case R: ctd_tile_avx2(R, 0, 1, klen, NULL, xr, 1, NULL, offk, b, wk, chans, c, 1, out->ldc, res, out->ldr, bias, out->act, out->lo, out->hi, in_place, part, first, last, fetch); break;
                // The window only on full segments within one grid row: written in C, the 5- and
                // 4-pixel copies spilled their accumulators at -O2, and the pixel-pointer copy for
                // segments across rows ran 1.02–1.04 of the offsets' time on 14×14 and 7×7.
                if (kidx) CTD_RCASES(CTD_RLIST)
                else if (win && len == CTD_PIXELS_AVX2 && !across) switch (len) { CTD_RONEW(CTD_PIXELS_AVX2) default: break; }
                else if (!across) CTD_RCASES(CTD_RONE)
                else CTD_RCASES(CTD_RPIX)
#undef CTD_RONEW
#undef CTD_RPIX
#undef CTD_RONE
#undef CTD_RLIST
#undef CTD_RCASES
            }
        }
    }
}

/// `sx_gemm_compute_ctd` for 16 ymm registers: per 16-channel weight panel, the rows with a
/// K-row list (`row_k`: top and bottom rows, their taps inside the input only) one by one, and
/// each run of rows between them as one run of pixels (`ctd_run_avx2`). Where border columns
/// are split off (`border_cols`: only a plan forcing channel-major onto rows of ≤ 6 pixels) the
/// rows between run their interior pixels `col0..<col1` row by row, and each border column then
/// runs down them over its own K rows (pixels a grid row apart: a scalar epilogue).
AVX2_TARGET
void sxk_ctd_avx2(const float *pw, int m, int k, int cp0, int cp1, const sx_gemm_direct_b *b, int oy0, int oy1,
                  const sx_gemm_out *out) {
    const int out_w = b->valid_w;
    const int colsplit = b->row_k && b->border_cols > 0 && b->col1 > b->col0 && b->grid_w != out_w;
    const int in_place = sxk_residual_in_place(out);
    float partial[CTD_GROUP_AVX2 * CTD_PIXELS_AVX2 * NR];
    for (int cp = cp0; cp < cp1; cp++) {
        const int ch0 = cp * NR;
        const int chans = m - ch0 < NR ? m - ch0 : NR;
        const float *w = pw + (size_t)cp * k * NR;
        const float *bias = out->bias ? out->bias + ch0 : NULL;
        for (int oy = oy0; oy < oy1;) {
            const int listed = sxk_row_listed(b, oy);
            const int end = listed ? oy + 1 : sxk_unlisted_end(b, oy, oy1);
            if (listed) {
                const int kn = b->row_k_span[2 * oy + 1];
                ctd_run_avx2(w, chans, kn, b, (ptrdiff_t)oy * out_w, (ptrdiff_t)(oy + 1) * out_w,
                             b->row_k + b->row_k_span[2 * oy], kn, out, ch0, bias, in_place, partial);
            } else if (colsplit) {
                for (int row = oy; row < end; row++)
                    ctd_run_avx2(w, chans, k, b, (ptrdiff_t)row * out_w + b->col0, (ptrdiff_t)row * out_w + b->col1, NULL,
                                 0, out, ch0, bias, in_place, partial);
            } else {
                ctd_run_avx2(w, chans, k, b, (ptrdiff_t)oy * out_w, (ptrdiff_t)end * out_w, NULL, 0, out, ch0, bias,
                             in_place, partial);
            }
            oy = end;
        }
        if (!colsplit) continue;
        // The border columns down each run of rows without a list, in near-equal pieces of ≤ 6.
        const float *res0 = out->residual && !in_place ? out->residual + (ptrdiff_t)ch0 * out->ldr : NULL;
        for (int oy = oy0; oy < oy1;) {
            if (sxk_row_listed(b, oy)) { oy++; continue; }
            const int end = sxk_unlisted_end(b, oy, oy1);
            const int rows = end - oy, pieces = (rows + CTD_PIXELS_AVX2 - 1) / CTD_PIXELS_AVX2;
            for (int bc = 0; bc < b->border_cols; bc++) {
                const int ox = b->border_col[bc];
                const int *kidx = b->row_k + b->col_k_span[2 * bc];
                const int kn = b->col_k_span[2 * bc + 1];
                for (int piece = 0; piece < pieces; piece++) {
                    const int r0 = oy + rows * piece / pieces, r1 = oy + rows * (piece + 1) / pieces;
                    const float *xr = b->x + (ptrdiff_t)r0 * b->grid_w + ox;
                    const ptrdiff_t pixel = (ptrdiff_t)r0 * out_w + ox;
                    float *c = out->c + (ptrdiff_t)ch0 * out->ldc + pixel;
                    const float *res = res0 ? res0 + pixel : NULL;
#define CTD_COL(R) case R: ctd_tile_avx2(R, 1, 0, kn, kidx, xr, b->grid_w, NULL, b->offsets, b, w, chans, c, out_w, out->ldc, res, out->ldr, bias, out->act, out->lo, out->hi, in_place, partial, 1, 1, 1); break;
                    switch (r1 - r0) { CTD_COL(6) CTD_COL(5) CTD_COL(4) CTD_COL(3) CTD_COL(2) CTD_COL(1) default: break; }
#undef CTD_COL
                }
            }
            oy = end;
        }
    }
}

/* ---------------------------------------------------------------- depthwise 3×3 */

/// `sx_dw3x3_plane` on 8-float vectors (the buffer is padded to whole 16-float vectors, so every
/// load is in bounds; the last vector of a row is stored through a tile).
AVX2_TARGET
void sxk_dw3x3_plane_avx2(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, const float *w, float bias,
                          float *out, int out_h, int out_w, int act, float lo, float hi) {
    __m256 wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm256_set1_ps(w[t]);
    const __m256 vb = _mm256_set1_ps(bias), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const int o0 = off[0], o1 = off[1], o2 = off[2];
    for (int oy = 0; oy < out_h; oy++) {
        const float *r0 = buf + oy * step_y, *r1 = r0 + dy, *r2 = r1 + dy;
        float *o = out + (ptrdiff_t)oy * out_w;
        for (int ox = 0; ox < out_w; ox += 8) {
            __m256 a = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(r0 + ox + o0), vb);
            __m256 b = _mm256_mul_ps(wv[1], _mm256_loadu_ps(r0 + ox + o1));
            __m256 c = _mm256_mul_ps(wv[2], _mm256_loadu_ps(r0 + ox + o2));
            a = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(r1 + ox + o0), a);
            b = _mm256_fmadd_ps(wv[4], _mm256_loadu_ps(r1 + ox + o1), b);
            c = _mm256_fmadd_ps(wv[5], _mm256_loadu_ps(r1 + ox + o2), c);
            a = _mm256_fmadd_ps(wv[6], _mm256_loadu_ps(r2 + ox + o0), a);
            b = _mm256_fmadd_ps(wv[7], _mm256_loadu_ps(r2 + ox + o1), b);
            c = _mm256_fmadd_ps(wv[8], _mm256_loadu_ps(r2 + ox + o2), c);
            a = act8(_mm256_add_ps(a, _mm256_add_ps(b, c)), act, vlo, vhi);
            int n = out_w - ox;
            if (n >= 8) _mm256_storeu_ps(o + ox, a);
            else {
                float t[8];
                _mm256_storeu_ps(t, a);
                for (int j = 0; j < n; j++) o[ox + j] = t[j];
            }
        }
    }
}


#endif
