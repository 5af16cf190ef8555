// General single-threaded SGEMM (`sx_sgemm`) over SelfXit's packed micro-kernels, so that the
// library needs no BLAS: OpenBLAS's thread count, core selection and environment belong to the
// host process, and the engine must leave them as it found them.
//
// Blocking (Goto style): columns in blocks of NC, K in blocks of KC, rows in blocks of MC, each
// configuration's own (`sgemm_mc/kc/nc`). Each (K, N) block of op(B) is packed once into
// 16-column panels (the layout `sx_gemm_compute` reads), each (M, K) block of op(A) (scaled by
// alpha) into MR-row panels. Without a block product of its own (`sgemm_block`) a configuration's
// `sx_gemm_compute` then keeps an A panel in L1 over a run of B panels held in L2 (the 16×16
// AVX-512 tile); with one (AVX2's 6×16) the B block is packed a few panels at a time, each
// multiplied by the first A block while still in cache, and a B panel stays in L1 while the A
// panels stream past it. A few columns (`sgemm_skinny`) read A in place and pack only B. The
// first K block writes C (beta 0) or adds to it (beta 1); later K blocks add to it. Scratch is one
// buffer per thread, grown to what its products need (bounded; freed when the thread exits), or a
// small stack buffer if that cannot be allocated.
#include "selfxit_gemm.h"
#include "avx512_helpers.h"
#include "avx2_helpers.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define SX_X86 1
#include <immintrin.h>
#define AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma,avx2,avx")))
#define AVX2_TARGET __attribute__((target("avx2,fma,avx")))
#endif

#define NR SX_GEMM_NR
/// Default blocks (a configuration's sgemm_mc/kc/nc override them, see configs/kernel_config.c):
/// rows per A block, a multiple of every ISA's MR (16, 6, 4); 240×256 floats of A (240 KB) stay
/// in L2 beside the 256 KB run of B panels `sx_gemm_compute` sweeps them over.
#define MC 240
/// K per block: a 16-row A panel of 256 steps is 16 KB, one B panel as much (L1 holds both).
#define KC 256
/// Columns per packed B block (512 KB); A is re-packed once per block.
#define NC 512
/// The stack fallback's blocks (10 KB) when the thread's scratch cannot be allocated.
#define MC_SMALL 48
#define KC_SMALL 32
#define NC_SMALL 32
/// The most scratch one thread keeps (floats): the AVX2 blocks (264×288 + 288×2048, 2.6 MB) and
/// the few-column product's packed B (k × 32) up to k = 16384.
#define SCRATCH_MAX_FLOATS ((size_t)704 * 1024)
/// The A gather of a transposed few-rows product (m·k floats) takes at most this much.
#define SCRATCH_FEW_FLOATS ((size_t)MC * KC + (size_t)KC * NC)
/// Floats of the header (the capacity) before the scratch proper: one cache line.
#define SCRATCH_HEADER 16

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_make_key(void) {
    // `free` (libc's) as the destructor: still valid if libselfxit is unloaded before a thread exits.
    scratch_key_ok = pthread_key_create(&scratch_key, free) == 0;
}

/// This thread's scratch, at least `floats` (≤ SCRATCH_MAX_FLOATS) long and 64-byte aligned,
/// grown on demand (a thread that only runs small products keeps a small one) and kept until the
/// thread exits; NULL when that fails (the caller then blocks smaller on the stack).
static float *thread_scratch(size_t floats) {
    if (floats > SCRATCH_MAX_FLOATS) return NULL;
    pthread_once(&scratch_once, scratch_make_key);
    if (!scratch_key_ok) return NULL;
    float *p = pthread_getspecific(scratch_key);
    if (p && *(size_t *)p >= floats) return p + SCRATCH_HEADER;
    // Grown to at least the old fixed size, so that products of mixed sizes do not reallocate often.
    size_t cap = floats < SCRATCH_FEW_FLOATS ? SCRATCH_FEW_FLOATS : floats;
    cap = (cap + 15) / 16 * 16;
    float *q = aligned_alloc(64, (cap + SCRATCH_HEADER) * sizeof(float));
    if (!q) return NULL;
    if (pthread_setspecific(scratch_key, q) != 0) {
        free(q);
        return NULL;
    }
    free(p);
    *(size_t *)q = cap;
    return q + SCRATCH_HEADER;
}

#if SX_X86
/// One full 6-row panel of a row-major A (the AVX2 configuration's MR), 8 K steps at a time: 6
/// row loads, an 8×8 transpose in registers (rows 6 and 7 zero), and each K step's 6 floats
/// stored as one 8-float store that the next step's overwrites by 2 (the last steps through a
/// tile). The scalar loop wrote one float at a time, 24 bytes apart: ~8 % of a 512³ product.
/// `next` (`next_rows` ≤ 6 rows, `lda` apart) is the next panel's start, fetched ahead.
AVX2_TARGET
static int pack_a6_avx2(const float *a, ptrdiff_t lda, int kc, float alpha, float *d, const float *next, int next_rows) {
    const __m256 va = _mm256_set1_ps(alpha), z = _mm256_setzero_ps();
    int p = 0;
    for (; p + 8 <= kc; p += 8) {
        // The next panel's rows fetched a line per row every 16 steps: each row's run is only kc
        // floats (288: 18 lines), too short for the stream prefetchers to pick up before it ends
        // (512×196×2304, A from L3: 0.997 → 1.007 of OpenBLAS Haswell, BENCHMARKS §7.18).
        if ((p & 15) == 0)
            for (int r = 0; r < next_rows; r++) _mm_prefetch((const char *)(next + r * lda + p), _MM_HINT_T0);
        __m256 r0 = _mm256_mul_ps(va, _mm256_loadu_ps(a + p)), r1 = _mm256_mul_ps(va, _mm256_loadu_ps(a + lda + p));
        __m256 r2 = _mm256_mul_ps(va, _mm256_loadu_ps(a + 2 * lda + p)), r3 = _mm256_mul_ps(va, _mm256_loadu_ps(a + 3 * lda + p));
        __m256 r4 = _mm256_mul_ps(va, _mm256_loadu_ps(a + 4 * lda + p)), r5 = _mm256_mul_ps(va, _mm256_loadu_ps(a + 5 * lda + p));
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 u4 = _mm256_shuffle_ps(t4, z, 0x44), u5 = _mm256_shuffle_ps(t4, z, 0xEE);
        __m256 u6 = _mm256_shuffle_ps(t5, z, 0x44), u7 = _mm256_shuffle_ps(t5, z, 0xEE);
        // Column j (K step p + j): rows 0–3 from u*, rows 4–5 from the matching lanes of u4..u7.
        __m256 c[8];
        c[0] = _mm256_permute2f128_ps(u0, u4, 0x20); c[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
        c[2] = _mm256_permute2f128_ps(u2, u6, 0x20); c[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
        c[4] = _mm256_permute2f128_ps(u0, u4, 0x31); c[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
        c[6] = _mm256_permute2f128_ps(u2, u6, 0x31); c[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
        float *dp = d + (size_t)p * 6;
        for (int j = 0; j < 7; j++) _mm256_storeu_ps(dp + 6 * j, c[j]);
        float tail[8];
        _mm256_storeu_ps(tail, c[7]);
        memcpy(dp + 42, tail, 6 * sizeof(float));
    }
    return p;
}

/// A 6-row panel of a transposed A (op(A)'s column p is `rows` ≤ 6 consecutive floats at
/// `a + p·lda`): one masked 6-lane load a K step (rows past `rows` read as zero) stored as 8
/// floats that the next step's store overwrites by 2; the last step's store is masked.
AVX2_TARGET
static void pack_a6_trans_avx2(const float *a, ptrdiff_t lda, int kc, int rows, float alpha, float *d) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mrows = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows), lane);
    const __m256i m6 = _mm256_cmpgt_epi32(_mm256_set1_epi32(6), lane);
    const __m256 va = _mm256_set1_ps(alpha);
    for (int p = 0; p < kc; p++) {
        __m256 v = _mm256_mul_ps(va, _mm256_maskload_ps(a + (ptrdiff_t)p * lda, mrows));
        if (p + 1 < kc) _mm256_storeu_ps(d + (size_t)p * 6, v);
        else _mm256_maskstore_ps(d + (size_t)p * 6, m6, v);
    }
}
#endif

/// Packs rows `i0..<i0+mc`, K `p0..<p0+kc` of op(A) × alpha into MR-row panels (k-major, rows
/// past `mc` zero). op(A)(i, p) is `a[i·lda + p]`, or `a[p·lda + i]` when transposed.
static void pack_a(int mr, int trans, const float *a, ptrdiff_t lda, int i0, int mc, int p0, int kc,
                   float alpha, float *dst) {
    for (int ip = 0; ip < mc; ip += mr) {
        float *d = dst + (size_t)ip * kc;
        int rows = mc - ip < mr ? mc - ip : mr;
#if SX_X86
        if (!trans && mr == 6 && rows == 6 && sx_gemm_isa_supported(SX_GEMM_ISA_AVX2)) {
            const float *s = a + (ptrdiff_t)(i0 + ip) * lda + p0;
            int next_rows = mc - ip - mr;
            next_rows = next_rows < 0 ? 0 : next_rows > mr ? mr : next_rows;
            for (int p = pack_a6_avx2(s, lda, kc, alpha, d, next_rows ? s + (ptrdiff_t)mr * lda : s, next_rows); p < kc; p++)
                for (int r = 0; r < 6; r++) d[(size_t)p * 6 + r] = alpha * s[(ptrdiff_t)r * lda + p];
            continue;
        }
        if (trans && mr == 6 && sx_gemm_isa_supported(SX_GEMM_ISA_AVX2)) {
            pack_a6_trans_avx2(a + (ptrdiff_t)p0 * lda + i0 + ip, lda, kc, rows, alpha, d);
            continue;
        }
#endif
        if (trans) {
            // Row p of the stored matrix holds op(A)'s column: `rows` consecutive floats a step.
            for (int p = 0; p < kc; p++) {
                const float *s = a + (ptrdiff_t)(p0 + p) * lda + i0 + ip;
                float *dp = d + (size_t)p * mr;
                int r = 0;
                for (; r < rows; r++) dp[r] = alpha * s[r];
                for (; r < mr; r++) dp[r] = 0.0f;
            }
        } else {
            // Each row read contiguously, written `mr` apart.
            for (int r = 0; r < rows; r++) {
                const float *s = a + (ptrdiff_t)(i0 + ip + r) * lda + p0;
                for (int p = 0; p < kc; p++) d[(size_t)p * mr + r] = alpha * s[p];
            }
            for (int r = rows; r < mr; r++)
                for (int p = 0; p < kc; p++) d[(size_t)p * mr + r] = 0.0f;
        }
    }
}

#if SX_X86
/// `pack_b` of a transposed B with AVX-512: per panel, 16 stored rows (op(B)'s columns) × 16 K
/// steps loaded as vectors and transposed in registers (the scalar loop wrote one float at a time;
/// the conv heads' weight gradients spent a fifth of their time there).
AVX512_TARGET
static void pack_b_trans_avx512(const float *b, ptrdiff_t ldb, int p0, int kc, int j0, int nc, float *dst) {
    for (int jp = 0; jp < nc; jp += NR) {
        float *d = dst + (size_t)jp * kc;
        const int cols = nc - jp < NR ? nc - jp : NR;
        const float *src[NR];
        for (int j = 0; j < NR; j++) src[j] = b + (ptrdiff_t)(j0 + jp + (j < cols ? j : 0)) * ldb + p0;
        for (int p = 0; p < kc; p += 16) {
            const int steps = kc - p < 16 ? kc - p : 16;
            const __mmask16 mask = steps == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << steps) - 1u);
            __m512 v[16];
#pragma clang loop unroll(full)
            for (int j = 0; j < 16; j++) v[j] = j < cols ? _mm512_maskz_loadu_ps(mask, src[j] + p) : _mm512_setzero_ps();
            sx_transpose16(v);  // v[q] lane j = op(B)(p + q, jp + j)
            for (int q = 0; q < steps; q++) _mm512_storeu_ps(d + (size_t)(p + q) * NR, v[q]);
        }
    }
}

/// `pack_b` of a plain B on 8-float vectors (AVX2 and AVX-512 alike): row by row, each row's 16
/// columns of a panel two loads and two stores, the last panel's columns masked (zeros past `nc`).
AVX2_TARGET
static void pack_b_avx2(const float *b, ptrdiff_t ldb, int p0, int kc, int j0, int nc, float *dst) {
    const int full = nc / NR * NR;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - full), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - full - 8), lane);
    const size_t step = (size_t)NR * kc;  // floats from one panel to the next
    for (int p = 0; p < kc; p++) {
        const float *s = b + (ptrdiff_t)(p0 + p) * ldb + j0;
        float *dp = dst + (size_t)p * NR;
        int jp = 0;
        for (; jp + 2 * NR <= full; jp += 2 * NR, dp += 2 * step) {
            // B's rows are ldb apart: the lines 8 rows down are fetched ahead (from L3 in the
            // fused packing, a pattern the stream prefetchers pick up late).
            _mm_prefetch((const char *)(s + 8 * ldb + jp), _MM_HINT_T0);
            _mm_prefetch((const char *)(s + 8 * ldb + jp + 16), _MM_HINT_T0);
            __m256 v0 = _mm256_loadu_ps(s + jp), v1 = _mm256_loadu_ps(s + jp + 8);
            __m256 v2 = _mm256_loadu_ps(s + jp + 16), v3 = _mm256_loadu_ps(s + jp + 24);
            _mm256_storeu_ps(dp, v0);
            _mm256_storeu_ps(dp + 8, v1);
            _mm256_storeu_ps(dp + step, v2);
            _mm256_storeu_ps(dp + step + 8, v3);
        }
        for (; jp < full; jp += NR, dp += step) {
            _mm256_storeu_ps(dp, _mm256_loadu_ps(s + jp));
            _mm256_storeu_ps(dp + 8, _mm256_loadu_ps(s + jp + 8));
        }
        if (full < nc) {
            _mm256_storeu_ps(dp, _mm256_maskload_ps(s + full, m0));
            _mm256_storeu_ps(dp + 8, _mm256_maskload_ps(s + full + 8, m1));
        }
    }
}

/// `R` K steps (rows of B from `s`) of every panel: `full` columns in whole panels, the last
/// `nc − full` through the lane masks `m0`/`m1`; panels `step` floats apart in `dp`.
__attribute__((always_inline))
AVX2_TARGET
static inline void pack_b_steps_avx2(const int R, const float *s, ptrdiff_t ldb, int full, int nc, __m256i m0, __m256i m1,
                                     float *dp, size_t step) {
    for (int jp = 0; jp < full; jp += NR, dp += step) {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m256 v0 = _mm256_loadu_ps(s + r * ldb + jp), v1 = _mm256_loadu_ps(s + r * ldb + jp + 8);
            _mm256_storeu_ps(dp + NR * r, v0);
            _mm256_storeu_ps(dp + NR * r + 8, v1);
        }
    }
    if (full < nc)
        for (int r = 0; r < R; r++) {
            _mm256_storeu_ps(dp + NR * r, _mm256_maskload_ps(s + r * ldb + full, m0));
            _mm256_storeu_ps(dp + NR * r + 8, _mm256_maskload_ps(s + r * ldb + full + 8, m1));
        }
}

/// `pack_b` of a plain B for the AVX2 configuration: eight K steps (rows of B) at a time, walking
/// the rows panel by panel, each panel's eight steps one 512-byte run of stores. Eight sequential
/// read streams that the hardware prefetchers follow over a wide group (sx_sgemm packs 512
/// columns at a time): B usually comes from L3 or memory once, and the one-row-at-a-time loop
/// over 64-column groups (4 lines per row, then the next row 12 KB on) read it at ~13 GB/s where
/// this reads ~17–18 GB/s (4 rows: ~16; Zen 4, a standalone copy of a 576×3136 B out of memory).
AVX2_TARGET
static void pack_b_rows8_avx2(const float *b, ptrdiff_t ldb, int p0, int kc, int j0, int nc, float *dst) {
    const int full = nc / NR * NR;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - full), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - full - 8), lane);
    const size_t step = (size_t)NR * kc;  // floats from one panel to the next
    int p = 0;
    for (; p + 8 <= kc; p += 8)
        pack_b_steps_avx2(8, b + (ptrdiff_t)(p0 + p) * ldb + j0, ldb, full, nc, m0, m1, dst + (size_t)p * NR, step);
    for (; p < kc; p++)  // the last kc % 8 steps, one row each
        pack_b_steps_avx2(1, b + (ptrdiff_t)(p0 + p) * ldb + j0, ldb, full, nc, m0, m1, dst + (size_t)p * NR, step);
}

/// `pack_b` of a transposed B on AVX2: per panel and 8 K steps, two 8×8 transposes in registers
/// (stored rows = op(B)'s columns), K tail masked; the scalar loop wrote one float 16 apart.
AVX2_TARGET
static void pack_b_trans_avx2(const float *b, ptrdiff_t ldb, int p0, int kc, int j0, int nc, float *dst) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int jp = 0; jp < nc; jp += NR) {
        float *d = dst + (size_t)jp * kc;
        const int cols = nc - jp < NR ? nc - jp : NR;
        for (int p = 0; p < kc; p += 8) {
            const int steps = kc - p < 8 ? kc - p : 8;
            const __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32(steps), lane);
            for (int h = 0; h < 2; h++) {
                __m256 v[8];
#pragma clang loop unroll(full)
                for (int i = 0; i < 8; i++) {
                    const int j = h * 8 + i;
                    const float *src = b + (ptrdiff_t)(j0 + jp + j) * ldb + p0 + p;
                    v[i] = j >= cols ? _mm256_setzero_ps()
                         : steps == 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, mk);
                }
                sx_transpose8(v);  // v[q] lane i = op(B)(p + q, jp + 8h + i)
                for (int q = 0; q < steps; q++) _mm256_storeu_ps(d + (size_t)(p + q) * NR + h * 8, v[q]);
            }
        }
    }
}
#endif

/// Packs K `p0..<p0+kc`, columns `j0..<j0+nc` of op(B) into 16-column panels (k-major, columns
/// past `nc` zero). op(B)(p, j) is `b[p·ldb + j]`, or `b[j·ldb + p]` when transposed (on AVX2
/// and AVX-512 — `isa`, so that each ISA's test covers its own packing — in vectors).
static void pack_b(int isa, int trans, const float *b, ptrdiff_t ldb, int p0, int kc, int j0, int nc, float *dst) {
#if SX_X86
    if (trans && isa == SX_GEMM_ISA_AVX512) {
        pack_b_trans_avx512(b, ldb, p0, kc, j0, nc, dst);
        return;
    }
    if (trans && isa == SX_GEMM_ISA_AVX2) {
        pack_b_trans_avx2(b, ldb, p0, kc, j0, nc, dst);
        return;
    }
    if (!trans && isa == SX_GEMM_ISA_AVX2) {
        pack_b_rows8_avx2(b, ldb, p0, kc, j0, nc, dst);
        return;
    }
    if (!trans && isa == SX_GEMM_ISA_AVX512) {
        pack_b_avx2(b, ldb, p0, kc, j0, nc, dst);
        return;
    }
#else
    (void)isa;
#endif
    if (!trans) {
        // Row by row: each row of the block is read once, contiguously (walking a panel down its
        // 16 columns instead would stride by ldb, a page apart for wide B, past the prefetchers).
        const int full = nc / NR * NR;
        for (int p = 0; p < kc; p++) {
            const float *s = b + (ptrdiff_t)(p0 + p) * ldb + j0;
            for (int jp = 0; jp < full; jp += NR) memcpy(dst + (size_t)jp * kc + (size_t)p * NR, s + jp, NR * sizeof(float));
            if (full < nc) {
                float *dp = dst + (size_t)full * kc + (size_t)p * NR;
                int j = 0;
                for (; j < nc - full; j++) dp[j] = s[full + j];
                for (; j < NR; j++) dp[j] = 0.0f;
            }
        }
        return;
    }
    // Transposed: each stored row is one of op(B)'s columns, read along K and written 16 apart
    // (the panel, 16·kc floats, stays in L1).
    for (int jp = 0; jp < nc; jp += NR) {
        float *d = dst + (size_t)jp * kc;
        int cols = nc - jp < NR ? nc - jp : NR;
        for (int j = 0; j < cols; j++) {
            const float *s = b + (ptrdiff_t)(j0 + jp + j) * ldb + p0;
            for (int p = 0; p < kc; p++) d[(size_t)p * NR + j] = s[p];
        }
        for (int j = cols; j < NR; j++)
            for (int p = 0; p < kc; p++) d[(size_t)p * NR + j] = 0.0f;
    }
}

/// C = beta·C for beta ∉ {0, 1} (then accumulated onto), or C = 0 when nothing is multiplied.
static void scale_c(int m, int n, float beta, float *c, ptrdiff_t ldc) {
    for (int i = 0; i < m; i++) {
        float *row = c + (ptrdiff_t)i * ldc;
        if (beta == 0.0f) memset(row, 0, (size_t)n * sizeof(float));
        else for (int j = 0; j < n; j++) row[j] *= beta;
    }
}

/* ---------------------------------------------------------------- a few rows, unpacked
 *
 * An exit head serving the samples that reached it multiplies 1 to 4 rows by its weights: a
 * packed product would copy all of B (and pad A to a 16-row panel) for as little work, 10–15×
 * OpenBLAS's time. These read A and B in place instead: x·Bᵀ as dot products (each row of B read
 * once, against every row of A), x·B as row updates (each row of B added into the C rows).
 */

/// Rows a pass of the unpacked kernels takes (A rows held against each row of B).
#define FEW_ROWS 4
/// x·Bᵀ takes the unpacked path (in passes of FEW_ROWS rows, each reading B once) for up to
/// FEW_ROWS_NT rows, or any rows when B fits in L2 (FEW_ROWS_NT_B floats) and passes re-read it
/// from there. On Zen 4: 8 rows 1024→128, 0.02 ms (0.06 packed, OpenBLAS 0.10); a head's last
/// layer in training, 64 rows 1024→10, 0.015 ms (0.043 packed, OpenBLAS 0.014); 2304 columns of
/// 1024 (9 MB) re-read from memory per pass are slower than packing (12.5 ms against 8.6).
#define FEW_ROWS_NT 16
#define FEW_ROWS_NT_B (256 * 1024)

/// C[i][j] = alpha·Σ_p a[i][p]·b[j][p] (+ C[i][j] when `beta1`), rows `i < m` (≤ FEW_ROWS).
static void few_rows_nt_scalar(int m, int n, int k, float alpha, const float *a, ptrdiff_t lda, const float *b,
                               ptrdiff_t ldb, int beta1, float *c, ptrdiff_t ldc) {
    for (int j = 0; j < n; j++) {
        const float *bj = b + (ptrdiff_t)j * ldb;
        for (int i = 0; i < m; i++) {
            const float *ai = a + (ptrdiff_t)i * lda;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four chains: an FMA's latency, not one long chain
            int p = 0;
            for (; p + 4 <= k; p += 4) {
                s0 += ai[p] * bj[p];
                s1 += ai[p + 1] * bj[p + 1];
                s2 += ai[p + 2] * bj[p + 2];
                s3 += ai[p + 3] * bj[p + 3];
            }
            for (; p < k; p++) s0 += ai[p] * bj[p];
            float v = alpha * ((s0 + s1) + (s2 + s3));
            float *cij = c + (ptrdiff_t)i * ldc + j;
            *cij = beta1 ? *cij + v : v;
        }
    }
}

/// C rows `i < m` (≤ FEW_ROWS) = alpha·A·B (+ C when `beta1`), B row-major: each row of B is
/// added, scaled, into every C row (the loop over columns vectorises for the target ISA).
#define FEW_ROWS_NN_BODY                                                                                   \
    for (int i = 0; i < m; i++)                                                                            \
        if (!beta1) memset(c + (ptrdiff_t)i * ldc, 0, (size_t)n * sizeof(float));                          \
    for (int p = 0; p < k; p++) {                                                                          \
        const float *restrict bp = b + (ptrdiff_t)p * ldb;                                                 \
        for (int i = 0; i < m; i++) {                                                                      \
            float *restrict ci = c + (ptrdiff_t)i * ldc;                                                   \
            const float s = alpha * a[(ptrdiff_t)i * lda + p];                                             \
            for (int j = 0; j < n; j++) ci[j] += s * bp[j];                                                \
        }                                                                                                  \
    }

static void few_rows_nn_scalar(int m, int n, int k, float alpha, const float *a, ptrdiff_t lda, const float *b,
                               ptrdiff_t ldb, int beta1, float *c, ptrdiff_t ldc) {
    FEW_ROWS_NN_BODY
}

#if SX_X86
AVX2_TARGET
static void few_rows_nn_avx2(int m, int n, int k, float alpha, const float *a, ptrdiff_t lda, const float *b,
                             ptrdiff_t ldb, int beta1, float *c, ptrdiff_t ldc) {
    FEW_ROWS_NN_BODY
}

AVX512_TARGET
static void few_rows_nn_avx512(int m, int n, int k, float alpha, const float *a, ptrdiff_t lda, const float *b,
                               ptrdiff_t ldb, int beta1, float *c, ptrdiff_t ldc) {
    FEW_ROWS_NN_BODY
}

AVX2_TARGET
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// `few_rows_nt_scalar` for `R` rows, 2 rows of B at a time (2R chains of 8 lanes).
__attribute__((always_inline))
AVX2_TARGET
static inline void few_rows_nt_avx2_r(const int R, int n, int k, float alpha, const float *a, ptrdiff_t lda,
                                      const float *b, ptrdiff_t ldb, int beta1, float *c, ptrdiff_t ldc) {
    int j = 0;
    for (; j < n; j += 2) {
        const int two = j + 1 < n;
        const float *b0 = b + (ptrdiff_t)j * ldb, *b1 = two ? b0 + ldb : b0;
        __m256 acc0[FEW_ROWS], acc1[FEW_ROWS];
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) { acc0[i] = _mm256_setzero_ps(); acc1[i] = _mm256_setzero_ps(); }
        int p = 0;
        for (; p + 8 <= k; p += 8) {
            __m256 v0 = _mm256_loadu_ps(b0 + p), v1 = _mm256_loadu_ps(b1 + p);
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) {
                __m256 av = _mm256_loadu_ps(a + (ptrdiff_t)i * lda + p);
                acc0[i] = _mm256_fmadd_ps(av, v0, acc0[i]);
                acc1[i] = _mm256_fmadd_ps(av, v1, acc1[i]);
            }
        }
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) {
            const float *ai = a + (ptrdiff_t)i * lda;
            float s0 = hsum256(acc0[i]), s1 = hsum256(acc1[i]);
            for (int q = p; q < k; q++) { s0 += ai[q] * b0[q]; s1 += ai[q] * b1[q]; }
            float *ci = c + (ptrdiff_t)i * ldc + j;
            ci[0] = beta1 ? ci[0] + alpha * s0 : alpha * s0;
            if (two) ci[1] = beta1 ? ci[1] + alpha * s1 : alpha * s1;
        }
    }
}

AVX2_TARGET
static void few_rows_nt_avx2(int m, int n, int k, float alpha, const float *a, ptrdiff_t lda, const float *b,
                             ptrdiff_t ldb, int beta1, float *c, ptrdiff_t ldc) {
    switch (m) {
    case 1: few_rows_nt_avx2_r(1, n, k, alpha, a, lda, b, ldb, beta1, c, ldc); break;
    case 2: few_rows_nt_avx2_r(2, n, k, alpha, a, lda, b, ldb, beta1, c, ldc); break;
    case 3: few_rows_nt_avx2_r(3, n, k, alpha, a, lda, b, ldb, beta1, c, ldc); break;
    default: few_rows_nt_avx2_r(4, n, k, alpha, a, lda, b, ldb, beta1, c, ldc); break;
    }
}

/// `few_rows_nt_scalar` for `R` rows, 4 rows of B at a time (4R chains of 16 lanes), K tail masked.
__attribute__((always_inline))
AVX512_TARGET
static inline void few_rows_nt_avx512_r(const int R, int n, int k, float alpha, const float *a, ptrdiff_t lda,
                                        const float *b, ptrdiff_t ldb, int beta1, float *c, ptrdiff_t ldc) {
    enum { J = 4 };
    const __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1u);
    for (int j = 0; j < n; j += J) {
        const int jn = n - j < J ? n - j : J;
        const float *bj[J];
#pragma clang loop unroll(full)
        for (int q = 0; q < J; q++) bj[q] = b + (ptrdiff_t)(j + (q < jn ? q : 0)) * ldb;
        __m512 acc[FEW_ROWS][J];
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++)
#pragma clang loop unroll(full)
            for (int q = 0; q < J; q++) acc[i][q] = _mm512_setzero_ps();
        int p = 0;
        for (; p + 16 <= k; p += 16) {
            __m512 bv[J];
#pragma clang loop unroll(full)
            for (int q = 0; q < J; q++) bv[q] = _mm512_loadu_ps(bj[q] + p);
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) {
                __m512 av = _mm512_loadu_ps(a + (ptrdiff_t)i * lda + p);
#pragma clang loop unroll(full)
                for (int q = 0; q < J; q++) acc[i][q] = _mm512_fmadd_ps(av, bv[q], acc[i][q]);
            }
        }
        if (p < k) {
            __m512 bv[J];
#pragma clang loop unroll(full)
            for (int q = 0; q < J; q++) bv[q] = _mm512_maskz_loadu_ps(tail, bj[q] + p);
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) {
                __m512 av = _mm512_maskz_loadu_ps(tail, a + (ptrdiff_t)i * lda + p);
#pragma clang loop unroll(full)
                for (int q = 0; q < J; q++) acc[i][q] = _mm512_fmadd_ps(av, bv[q], acc[i][q]);
            }
        }
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) {
            float *ci = c + (ptrdiff_t)i * ldc + j;
            for (int q = 0; q < jn; q++) {
                float v = alpha * _mm512_reduce_add_ps(acc[i][q]);
                ci[q] = beta1 ? ci[q] + v : v;
            }
        }
    }
}

AVX512_TARGET
static void few_rows_nt_avx512(int m, int n, int k, float alpha, const float *a, ptrdiff_t lda, const float *b,
                               ptrdiff_t ldb, int beta1, float *c, ptrdiff_t ldc) {
    switch (m) {
    case 1: few_rows_nt_avx512_r(1, n, k, alpha, a, lda, b, ldb, beta1, c, ldc); break;
    case 2: few_rows_nt_avx512_r(2, n, k, alpha, a, lda, b, ldb, beta1, c, ldc); break;
    case 3: few_rows_nt_avx512_r(3, n, k, alpha, a, lda, b, ldb, beta1, c, ldc); break;
    default: few_rows_nt_avx512_r(4, n, k, alpha, a, lda, b, ldb, beta1, c, ldc); break;
    }
}
#endif

/// The few-rows product on `isa`'s code: op(A) row-major in `a` (`lda`), beta 0 or 1; x·Bᵀ in
/// passes of FEW_ROWS rows.
static void few_rows(int isa, int trans_b, int m, int n, int k, float alpha, const float *a, ptrdiff_t lda,
                     const float *b, ptrdiff_t ldb, int beta1, float *c, ptrdiff_t ldc) {
    if (trans_b && m > FEW_ROWS) {
        for (int i0 = 0; i0 < m; i0 += FEW_ROWS)
            few_rows(isa, 1, m - i0 < FEW_ROWS ? m - i0 : FEW_ROWS, n, k, alpha, a + (ptrdiff_t)i0 * lda, lda, b, ldb,
                     beta1, c + (ptrdiff_t)i0 * ldc, ldc);
        return;
    }
#if SX_X86
    if (isa == SX_GEMM_ISA_AVX512) {
        if (trans_b) few_rows_nt_avx512(m, n, k, alpha, a, lda, b, ldb, beta1, c, ldc);
        else few_rows_nn_avx512(m, n, k, alpha, a, lda, b, ldb, beta1, c, ldc);
        return;
    }
    if (isa == SX_GEMM_ISA_AVX2) {
        if (trans_b) few_rows_nt_avx2(m, n, k, alpha, a, lda, b, ldb, beta1, c, ldc);
        else few_rows_nn_avx2(m, n, k, alpha, a, lda, b, ldb, beta1, c, ldc);
        return;
    }
#endif
    (void)isa;
    if (trans_b) few_rows_nt_scalar(m, n, k, alpha, a, lda, b, ldb, beta1, c, ldc);
    else few_rows_nn_scalar(m, n, k, alpha, a, lda, b, ldb, beta1, c, ldc);
}

/* ---------------------------------------------------------------- sgemm */

static void blocked(const sx_kernel_config *cfg, int isa, int trans_a, int trans_b, int m, int n, int k, float alpha,
                    const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc,
                    float *pa, float *pb, int mcb, int kcb, int ncb);
static void blocked_on_stack(const sx_kernel_config *cfg, int isa, int trans_a, int trans_b, int m, int n, int k,
                             float alpha, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta,
                             float *c, ptrdiff_t ldc);

static inline size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

void sx_sgemm(int isa, int trans_a, int trans_b, int m, int n, int k, float alpha,
              const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) {
        // Nothing to add: C = beta·C without reading A or B (nor C when beta is 0).
        if (beta != 1.0f) scale_c(m, n, beta, c, ldc);
        return;
    }
    // An ISA the machine cannot run would pack for a micro-kernel that is not used.
    while (isa > SX_GEMM_ISA_SCALAR && !sx_gemm_isa_supported(isa)) isa--;
    if (beta != 0.0f && beta != 1.0f) {
        scale_c(m, n, beta, c, ldc);
        beta = 1.0f;
    }
    // A few rows of a plain product: read B in place, once per 8 rows (packing all of B for them
    // costs more: ResNet-50's 2048×1000 classifier, 16 rows, 0.65 ms against 1.0 packed on Zen 4;
    // at 24 rows packing wins).
    const sx_kernel_config *cfg = sx_kernel_config_for(isa);
    if (!cfg) cfg = sx_kernel_config_for(SX_GEMM_ISA_SCALAR);
    if (cfg->small_rows && !trans_a && !trans_b && m <= 2 * cfg->small_rows_max && beta == 0.0f) {
        const int step = cfg->small_rows_max;
        for (int i0 = 0; i0 < m; i0 += step)
            cfg->small_rows(m - i0 < step ? m - i0 : step, n, k, alpha, a + (ptrdiff_t)i0 * lda, lda, b, ldb,
                            c + (ptrdiff_t)i0 * ldc, ldc);
        return;
    }
    const int few = trans_b ? m <= FEW_ROWS_NT || (size_t)n * k <= FEW_ROWS_NT_B : m <= FEW_ROWS;
    if (few && !trans_a) {
        few_rows(isa, trans_b, m, n, k, alpha, a, lda, b, ldb, beta == 1.0f, c, ldc);
        return;
    }
    if (few && (size_t)m * k <= SCRATCH_FEW_FLOATS) {
        float *scratch = thread_scratch((size_t)m * k);
        if (scratch) {
            // op(A)'s rows are columns of `a`: gathered into the scratch first (m·k floats).
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++) scratch[(size_t)i * k + p] = a[(ptrdiff_t)p * lda + i];
            few_rows(isa, trans_b, m, n, k, alpha, scratch, k, b, ldb, beta == 1.0f, c, ldc);
            return;
        }
    }
    // Few columns: A read in place, only B (k × ≤ 2 panels, alpha applied) packed (a classifier's
    // 1000×2048 weights by 32 samples: packing A moved as many bytes as the product reads).
    if (cfg->sgemm_skinny && !trans_a && n <= cfg->sgemm_skinny_max_n) {
        const size_t pbn = sx_gemm_packed_b_floats(n, k);
        float *pb = thread_scratch(pbn);
        if (pb) {
            pack_b(isa, trans_b, b, ldb, 0, k, 0, n, pb);
            if (alpha != 1.0f)
                for (size_t i = 0; i < pbn; i++) pb[i] *= alpha;
            cfg->sgemm_skinny(m, n, k, a, lda, pb, c, ldc, beta == 1.0f);
            return;
        }
    }
    const int mcb = cfg->sgemm_mc > 0 ? cfg->sgemm_mc : MC, kcb = cfg->sgemm_kc > 0 ? cfg->sgemm_kc : KC;
    const int ncb = cfg->sgemm_nc > 0 ? cfg->sgemm_nc : NC;
    // Only as much scratch as this product's blocks use.
    const size_t mcu = round_up((size_t)(m < mcb ? m : mcb), (size_t)cfg->mr), kcu = (size_t)(k < kcb ? k : kcb);
    const size_t ncu = round_up((size_t)(n < ncb ? n : ncb), NR);
    // B's block starts on a cache line (a panel's 16 floats a K step are then one line).
    const size_t pa_floats = round_up(mcu * kcu, 16);
    float *scratch = thread_scratch(pa_floats + kcu * ncu);
    if (scratch)
        blocked(cfg, isa, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scratch,
                scratch + pa_floats, (int)mcu, (int)kcu, (int)ncu);
    else
        blocked_on_stack(cfg, isa, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// Columns of B a configuration with its own block product (`sgemm_block`) packs at a time for
/// the first A block: 32 panels (288×512 floats, 576 KB), multiplied by that A block while they
/// are still in L2 (B is packed in chunks between kernel calls on the first A block, so that
/// block never re-reads B from L3). Not fewer: B comes from L3 or memory, and rows read 512
/// floats at a time stream (8 rows at once, `pack_b_rows8_avx2`) where 64 (4 lines a row, the
/// next row 12 KB on) left every line to a demand miss — with this, the reuse below and KC 288,
/// 64×3136×576 went from 0.94 to 0.99 of OpenBLAS Haswell (sgemm_bench r 7, Zen 4, AVX2 forced,
/// docs/BENCHMARKS.md §7.16); 256 columns measured the same, 1024 1–2 % slower.
#define FUSED_B_COLS 512

/// The blocked product with scratch `pa` (`mcb·kcb` floats) and `pb` (`kcb·ncb`); beta 0 or 1.
static void blocked(const sx_kernel_config *cfg, int isa, int trans_a, int trans_b, int m, int n, int k, float alpha,
                    const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc,
                    float *pa, float *pb, int mcb, int kcb, int ncb) {
    const int mr = cfg->mr;
    // Even K blocks (no short last block wasting a pass); with a block product, a multiple of 8
    // steps (the vector A packing's unit) where that stays within the block.
    const int kblocks = (k + kcb - 1) / kcb;
    int kc0 = (k + kblocks - 1) / kblocks;
    if (cfg->sgemm_block && (int)round_up((size_t)kc0, 8) <= kcb) kc0 = (int)round_up((size_t)kc0, 8);
    // Rows: with a block product, even blocks (256 rows: 2×128, not 168 + 88) in whole panels.
    int mc0 = mcb;
    if (cfg->sgemm_block) {
        const int mblocks = (m + mcb - 1) / mcb;
        mc0 = (int)round_up((size_t)((m + mblocks - 1) / mblocks), (size_t)mr);
        if (mc0 > mcb) mc0 = mcb;
    }
    // One A block in all: packed once, not once per column block.
    const int a_once = mc0 >= m && kc0 >= k;
    int a_ready = 0;
    for (int j0 = 0; j0 < n; j0 += ncb) {
        const int nc = n - j0 < ncb ? n - j0 : ncb;
        const int npanels = (nc + NR - 1) / NR;
        for (int p0 = 0; p0 < k; p0 += kc0) {
            const int kc = k - p0 < kc0 ? k - p0 : kc0;
            if (!cfg->sgemm_block) pack_b(isa, trans_b, b, ldb, p0, kc, j0, nc, pb);
            // The first K block adds to C only when beta is 1; later blocks always add.
            const int accumulate = p0 > 0 || beta == 1.0f;
            for (int i0 = 0; i0 < m; i0 += mc0) {
                const int mc = m - i0 < mc0 ? m - i0 : mc0;
                if (!a_once || !a_ready) pack_a(mr, trans_a, a, lda, i0, mc, p0, kc, alpha, pa);
                a_ready = 1;
                float *cb = c + (ptrdiff_t)i0 * ldc + j0;
                if (cfg->sgemm_block) {
                    if (i0 == 0) {
                        // With one A block in all, a packed group is used once: each is packed
                        // over the same scratch (576 KB, stays in L2), not across the whole block
                        // (2.4 MB, whose stores then missed L2).
                        const int once = mc >= m;
                        for (int g = 0; g < nc; g += FUSED_B_COLS) {
                            const int gc = nc - g < FUSED_B_COLS ? nc - g : FUSED_B_COLS;
                            float *pg = once ? pb : pb + (size_t)g * kc;
                            pack_b(isa, trans_b, b, ldb, p0, kc, j0 + g, gc, pg);
                            cfg->sgemm_block(mc, gc, kc, pa, pg, cb + g, ldc, accumulate);
                        }
                    } else {
                        cfg->sgemm_block(mc, nc, kc, pa, pb, cb, ldc, accumulate);
                    }
                    continue;
                }
                sx_gemm_out out = {
                    .c = cb, .ldc = ldc, .c_sample_stride = 0,
                    .residual = accumulate ? cb : NULL, .ldr = ldc, .r_sample_stride = 0,
                    .bias = NULL, .cols_per_sample = nc, .act = SX_GEMM_ACT_NONE, .lo = 0, .hi = 0,
                };
                sx_gemm_compute(isa, pa, mc, kc, 0, (mc + mr - 1) / mr, pb, nc, 0, npanels, &out);
            }
        }
    }
}

/// `blocked` with small blocks on the stack, apart so that the usual path keeps its frame small
/// (a host thread with a short stack may run a product).
__attribute__((noinline))
static void blocked_on_stack(const sx_kernel_config *cfg, int isa, int trans_a, int trans_b, int m, int n, int k,
                             float alpha, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta,
                             float *c, ptrdiff_t ldc) {
    float pa[MC_SMALL * KC_SMALL], pb[KC_SMALL * NC_SMALL];
    blocked(cfg, isa, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pa, pb, MC_SMALL, KC_SMALL,
            NC_SMALL);
}
