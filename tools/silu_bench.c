/* SiLU throughput of every kernel configuration this machine runs (`sx_kernel_config.silu`, the
 * separate pass; the fused epilogues use the same e^x): 4096 floats in [−16.4, 16.4] (L1), 20 000
 * calls a run, 5 runs, ns an element of each run printed. Not part of the library or of `make test`.
 * Before/after a change: build it once against each tree and run the two binaries alternately
 * (BENCHMARKS §7.24 — this machine's speed swings by tens of per cent within seconds):
 *
 *   b() { clang -O2 -std=gnu11 -I$1/Sources/SelfXitGEMM/include -I$1/Sources/SelfXitGEMM tools/silu_bench.c \
 *         $(find $1/Sources/SelfXitGEMM -name '*.c') -o $2 -lm -lpthread; }
 *   git worktree add /tmp/silu-old 8808eae && b /tmp/silu-old .build/silu_old && b . .build/silu_new
 *   for i in 1 2 3; do .build/silu_old; .build/silu_new; done
 */
#define _POSIX_C_SOURCE 199309L
#include "selfxit_gemm.h"
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
    enum { N = 4096, CALLS = 20000, RUNS = 5 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = (float)(i - N / 2) * 0.008f + 0.001f;
    for (int isa = 0; isa < SX_GEMM_ISA_COUNT; isa++) {
        const sx_kernel_config *cfg = sx_kernel_config_for(isa);
        if (!cfg) continue;
        printf("%-7s silu ns/element:", cfg->name);
        for (int r = 0; r < RUNS; r++) {
            double t0 = now();
            for (int c = 0; c < CALLS; c++) cfg->silu(x, y, N);
            printf(" %.3f", (now() - t0) / CALLS / N * 1e9);
        }
        printf("   (y[0] %g)\n", y[0]);
    }
    return 0;
}
