/* Timing helpers shared by the single-file C probes in tools/ (direct_ab.c, grid_feed_probe.c):
 * a monotonic clock and one core's AVX-512 FMA peak, measured. Not part of the library. */
#ifndef SELFXIT_TOOLS_FMA_PEAK_H
#define SELFXIT_TOOLS_FMA_PEAK_H
#include <immintrin.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

/// Seconds of `n` rounds of 24 independent zmm FMAs (the core's FMA peak, 768 flops a round).
__attribute__((target("avx512f,fma"), noinline)) static double fma_peak_seconds(long n) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps(0.001f * (float)i);
    __m512 scale = _mm512_set1_ps(0.9999f), add = _mm512_set1_ps(1e-6f);
    double t0 = now();
    for (long i = 0; i < n; i++) {
#pragma clang loop unroll(full)
        for (int j = 0; j < 24; j++) acc[j] = _mm512_fmadd_ps(acc[j], scale, add);
        __asm__ volatile("" : "+v"(scale));
    }
    double dt = now() - t0;
    float sink = 0;
    for (int i = 0; i < 24; i++) sink += _mm512_reduce_add_ps(acc[i]);
    __asm__ volatile("" : : "x"(sink));
    return dt;
}
#endif
