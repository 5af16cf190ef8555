// General single-threaded SGEMM (`sx_sgemm`) over SelfXit's packed micro-kernels, so that the
// library needs no BLAS: OpenBLAS's thread count, core selection and environment belong to the
// host process, and the engine must leave them as it found them.
//
// Blocking (Goto style): columns in blocks of NC, K in blocks of KC, rows in blocks of MC. Each
// (K, N) block of op(B) is packed once into 16-column panels (the layout `sx_gemm_compute`
// reads), each (M, K) block of op(A) (scaled by alpha) into MR-row panels; `sx_gemm_compute`
// then keeps an A panel in L1 over a run of B panels held in L2. The first K block writes C
// (beta 0) or adds to it (beta 1); later K blocks add to it. Scratch is one fixed-size buffer per
// thread (freed when the thread exits), or a small stack buffer if that cannot be allocated.
#include "selfxit_gemm.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NR SX_GEMM_NR
/// Rows per A block: a multiple of every ISA's MR (16, 6, 4); 240×256 floats of A (240 KB) stay
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

#define SCRATCH_FLOATS ((size_t)MC * KC + (size_t)KC * NC)

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_make_key(void) {
    // `free` (libc's) as the destructor: still valid if libselfxit is unloaded before a thread exits.
    scratch_key_ok = pthread_key_create(&scratch_key, free) == 0;
}

/// This thread's scratch (`SCRATCH_FLOATS`, 64-byte aligned), allocated on first use; NULL when
/// that fails (the caller then blocks smaller on the stack).
static float *thread_scratch(void) {
    pthread_once(&scratch_once, scratch_make_key);
    if (!scratch_key_ok) return NULL;
    float *p = pthread_getspecific(scratch_key);
    if (p) return p;
    p = aligned_alloc(64, SCRATCH_FLOATS * sizeof(float));
    if (p && pthread_setspecific(scratch_key, p) != 0) {
        free(p);
        p = NULL;
    }
    return p;
}

/// Packs rows `i0..<i0+mc`, K `p0..<p0+kc` of op(A) × alpha into MR-row panels (k-major, rows
/// past `mc` zero). op(A)(i, p) is `a[i·lda + p]`, or `a[p·lda + i]` when transposed.
static void pack_a(int mr, int trans, const float *a, ptrdiff_t lda, int i0, int mc, int p0, int kc,
                   float alpha, float *dst) {
    for (int ip = 0; ip < mc; ip += mr) {
        float *d = dst + (size_t)ip * kc;
        int rows = mc - ip < mr ? mc - ip : mr;
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

/// Packs K `p0..<p0+kc`, columns `j0..<j0+nc` of op(B) into 16-column panels (k-major, columns
/// past `nc` zero). op(B)(p, j) is `b[p·ldb + j]`, or `b[j·ldb + p]` when transposed.
static void pack_b(int trans, const float *b, ptrdiff_t ldb, int p0, int kc, int j0, int nc, float *dst) {
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

static void blocked(int isa, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, ptrdiff_t lda,
                    const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc, float *pa, float *pb,
                    int mcb, int kcb, int ncb);
static void blocked_on_stack(int isa, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                             ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc);

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
    if (isa == SX_GEMM_ISA_AVX512 && !trans_a && !trans_b && m <= 16 && beta == 0.0f) {
        for (int i0 = 0; i0 < m; i0 += 8)
            sx_gemm_small_rows(m - i0 < 8 ? m - i0 : 8, n, k, alpha, a + (ptrdiff_t)i0 * lda, lda, b, ldb,
                               c + (ptrdiff_t)i0 * ldc, ldc);
        return;
    }
    float *scratch = thread_scratch();
    if (scratch)
        blocked(isa, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scratch,
                scratch + (size_t)MC * KC, MC, KC, NC);
    else
        blocked_on_stack(isa, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// The blocked product with scratch `pa` (`mcb·kcb` floats) and `pb` (`kcb·ncb`); beta 0 or 1.
static void blocked(int isa, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, ptrdiff_t lda,
                    const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc, float *pa, float *pb,
                    int mcb, int kcb, int ncb) {
    const int mr = sx_gemm_mr(isa);
    // Even K blocks (no short last block wasting a pass).
    const int kblocks = (k + kcb - 1) / kcb;
    const int kc0 = (k + kblocks - 1) / kblocks;
    for (int j0 = 0; j0 < n; j0 += ncb) {
        const int nc = n - j0 < ncb ? n - j0 : ncb;
        const int npanels = (nc + NR - 1) / NR;
        for (int p0 = 0; p0 < k; p0 += kc0) {
            const int kc = k - p0 < kc0 ? k - p0 : kc0;
            pack_b(trans_b, b, ldb, p0, kc, j0, nc, pb);
            // The first K block adds to C only when beta is 1; later blocks always add.
            const int accumulate = p0 > 0 || beta == 1.0f;
            for (int i0 = 0; i0 < m; i0 += mcb) {
                const int mc = m - i0 < mcb ? m - i0 : mcb;
                pack_a(mr, trans_a, a, lda, i0, mc, p0, kc, alpha, pa);
                float *cb = c + (ptrdiff_t)i0 * ldc + j0;
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
static void blocked_on_stack(int isa, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                             ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    float pa[MC_SMALL * KC_SMALL], pb[KC_SMALL * NC_SMALL];
    blocked(isa, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pa, pb, MC_SMALL, KC_SMALL, NC_SMALL);
}
