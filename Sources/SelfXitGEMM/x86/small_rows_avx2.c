// AVX2 + FMA few-rows product (`sx_gemm_small_rows`) of the AVX2 configuration: a dense layer
// of up to 8 rows (a classifier at batch 1…8) reads its row-major weights once, in place — the
// packed SGEMM would copy all of B for as little work. x86 only, per-function target attributes.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>

#define AVX2_TARGET __attribute__((target("avx2,fma,avx")))
/// Rows of B fetched ahead: B's rows are `ldb` apart, a stride the hardware prefetchers follow
/// late or not at all (as the AVX-512 kernel).
#define SMALL_ROWS_PREFETCH 12

/// `R` rows × `V` vectors (8 floats) of columns from `b`: 2R or R accumulators (≤ 12 of the 16
/// ymm registers), B streamed once a row per K step. `FULL`: every column exists (plain loads);
/// else the columns are masked by `m0`/`m1` (vmaskmov, slower, only on the last strip).
__attribute__((always_inline))
AVX2_TARGET
static inline void small_rows_strip(const int R, const int V, const int FULL, int k, float alpha, const float *x,
                                    ptrdiff_t ldx, const float *b, ptrdiff_t ldb, __m256i m0, __m256i m1, float *y,
                                    ptrdiff_t ldy) {
    __m256 acc0[8], acc1[8];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) { acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }
    for (int p = 0; p < k; p++) {
        const float *bp = b + (ptrdiff_t)p * ldb;
        _mm_prefetch((const char *)(bp + SMALL_ROWS_PREFETCH * ldb), _MM_HINT_T0);
        __m256 b0 = FULL ? _mm256_loadu_ps(bp) : _mm256_maskload_ps(bp, m0);
        __m256 b1 = _mm256_setzero_ps();
        if (V == 2) b1 = FULL ? _mm256_loadu_ps(bp + 8) : _mm256_maskload_ps(bp + 8, m1);
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_broadcast_ss(x + (ptrdiff_t)r * ldx + p);
            acc0[r] = _mm256_fmadd_ps(xv, b0, acc0[r]);
            if (V == 2) acc1[r] = _mm256_fmadd_ps(xv, b1, acc1[r]);
        }
    }
    const __m256 va = _mm256_set1_ps(alpha);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        float *yr = y + (ptrdiff_t)r * ldy;
        if (FULL) {
            _mm256_storeu_ps(yr, _mm256_mul_ps(va, acc0[r]));
            if (V == 2) _mm256_storeu_ps(yr + 8, _mm256_mul_ps(va, acc1[r]));
        } else {
            _mm256_maskstore_ps(yr, m0, _mm256_mul_ps(va, acc0[r]));
            if (V == 2) _mm256_maskstore_ps(yr + 8, m1, _mm256_mul_ps(va, acc1[r]));
        }
    }
}

/// One row (a classifier at batch 1: y = x·B, B `k × n` row-major, read in place), B read row
/// after row: y (a chunk of up to `ONE_ROW_CHUNK` columns, in L1) gathers four K rows a pass, so B
/// streams as four sequential runs the hardware prefetchers follow. Column strips down B (64
/// columns, 8 accumulators: one 256-byte piece of each row, a page apart) ran ResNet-50's 2048→1000
/// layer at about 0.7 of ONNX Runtime's rate on an AMD EPYC Zen 3 with B from memory; row after
/// row, and with `DenseKernel` splitting K over the threads so each streams whole rows, 0.57–0.70
/// of the strips' time (0.38–0.42 against 0.54–0.69 ms, 2 threads, B cycled through 64 MB).
#define ONE_ROW_CHUNK 1024
AVX2_TARGET
static void one_row_avx2(int n, int k, float alpha, const float *x, const float *b, ptrdiff_t ldb, float *y) {
    for (int c0 = 0; c0 < n; c0 += ONE_ROW_CHUNK) {
        const int len = n - c0 < ONE_ROW_CHUNK ? n - c0 : ONE_ROW_CHUNK, len8 = len / 8 * 8;
        float *yc = y + c0;
        const float *bc = b + c0;
        for (int c = 0; c < len; c++) yc[c] = 0;
        int p = 0;
        for (; p + 4 <= k; p += 4) {
            const float *b0 = bc + (ptrdiff_t)p * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            const __m256 x0 = _mm256_broadcast_ss(x + p), x1 = _mm256_broadcast_ss(x + p + 1);
            const __m256 x2 = _mm256_broadcast_ss(x + p + 2), x3 = _mm256_broadcast_ss(x + p + 3);
            int c = 0;
            for (; c < len8; c += 8) {
                __m256 acc = _mm256_loadu_ps(yc + c);
                acc = _mm256_fmadd_ps(x0, _mm256_loadu_ps(b0 + c), acc);
                acc = _mm256_fmadd_ps(x1, _mm256_loadu_ps(b1 + c), acc);
                acc = _mm256_fmadd_ps(x2, _mm256_loadu_ps(b2 + c), acc);
                acc = _mm256_fmadd_ps(x3, _mm256_loadu_ps(b3 + c), acc);
                _mm256_storeu_ps(yc + c, acc);
            }
            for (; c < len; c++) yc[c] += x[p] * b0[c] + x[p + 1] * b1[c] + x[p + 2] * b2[c] + x[p + 3] * b3[c];
        }
        for (; p < k; p++) {
            const float *bp = bc + (ptrdiff_t)p * ldb;
            for (int c = 0; c < len; c++) yc[c] += x[p] * bp[c];
        }
        for (int c = 0; c < len; c++) yc[c] *= alpha;
    }
}

/// Up to 6 rows: strips of 16 columns (12 accumulators, 2 loads + R broadcasts per 2R FMAs);
/// 7 or 8 rows: strips of 8 (R accumulators), so B is still read once for all rows — a strip's
/// other half of each cache line is read by the next strip from L2 (k rows × 64 bytes).
AVX2_TARGET
static void small_rows_avx2_(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx, const float *b,
                             ptrdiff_t ldb, float *y, ptrdiff_t ldy) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int w = rows <= 6 ? 16 : 8;
    for (int c0 = 0; c0 < n; c0 += w) {
        const int left = n - c0, full = left >= w;
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
        const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), lane);
#define STRIP(R, V)                                                                                              \
    case R:                                                                                                      \
        if (full) small_rows_strip(R, V, 1, k, alpha, x, ldx, b + c0, ldb, m0, m1, y + c0, ldy);                 \
        else small_rows_strip(R, V, 0, k, alpha, x, ldx, b + c0, ldb, m0, m1, y + c0, ldy);                      \
        break;
        switch (rows) {
            STRIP(1, 2) STRIP(2, 2) STRIP(3, 2) STRIP(4, 2) STRIP(5, 2) STRIP(6, 2) STRIP(7, 1) STRIP(8, 1)
        }
#undef STRIP
    }
}

void sxk_small_rows_avx2(int rows, int n, int k, float alpha, const float *x, ptrdiff_t ldx, const float *b,
                         ptrdiff_t ldb, float *y, ptrdiff_t ldy) {
    if (!(rows >= 1 && rows <= 8 && n > 0 && k > 0)) return;
    if (rows == 1 && n >= 64) return one_row_avx2(n, k, alpha, x, b, ldb, y);
    small_rows_avx2_(rows, n, k, alpha, x, ldx, b, ldb, y, ldy);
}
#endif
