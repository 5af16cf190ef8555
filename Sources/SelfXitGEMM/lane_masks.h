// Lane masks shared by SelfXit's AVX-512 kernels (internal header).
#ifndef SELFXIT_LANE_MASKS_H
#define SELFXIT_LANE_MASKS_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/// Lanes `i` of a 16-float load starting at column `ix` of a row whose columns are `0..<in_w`
/// that lie inside the row (the others are masked off and never read).
static inline __mmask16 sx_row_mask(int ix, int in_w) {
    int lo = ix < 0 ? -ix : 0, hi = in_w - ix;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)((hi >= 16 ? 0xFFFFu : ((1u << hi) - 1u)) & ~((1u << lo) - 1u));
}
#endif

#endif
