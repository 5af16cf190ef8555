// One convolution's packed product as Conv2D runs it (im2col or the 1×1 copy into packed B by
// blocks of output rows, then sx_gemm_compute on the whole block), against the same product
// through sx_sgemm's BLIS-ordered blocks (`sxk_sgemm_block_avx2` on the same packed B, no
// epilogue) and through sx_sgemm itself (1×1 only: it packs the input in place of the copy); for
// kernels over 1×1, the product on B packed by the portable im2col instead of the configuration's.
// One thread, thread CPU time, the three alternating per iteration (a shared host's state moves
// over seconds: alternating keeps the comparison fair); min and median of 40 per variant.
// Not part of the library or of `make test`. Build with clang, as SwiftPM does:
//
//   clang -O2 -std=gnu11 -ISources/SelfXitGEMM/include -ISources/SelfXitGEMM bench/packed_conv_ab.c \
//       $(find Sources/SelfXitGEMM -name '*.c') -o .build/packed_conv_ab -lpthread -lm
//   .build/packed_conv_ab C H M KERNEL STRIDE      # e.g. 24 56 144 1 1 (MobileNetV2's 24→144 at 56×56)
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "selfxit_gemm.h"

void sxk_im2col_portable(const float *x, const sx_im2col_geom *g, int r0, int r1, int oy0, int oy1, int col0, float *dst);
void sxk_sgemm_block_avx2(int mc, int nc, int kc, const float *pa, const float *pb, float *c, ptrdiff_t ldc, int accum);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: %s C H M KERNEL STRIDE\n", argv[0]); return 2; }
    const int C = atoi(argv[1]), H = atoi(argv[2]), M = atoi(argv[3]), KS = atoi(argv[4]), S = atoi(argv[5]);
    const int pad = KS / 2, OH = (H + 2 * pad - KS) / S + 1, n = OH * OH, K = C * KS * KS;
    const int isa = sx_gemm_default_isa(), pointwise = KS == 1 && S == 1;
    const int block_avx2 = isa == SX_GEMM_ISA_AVX2;  // sxk_sgemm_block_avx2's packing matches the 6-row A panels
    float *x = malloc(sizeof(float) * C * H * H), *w = malloc(sizeof(float) * M * K), *y = malloc(sizeof(float) * M * n);
    for (long i = 0; i < (long)C * H * H; i++) x[i] = (float)(i % 7) * 0.1f;
    for (long i = 0; i < (long)M * K; i++) w[i] = (float)(i % 5) * 0.01f;
    float *pa = aligned_alloc(64, (sizeof(float) * sx_gemm_packed_a_floats(isa, M, K) + 63) / 64 * 64);
    sx_gemm_pack_a(isa, w, K, M, K, pa);
    const int mr = sx_gemm_mr(isa), mPanels = (M + mr - 1) / mr;
    sx_im2col_geom g = {C, H, H, OH, OH, KS, KS, S, S, 1, 1, pad, pad};
    // Conv2D's row blocks for planes of 512 pixels and more (runPacked), else the whole plane.
    int rowsPerBlock = OH;
    if (n >= 512) {
        const int minRows = (128 + OH - 1) / OH, byCache = 32 * 1024 / (K * OH), byThreads = OH / 4;
        rowsPerBlock = minRows > (byCache < byThreads ? byCache : byThreads) ? minRows : (byCache < byThreads ? byCache : byThreads);
        if (rowsPerBlock > OH) rowsPerBlock = OH;
    }
    float *pb = aligned_alloc(64, (sizeof(float) * sx_gemm_packed_b_floats(rowsPerBlock * OH + 16, K) + 63) / 64 * 64);
    const char *names[3] = {"sx_gemm_compute", "sgemm blocks", pointwise ? "sx_sgemm" : "portable im2col"};
    const int variants = 3;
    enum { IT = 40 };
    double t[3][IT];
    for (int it = -3; it < IT; it++)
        for (int v = 0; v < variants; v++) {
            if (v == 1 && !block_avx2) { if (it >= 0) t[v][it] = 0; continue; }
            const double t0 = now();
            if (v == 2 && pointwise) {
                sx_sgemm(isa, 0, 0, M, n, K, 1.0f, w, K, x, n, 0.0f, y, n);
            } else {
                for (int oy = 0; oy < OH; oy += rowsPerBlock) {
                    const int oy1 = oy + rowsPerBlock < OH ? oy + rowsPerBlock : OH, cols = (oy1 - oy) * OH;
                    if (pointwise) sx_gemm_pack_b(x + oy * OH, n, cols, K, 0, K, 0, pb);
                    else if (v == 2) sxk_im2col_portable(x, &g, 0, K, oy, oy1, 0, pb);
                    else sx_im2col_packed(x, &g, 0, K, oy, oy1, 0, pb);
                    sx_gemm_pack_b_zero_tail(cols, K, 0, K, pb);
                    sx_gemm_out o = {y + oy * OH, n, 0, NULL, 0, 0, NULL, n, SX_GEMM_ACT_NONE, 0, 0};
                    if (v == 1) sxk_sgemm_block_avx2(M, cols, K, pa, pb, o.c, n, 0);
                    else sx_gemm_compute(isa, pa, M, K, 0, mPanels, pb, cols, 0, (cols + 15) / 16, &o);
                }
            }
            if (it >= 0) t[v][it] = now() - t0;
        }
    const double flops = 2.0 * M * K * n;
    printf("%d→%d %dx%d stride %d on %d×%d (rows a block %d):", C, M, KS, KS, S, H, H, rowsPerBlock);
    for (int v = 0; v < variants; v++) {
        if (v == 1 && !block_avx2) continue;
        qsort(t[v], IT, sizeof(double), cmpd);
        printf("  %s %.3f / %.3f ms (%.0f GF/s)", names[v], t[v][0] * 1e3, t[v][IT / 2] * 1e3, flops / t[v][0] / 1e9);
    }
    printf("   (min / median)\n");
    return 0;
}
