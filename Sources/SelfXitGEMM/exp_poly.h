// The polynomial every vector e^x of the kernels shares (internal header): after the range
// reduction x = n·ln2 + r, |r| ≤ ln2/2 (ln 2 split 0.693359375 − 2.12194440e-4, so r is exact to
// a few ulp for |n| ≤ 128), e^r ≈ 1 + r·(C1 + r·(C2 + r·(C3 + r·(C4 + r·C5)))): a degree-5 fit for
// relative error (weighted least squares on Chebyshev nodes, reweighted towards the largest
// errors; tools/fit_exp_poly.py reproduces these constants and the error), 1.6e-7 at most over
// x in [−87.3, 88.7] evaluated in float — 5 FMAs where the Cephes form took 8 operations.
// SX_EXP_POLY evaluates it for sx_exp512 (avx512_helpers.h), sx_exp8 (avx2_helpers.h) and the
// NEON exp4 (arm/kernels_neon.c).
#ifndef SELFXIT_EXP_POLY_H
#define SELFXIT_EXP_POLY_H

#define SX_EXP_LN2_HI 0.693359375f
#define SX_EXP_LN2_LO 2.12194440e-4f  /* ln 2 = SX_EXP_LN2_HI − SX_EXP_LN2_LO */
#define SX_EXP_C5 8.2903150469e-3f
#define SX_EXP_C4 4.1897930205e-2f
#define SX_EXP_C3 1.6667635739e-1f
#define SX_EXP_C2 4.9999150634e-1f
#define SX_EXP_C1 9.9999970198e-1f

/* e^r by the polynomial above in Horner form, 1 + r·(C1 + r·(C2 + …)), written once for every ISA:
   FMA(a, b, c) is that ISA's a·b + c, SET1 its broadcast; `r` must be a plain variable (it is
   read five times). */
#define SX_EXP_POLY(FMA, SET1, r)                                                                   \
    FMA(FMA(FMA(FMA(FMA(SET1(SX_EXP_C5), r, SET1(SX_EXP_C4)), r, SET1(SX_EXP_C3)), r, SET1(SX_EXP_C2)), \
                r, SET1(SX_EXP_C1)),                                                                \
        r, SET1(1.0f))

#endif
