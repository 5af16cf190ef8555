// NEON (AArch64 Advanced SIMD) kernels of the NEON configuration (configs/kernel_config.c): the
// packed GEMM tile, the direct (implicit-GEMM) product on the same tile, depthwise 3×3 and the
// vector sigmoid / SiLU. 32 q registers: the 6×16 tile keeps 24 accumulators, 4 B vectors and
// the 6 A values in two registers (lane-indexed FMAs, no broadcasts). Compiled on AArch64 only;
// checked against the portable C under qemu-user (`make test-aarch64-kernels`,
// Tests/Kernels/kernel_test.c), since this project's machines are x86.
#include "../kernels_internal.h"
#include "../exp_poly.h"

#if SX_ARM64
#include <arm_neon.h>
#include <string.h>

#define NR SXK_NR
#define MR SXK_MR_NEON

static inline float32x4_t act4(float32x4_t v, int act, float32x4_t vlo, float32x4_t vhi) {
    // FMAX/FMIN return NaN when either operand is NaN: NaN stays NaN (as ONNX Runtime).
    if (act == SX_GEMM_ACT_RELU) return vmaxq_f32(v, vdupq_n_f32(0.0f));
    if (act == SX_GEMM_ACT_CLIP) return vminq_f32(vmaxq_f32(v, vlo), vhi);
    return v;
}

/// acc[r][0..3] += a[r] · b[0..3] for the 6 rows, A in `a03` (rows 0–3) and `a45` (rows 4–5).
#define FMA_ROWS(acc, b0, b1, b2, b3, a03, a45)                                                          \
    do {                                                                                                \
        acc[0][0] = vfmaq_laneq_f32(acc[0][0], b0, a03, 0); acc[0][1] = vfmaq_laneq_f32(acc[0][1], b1, a03, 0); \
        acc[0][2] = vfmaq_laneq_f32(acc[0][2], b2, a03, 0); acc[0][3] = vfmaq_laneq_f32(acc[0][3], b3, a03, 0); \
        acc[1][0] = vfmaq_laneq_f32(acc[1][0], b0, a03, 1); acc[1][1] = vfmaq_laneq_f32(acc[1][1], b1, a03, 1); \
        acc[1][2] = vfmaq_laneq_f32(acc[1][2], b2, a03, 1); acc[1][3] = vfmaq_laneq_f32(acc[1][3], b3, a03, 1); \
        acc[2][0] = vfmaq_laneq_f32(acc[2][0], b0, a03, 2); acc[2][1] = vfmaq_laneq_f32(acc[2][1], b1, a03, 2); \
        acc[2][2] = vfmaq_laneq_f32(acc[2][2], b2, a03, 2); acc[2][3] = vfmaq_laneq_f32(acc[2][3], b3, a03, 2); \
        acc[3][0] = vfmaq_laneq_f32(acc[3][0], b0, a03, 3); acc[3][1] = vfmaq_laneq_f32(acc[3][1], b1, a03, 3); \
        acc[3][2] = vfmaq_laneq_f32(acc[3][2], b2, a03, 3); acc[3][3] = vfmaq_laneq_f32(acc[3][3], b3, a03, 3); \
        acc[4][0] = vfmaq_lane_f32(acc[4][0], b0, a45, 0); acc[4][1] = vfmaq_lane_f32(acc[4][1], b1, a45, 0);   \
        acc[4][2] = vfmaq_lane_f32(acc[4][2], b2, a45, 0); acc[4][3] = vfmaq_lane_f32(acc[4][3], b3, a45, 0);   \
        acc[5][0] = vfmaq_lane_f32(acc[5][0], b0, a45, 1); acc[5][1] = vfmaq_lane_f32(acc[5][1], b1, a45, 1);   \
        acc[5][2] = vfmaq_lane_f32(acc[5][2], b2, a45, 1); acc[5][3] = vfmaq_lane_f32(acc[5][3], b3, a45, 1);   \
    } while (0)

/// Stores rows `< mv` of the tile: `act(acc + bias[r] + res)` at `c` (row stride `ldc`); the 16
/// columns go to `cols[j]` (or `j` itself when `cols` is NULL), `nv` of them, -1 skipping one.
static void store_tile(float32x4_t acc[MR][4], int mv, int nv, const ptrdiff_t *cols, float *c, ptrdiff_t ldc,
                       const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi) {
    const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
    for (int r = 0; r < mv; r++) {
        float32x4_t bv = vdupq_n_f32(bias ? bias[r] : 0.0f);
        float *cr = c + (ptrdiff_t)r * ldc;
        const float *rr = res ? res + (ptrdiff_t)r * ldr : NULL;
        if (!cols && nv == NR) {
            for (int v = 0; v < 4; v++) {
                float32x4_t y = vaddq_f32(acc[r][v], bv);
                if (rr) y = vaddq_f32(y, vld1q_f32(rr + 4 * v));
                vst1q_f32(cr + 4 * v, act4(y, act, vlo, vhi));
            }
        } else {
            float t[NR];
            for (int v = 0; v < 4; v++) vst1q_f32(t + 4 * v, vaddq_f32(acc[r][v], bv));
            for (int j = 0; j < nv; j++) {
                ptrdiff_t col = cols ? cols[j] : j;
                if (col < 0) continue;
                float y = t[j];
                if (rr) y += rr[col];
                cr[col] = sxk_act1(y, act, lo, hi);
            }
        }
    }
}

static void load_tile(float32x4_t acc[MR][4], int mv, int nv, const ptrdiff_t *cols, const float *c, ptrdiff_t ldc) {
    for (int r = 0; r < mv; r++) {
        float t[NR] = {0};
        for (int j = 0; j < nv; j++) {
            ptrdiff_t col = cols ? cols[j] : j;
            if (col >= 0) t[j] = c[(ptrdiff_t)r * ldc + col];
        }
        for (int v = 0; v < 4; v++) acc[r][v] = vld1q_f32(t + 4 * v);
    }
}

static void tile_neon(int k, const float *a, const float *b, float *c, ptrdiff_t ldc, int mv, int nv,
                      const float *bias, const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
    float32x4_t acc[MR][4];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < 4; v++) acc[r][v] = vdupq_n_f32(0.0f);
    if (accum) load_tile(acc, mv, nv, NULL, c, ldc);
    for (int p = 0; p < k; p++) {
        const float *bp = b + (size_t)p * NR, *ap = a + (size_t)p * MR;
        float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4), b2 = vld1q_f32(bp + 8), b3 = vld1q_f32(bp + 12);
        float32x4_t a03 = vld1q_f32(ap);
        float32x2_t a45 = vld1_f32(ap + 4);
        FMA_ROWS(acc, b0, b1, b2, b3, a03, a45);
    }
    store_tile(acc, mv, nv, NULL, c, ldc, bias, res, ldr, act, lo, hi);
}

void sxk_gemm_neon(const float *pa, int m, int k, int mp0, int mp1, const float *pb, int n, int np0, int np1,
                   const sx_gemm_out *out) {
    sxk_gemm_drive(tile_neon, NULL, NULL, MR, pa, m, k, mp0, mp1, pb, n, np0, np1, out);
}

/* ---------------------------------------------------------------- direct (implicit GEMM) */

/// Grid columns `q..q+15` (`len` exist) × 6 rows of A, B read in place at `x[off[kk] + col]`.
static void direct_tile_neon(int k, const float *a, const float *x, const int *off, int q, int len,
                             const sx_gemm_direct_b *b, float *c, ptrdiff_t ldc, int mv, const float *bias,
                             const float *res, ptrdiff_t ldr, int act, float lo, float hi, int accum) {
    int q_row = q / b->grid_w, q_col = q - q_row * b->grid_w;
    const int fast = len == NR && (b->grid_w == b->valid_w || q_col + NR <= b->valid_w);
    ptrdiff_t cols[NR];
    for (int j = 0; j < NR; j++) {
        int col = q + j, row = col / b->grid_w, cx = col - row * b->grid_w;
        cols[j] = j < len && cx < b->valid_w ? (ptrdiff_t)row * b->valid_w + cx : -1;
    }
    float32x4_t acc[MR][4];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < 4; v++) acc[r][v] = vdupq_n_f32(0.0f);
    if (accum) load_tile(acc, mv, NR, cols, c, ldc);
    const float *xq = x + q;
    for (int p = 0; p < k; p++) {
        const float *bp = xq + off[p];
        float t[NR];
        if (len < NR) {  // the tail: B's last row ends at column n
            memset(t, 0, sizeof t);
            memcpy(t, bp, (size_t)len * sizeof(float));
            bp = t;
        }
        float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4), b2 = vld1q_f32(bp + 8), b3 = vld1q_f32(bp + 12);
        const float *ap = a + (size_t)p * MR;
        float32x4_t a03 = vld1q_f32(ap);
        float32x2_t a45 = vld1_f32(ap + 4);
        FMA_ROWS(acc, b0, b1, b2, b3, a03, a45);
    }
    if (fast) store_tile(acc, mv, NR, NULL, c + cols[0], ldc, bias, res ? res + cols[0] : NULL, ldr, act, lo, hi);
    else store_tile(acc, mv, NR, cols, c, ldc, bias, res, ldr, act, lo, hi);
}

void sxk_direct_neon(const float *pa, int m, int k, int mp0, int mp1, const sx_gemm_direct_b *b, int q0, int q1,
                     const sx_gemm_out *out) {
    const int in_place = sxk_residual_in_place(out);
    int kblocks = (k + SXK_KC_MAX - 1) / SXK_KC_MAX;
    if (q1 - q0 <= 2 * NR || (size_t)(mp1 - mp0) * MR * k * sizeof(float) <= (1u << 20)) kblocks = 1;
    const int kc = (k + kblocks - 1) / kblocks;
    const int qend = q1 < b->n ? q1 : b->n;
    for (int kb0 = 0; kb0 < k; kb0 += kc) {
        const int klen = k - kb0 < kc ? k - kb0 : kc;
        const int first = kb0 == 0, last = kb0 + klen >= k;
        int cpb = (int)((32 * 1024) / (size_t)klen) / NR * NR;
        if (cpb < NR) cpb = NR;
        for (int qb = q0; qb < qend; qb += cpb) {
            int qe = qb + cpb < qend ? qb + cpb : qend;
            for (int mp = mp0; mp < mp1; mp++) {
                const float *ap = pa + (size_t)mp * MR * k + (size_t)kb0 * MR;
                int row0 = mp * MR;
                int mv = m - row0 < MR ? m - row0 : MR;
                const float *bias = out->bias && last ? out->bias + row0 : NULL;
                float *c = out->c + (ptrdiff_t)row0 * out->ldc;
                const float *res = out->residual && last && !in_place ? out->residual + (ptrdiff_t)row0 * out->ldr : NULL;
                for (int q = qb; q < qe; q += NR) {
                    int len = qe - q < NR ? qe - q : NR;
                    direct_tile_neon(klen, ap, b->x, b->offsets + kb0, q, len, b, c, out->ldc, mv, bias, res, out->ldr,
                                     last ? out->act : SX_GEMM_ACT_NONE, out->lo, out->hi, !first || in_place);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- depthwise 3×3 */

void sxk_dw3x3_plane_neon(const float *buf, ptrdiff_t step_y, ptrdiff_t dy, const int *off, const float *w, float bias,
                          float *out, int out_h, int out_w, int act, float lo, float hi) {
    float32x4_t wv[9];
    for (int t = 0; t < 9; t++) wv[t] = vdupq_n_f32(w[t]);
    const float32x4_t vb = vdupq_n_f32(bias), vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
    const int o0 = off[0], o1 = off[1], o2 = off[2];
    for (int oy = 0; oy < out_h; oy++) {
        const float *r0 = buf + oy * step_y, *r1 = r0 + dy, *r2 = r1 + dy;
        float *o = out + (ptrdiff_t)oy * out_w;
        // The buffer is padded to whole 16-float vectors: every load below is in bounds.
        for (int ox = 0; ox < out_w; ox += 4) {
            float32x4_t s0 = vfmaq_f32(vb, wv[0], vld1q_f32(r0 + ox + o0));
            float32x4_t s1 = vmulq_f32(wv[1], vld1q_f32(r0 + ox + o1));
            float32x4_t s2 = vmulq_f32(wv[2], vld1q_f32(r0 + ox + o2));
            s0 = vfmaq_f32(s0, wv[3], vld1q_f32(r1 + ox + o0));
            s1 = vfmaq_f32(s1, wv[4], vld1q_f32(r1 + ox + o1));
            s2 = vfmaq_f32(s2, wv[5], vld1q_f32(r1 + ox + o2));
            s0 = vfmaq_f32(s0, wv[6], vld1q_f32(r2 + ox + o0));
            s1 = vfmaq_f32(s1, wv[7], vld1q_f32(r2 + ox + o1));
            s2 = vfmaq_f32(s2, wv[8], vld1q_f32(r2 + ox + o2));
            float32x4_t y = act4(vaddq_f32(s0, vaddq_f32(s1, s2)), act, vlo, vhi);
            int n = out_w - ox;
            if (n >= 4) vst1q_f32(o + ox, y);
            else {
                float t[4];
                vst1q_f32(t, y);
                for (int j = 0; j < n; j++) o[ox + j] = t[j];
            }
        }
    }
}

/* ---------------------------------------------------------------- sigmoid / SiLU */

/// e^x, total as the x86 versions (x86/activation_x86.c): no float → int conversion, NaN → NaN,
/// +inf above 88.72, 0 below −87.34.
static inline float32x4_t exp4(float32x4_t x) {
    float32x4_t xc = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.3f));  // NaN stays NaN
    const float32x4_t magic = vdupq_n_f32(12582912.0f);
    float32x4_t t = vfmaq_f32(magic, xc, vdupq_n_f32(1.44269504088896341f));
    float32x4_t n = vsubq_f32(t, magic);
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(SX_EXP_LN2_HI));
    r = vfmaq_f32(r, n, vdupq_n_f32(SX_EXP_LN2_LO));
    // e^r (exp_poly.h); vfmaq_f32 takes the addend first.
#define NEON_MULADD(a, b, c) vfmaq_f32(c, a, b)
    float32x4_t p = SX_EXP_POLY(NEON_MULADD, vdupq_n_f32, r);
#undef NEON_MULADD
    int32x4_t bits = vshlq_n_s32(vaddq_s32(vsubq_s32(vreinterpretq_s32_f32(t), vdupq_n_s32(0x4B400000)), vdupq_n_s32(127)), 23);
    float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(bits));
    y = vbslq_f32(vcgtq_f32(x, vdupq_n_f32(88.72283935546875f)), vdupq_n_f32(__builtin_inff()), y);
    return vbslq_f32(vcltq_f32(x, vdupq_n_f32(-87.33654022216797f)), vdupq_n_f32(0.0f), y);
}

static void map_neon(const float *x, float *y, size_t n, int silu) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    size_t i = 0;
    for (; i < n; i += 4) {
        float t[4] = {0, 0, 0, 0};
        size_t left = n - i < 4 ? n - i : 4;
        const float *src = x + i;
        if (left < 4) { memcpy(t, src, left * sizeof(float)); src = t; }
        float32x4_t v = vld1q_f32(src);
        float32x4_t s = vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(v))));
        if (silu) s = vmulq_f32(v, s);
        if (left == 4) vst1q_f32(y + i, s);
        else {
            vst1q_f32(t, s);
            memcpy(y + i, t, left * sizeof(float));
        }
    }
}

void sxk_sigmoid_neon(const float *x, float *y, size_t n) { map_neon(x, y, n, 0); }
void sxk_silu_neon(const float *x, float *y, size_t n) { map_neon(x, y, n, 1); }
#endif
