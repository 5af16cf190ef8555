// Helpers shared by SelfXit's AVX-512 kernels (internal header): lane masks and the fused
// activation every epilogue applies.
#ifndef SELFXIT_AVX512_HELPERS_H
#define SELFXIT_AVX512_HELPERS_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "selfxit_gemm.h"

/// Lanes `i` of a 16-float load starting at column `ix` of a row whose columns are `0..<in_w`
/// that lie inside the row (the others are masked off and never read).
static inline __mmask16 sx_row_mask(int ix, int in_w) {
    int lo = ix < 0 ? -ix : 0, hi = in_w - ix;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)((hi >= 16 ? 0xFFFFu : ((1u << hi) - 1u)) & ~((1u << lo) - 1u));
}

/// `act` (`SX_GEMM_ACT_*`) of `v`; `lo`/`hi` are the Clip bounds, broadcast.
/// NaN stays NaN (as ONNX Runtime's Relu/Clip): `max_ps(a, b)` is `a > b ? a : b`, so it
/// returns b when either is NaN — the value goes second. (With `v` first, a NaN became 0 and
/// a NaN pixel a confident-looking answer.) -0 stays -0 like ORT's Relu.
__attribute__((target("avx512f"), always_inline))
static inline __m512 sx_act512(__m512 v, int act, __m512 lo, __m512 hi) {
    if (act == SX_GEMM_ACT_RELU) return _mm512_max_ps(_mm512_setzero_ps(), v);
    if (act == SX_GEMM_ACT_CLIP) return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
    return v;
}
#endif

#endif
