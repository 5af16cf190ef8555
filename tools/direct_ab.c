/* Direct (implicit-GEMM) product A/B: two builds of x86/gemm_avx512.c's `sxk_direct_avx512` (e.g.
 * before and after a change) timed alternately call by call on ResNet-50's 1×1 layers, one thread,
 * medians and minima of each compared (BENCHMARKS §7.23: on a machine whose speed swings by tens of
 * per cent within seconds only such interleaving gives a usable ratio). The input rotates through
 * NBUF copies (default 8, from L3; 1: hot in L2), so the two builds read different copies and the
 * printed max |A − B| is only meaningful with NBUF 1. Not part of the library or of `make test`.
 *
 *   I="-ISources/SelfXitGEMM/include -ISources/SelfXitGEMM -ISources/SelfXitGEMM/x86"
 *   R() { for f in gemm ct ctd im2col small_rows sgemm_skinny; do printf ' -Dsxk_%s_avx512=%s_%s' $f $1 $f; done;
 *         printf ' -Dsxk_direct_avx512=direct_%s' $1; }
 *   git show d648661:Sources/SelfXitGEMM/x86/gemm_avx512.c > .build/gemm_avx512_a.c   # without the prefetch
 *   clang -O2 -std=gnu11 -c $I $(R a) .build/gemm_avx512_a.c -o .build/direct_a.o
 *   clang -O2 -std=gnu11 -c $I $(R b) Sources/SelfXitGEMM/x86/gemm_avx512.c -o .build/direct_b.o
 *   clang -O2 -std=gnu11 $I tools/direct_ab.c .build/direct_a.o .build/direct_b.o \
 *      $(find Sources/SelfXitGEMM -name '*.c') -o .build/direct_ab -lm -lpthread
 *   [RES=inplace|sep] [CTD=1] .build/direct_ab [CALLS [NBUF]]     # e.g. 400 8 (from L3), 400 1 (hot)
 *
 * CTD=1 times the channel-major product (`sxk_ctd_avx512`, renamed `a_ctd` / `b_ctd` by R above)
 * on the 1×1 layers of 14×14 and 7×7 planes instead. Each line also gives the median of the
 * per-call ratios B/A ("paired": the two calls of a round meet the same machine state) and each
 * build's share of the FMA peak, timed by a register-only FMA loop between the rounds.
 */
#define _POSIX_C_SOURCE 199309L
#include "selfxit_gemm.h"
#include "fma_peak.h"
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void direct_a(const float *, int, int, int, int, const sx_gemm_direct_b *, int, int, const sx_gemm_out *);
void direct_b(const float *, int, int, int, int, const sx_gemm_direct_b *, int, int, const sx_gemm_out *);
void a_ctd(const float *, int, int, int, int, const sx_gemm_direct_b *, int, int, const sx_gemm_out *);
void b_ctd(const float *, int, int, int, int, const sx_gemm_direct_b *, int, int, const sx_gemm_out *);
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    static const struct { const char *name; int cin, h, cout, pad; } grid_layers[] = {
        {"1x1 256->64 56", 256, 56, 64, 0}, {"1x1 64->256 56", 64, 56, 256, 0}, {"1x1 256->128 56", 256, 56, 128, 0},
        {"1x1 512->128 28", 512, 28, 128, 0}, {"1x1 128->512 28", 128, 28, 512, 0}, {"1x1 64->64 56", 64, 56, 64, 0},
    }, ctd_layers[] = {
        {"1x1 1024->256 14", 1024, 14, 256, 0}, {"1x1 256->1024 14", 256, 14, 1024, 0},
        {"1x1 2048->512 7", 2048, 7, 512, 0}, {"1x1 512->2048 7", 512, 7, 2048, 0},
    };
    const int ctd = getenv("CTD") != NULL;
    const unsigned nlayers = ctd ? sizeof ctd_layers / sizeof *ctd_layers : sizeof grid_layers / sizeof *grid_layers;
    const int rounds = argc > 1 ? atoi(argv[1]) : 200, nbuf = argc > 2 ? atoi(argv[2]) : 8;
    if (rounds < 1 || nbuf < 1) { fprintf(stderr, "usage: direct_ab [CALLS ≥ 1 [NBUF ≥ 1]]\n"); return 2; }
    // C (and the residual) rotate through NBUF copies like the input: in the model both are
    // fresh from L3 when the layer starts. RES=inplace adds the residual in place (C holds it,
    // the plan's usual case), RES=sep reads it from its own buffer; unset: no residual.
    const char *res_mode = getenv("RES");
    const int in_place = res_mode && !strcmp(res_mode, "inplace"), separate = res_mode && !strcmp(res_mode, "sep");
    for (unsigned li = 0; li < nlayers; li++) {
        const __typeof__(grid_layers[0]) *layer = ctd ? &ctd_layers[li] : &grid_layers[li];
        int cin = layer->cin, h = layer->h, m = layer->cout, plane = h * h, k = cin;
        int cs = plane + layer->pad; float *x = malloc(sizeof(float) * cin * cs * 8), *w = malloc(sizeof(float) * m * k);
        size_t cfloats = (size_t)m * plane;
        float *ca = malloc(sizeof(float) * cfloats * nbuf), *cb = malloc(sizeof(float) * cfloats * nbuf), *bias = malloc(sizeof(float) * m);
        float *res = malloc(sizeof(float) * cfloats * nbuf);
        for (size_t i = 0; i < cfloats * nbuf; i++) { ca[i] = cb[i] = 0.0f; res[i] = (float)(i % 13) * 0.01f; }
        for (int i = 0; i < cin * cs * 8; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (int i = 0; i < m * k; i++) w[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
        for (int i = 0; i < m; i++) bias[i] = 0.01f * i;
        float *pa = aligned_alloc(64, ((sizeof(float) * sx_gemm_packed_a_floats(SX_GEMM_ISA_AVX512, m, k)) + 63) / 64 * 64);
        sx_gemm_pack_a(SX_GEMM_ISA_AVX512, w, k, m, k, pa);
        int *off = malloc(sizeof(int) * k);
        for (int i = 0; i < k; i++) off[i] = i * cs;
        sx_gemm_direct_b b; memset(&b, 0, sizeof b);
        b.x = x; b.offsets = off; b.n = plane; b.grid_w = h; b.valid_w = h;
        int panels = (m + 15) / 16;
        sx_gemm_out oa = {ca, plane, (ptrdiff_t)m * plane, NULL, 0, 0, bias, plane, SX_GEMM_ACT_RELU, 0, 0};
        sx_gemm_out ob = oa; ob.c = cb;
        double *ta = malloc(sizeof(double) * rounds), *tb = malloc(sizeof(double) * rounds);
        double *tp = malloc(sizeof(double) * rounds), *ratio = malloc(sizeof(double) * rounds);
        const long peak_rounds = (long)(2.0 * m * k * plane / 768.0);
        for (int r = 0; r < rounds; r++) {
            for (int v = 0; v < 2; v++) {
                int which = (r + v) & 1;
                const int slot = (r * 2 + v) % nbuf;
                b.x = x + (size_t)slot * cin * cs;
                sx_gemm_out *o = which == 0 ? &oa : &ob;
                o->c = (which == 0 ? ca : cb) + (size_t)slot * cfloats;
                if (in_place) { o->residual = o->c; o->ldr = plane; }
                if (separate) { o->residual = res + (size_t)slot * cfloats; o->ldr = plane; }
                double t0 = now();
                if (ctd) {
                    if (which == 0) a_ctd(pa, m, k, 0, panels, &b, 0, h, &oa);
                    else b_ctd(pa, m, k, 0, panels, &b, 0, h, &ob);
                } else if (which == 0) direct_a(pa, m, k, 0, panels, &b, 0, plane, &oa);
                else direct_b(pa, m, k, 0, panels, &b, 0, plane, &ob);
                double dt = now() - t0;
                (which == 0 ? ta : tb)[r] = dt;
            }
            ratio[r] = tb[r] / ta[r];
            tp[r] = fma_peak_seconds(peak_rounds);
        }
        double maxd = 0;
        for (int i = 0; i < m * plane; i++) { double d = fabs(ca[i] - cb[i]); if (d > maxd) maxd = d; }
        qsort(ta, rounds, sizeof(double), cmpd); qsort(tb, rounds, sizeof(double), cmpd);
        double fl = 2.0 * m * k * plane;
        qsort(tp, rounds, sizeof(double), cmpd); qsort(ratio, rounds, sizeof(double), cmpd);
        const double peak = fl / tp[rounds / 2];  // the FMA loop's flops a second, median
        printf("%-18s A min %.3f med %.3f ms (%.0f GF/s, %.0f %% of peak)  B min %.3f med %.3f ms (%.0f GF/s, %.0f %%)  "
               "B/A min %.3f med %.3f paired %.3f  maxdiff %.1e\n",
               layer->name, ta[0] * 1e3, ta[rounds / 2] * 1e3, fl / ta[0] * 1e-9, 100 * fl / ta[rounds / 2] / peak,
               tb[0] * 1e3, tb[rounds / 2] * 1e3, fl / tb[0] * 1e-9, 100 * fl / tb[rounds / 2] / peak,
               tb[0] / ta[0], tb[rounds / 2] / ta[rounds / 2], ratio[rounds / 2], maxd);
        free(x); free(w); free(ca); free(cb); free(res); free(bias); free(pa); free(off); free(ta); free(tb); free(tp); free(ratio);
    }
    return 0;
}
