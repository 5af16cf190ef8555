// AVX2 + FMA depthwise k×k over a zero-padded, phase-split plane (DepthwisePlan's copy): the
// `dw_plane` kernel of the AVX2 configuration (configs/kernel_config.c). AVX2 has no in-place
// depthwise (its masked loads cost what AVX-512's do not, §7.3 of docs/BENCHMARKS.md), so 5×5
// layers (MobileNetV3, EfficientNet) keep the padded copy, but the product runs here instead of
// Swift's SIMD16 loop, with ReLU/Clip applied as it stores.
#include "../kernels_internal.h"

#if SX_X86
#include <immintrin.h>
#include "../avx2_helpers.h"

#define DWP_TARGET __attribute__((target("avx2,fma,avx")))

#define dwp_act sx_act8_basic

/// Stores the first `n` (1..8) lanes of `v` at `o`.
DWP_TARGET __attribute__((always_inline)) static inline void dwp_store(float *o, __m256 v, int n) {
    if (n >= 8) {
        _mm256_storeu_ps(o, v);
    } else {
        float t[8];
        _mm256_storeu_ps(t, v);
        for (int j = 0; j < n; j++) o[j] = t[j];
    }
}

/// Output row `oy` reads padded rows `buf + oy·step_y + ky·dy` at column offsets `off[kx]`
/// (+ output column); 16 columns (two accumulators) at a time, the buffer being padded to whole
/// 16-float vectors so every load is in bounds. Writes `act(sum + bias)`.
DWP_TARGET
void sxk_dw_plane_avx2(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, int kh, int kw,
                       const float *w, float bias, float *out, int out_h, int out_w, int act, float lo, float hi) {
    const __m256 vb = _mm256_set1_ps(bias), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    for (int oy = 0; oy < out_h; oy++) {
        const float *base = buf + oy * step_y;
        float *o = out + (ptrdiff_t)oy * out_w;
        for (int ox = 0; ox < out_w; ox += 16) {
            __m256 a0 = vb, a1 = _mm256_setzero_ps(), c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();
            for (int ky = 0; ky < kh; ky++) {
                const float *row = base + ky * dy + ox;
                const float *wk = w + ky * kw;
                int kx = 0;
                // Two taps a step into separate accumulators (FMA latency).
                for (; kx + 1 < kw; kx += 2) {
                    const __m256 w0 = _mm256_set1_ps(wk[kx]), w1 = _mm256_set1_ps(wk[kx + 1]);
                    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(row + off[kx]), a0);
                    a1 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(row + off[kx] + 8), a1);
                    c0 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(row + off[kx + 1]), c0);
                    c1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(row + off[kx + 1] + 8), c1);
                }
                if (kx < kw) {
                    const __m256 w0 = _mm256_set1_ps(wk[kx]);
                    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(row + off[kx]), a0);
                    a1 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(row + off[kx] + 8), a1);
                }
            }
            const int n = out_w - ox;
            dwp_store(o + ox, dwp_act(_mm256_add_ps(a0, c0), act, vlo, vhi), n);
            if (n > 8) dwp_store(o + ox + 8, dwp_act(_mm256_add_ps(_mm256_add_ps(a1, c1), vb), act, vlo, vhi), n - 8);
        }
    }
}
#endif
