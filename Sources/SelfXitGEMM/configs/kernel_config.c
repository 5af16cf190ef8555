// One kernel configuration per ISA (the structure of XNNPACK's src/configs/): tile sizes and the
// kernels each ISA has, NULL where it has none. The tables are constant but for the x86 ones'
// CPU-dependent planner choices, set from the CPU's vendor and L2 size the first time each is
// asked for; which ones this machine may use is decided once from CPU detection
// (sx_gemm_isa_supported), and the default one from that and SELFXIT_GEMM_ISA
// (sx_gemm_default_isa). Tests walk every table the machine runs.
#include "../kernels_internal.h"

#include <pthread.h>
#include <stddef.h>

/// HardSwish, SiLU and Sigmoid: the activation codes above Clip.
#define SXK_EXT_ACTS ((1u << SX_GEMM_ACT_HARDSWISH) | (1u << SX_GEMM_ACT_SILU) | (1u << SX_GEMM_ACT_SIGMOID))

static const sx_kernel_config scalar_config = {
    .isa = SX_GEMM_ISA_SCALAR, .name = "scalar",
    .mr = SXK_MR_SCALAR, .nr = SXK_NR,
    // No direct product: im2col + GEMM, as before the tables (the portable direct product,
    // sxk_direct_portable, stays the public entry points' fallback and the kernels' reference).
    .direct_unit = 0, .ctd_max_pixels = 0, .small_rows_max = 0, .vector_floats = 1,
    .gemm = sxk_gemm_scalar,
    .direct = NULL,
    .ct = NULL, .ctd = NULL, .small_rows = NULL,
    .im2col = sxk_im2col_portable,
    .dw3x3_plane = sxk_dw3x3_plane_portable,
    .dw3x3_direct = NULL, .maxpool_direct = NULL,
    .deinterleave2 = sxk_deinterleave2_portable,
    .sigmoid = sxk_sigmoid_portable, .silu = sxk_silu_portable,
    .fused_acts = SXK_EXT_ACTS,  // every portable kernel stores through sxk_act1
    .sgemm_mc = 240, .sgemm_kc = 256, .sgemm_nc = 512,
    .grouped_conv = sxk_gconv_portable,  // grouped_conv.c: the phase-split row ring, plain C loops
};

#if SX_X86
static const sx_kernel_config avx2_config = {
    .isa = SX_GEMM_ISA_AVX2, .name = "avx2",
    // 6×16 tile: 12 ymm accumulators + 2 B vectors + 1 broadcast of 16 registers.
    .mr = SXK_MR_AVX2, .nr = SXK_NR,
    .direct_unit = 48, .ctd_max_pixels = 6, .small_rows_max = 8, .vector_floats = 8,
    .gemm = sxk_gemm_avx2,
    .direct = sxk_direct_avx2,
    .ct = NULL, .ctd = sxk_ctd_avx2,
    // Up to 8 rows: 6 × 16 columns or 8 × 8 a strip, B read once, in place (x86/small_rows_avx2.c).
    .small_rows = sxk_small_rows_avx2,
    // A kernel row at a time, one load serving two stride-2 taps (x86/im2col_avx2.c): the stride-2
    // 3×3 layers alone in 0.86–0.97 of their time on the portable im2col (Zen 3, BENCHMARKS §7.37).
    .im2col = sxk_im2col_avx2,
    .dw3x3_plane = sxk_dw3x3_plane_avx2,
    // In-place depthwise with plain loads inside the row and masked ones only on the edge strips
    // (x86/depthwise_avx2.c). The first port, 9 masked loads per 8 outputs, measured 14–215 %
    // slower than the padded copy + dw3x3_plane on 4 of 5 layers on Zen 4 (selfxit-kernelbench
    // tune, 2026-12-05): AVX2's vmaskmovps loads cost what AVX-512's masked loads do not.
    .dw3x3_direct = sxk_dw3x3_direct_avx2,
    // Stride 1 only on planes that fit L1 (8192 floats, 32 KB): on MobileNetV2's 112×112 layer the
    // strips lost 17–37 % to the padded copy's sequential reads (tune, Zen 4; 56×56 and smaller won).
    .dw3x3_direct_max_plane_s1 = 8192,
    // Plain loads inside the row, masked ones only on the edge strips (x86/pool_avx2.c).
    .maxpool_direct = sxk_maxpool_direct_avx2,
    .deinterleave2 = sxk_deinterleave2_avx2,
    .sigmoid = sxk_sigmoid_avx2, .silu = sxk_silu_avx2,
    // No fused HardSwish / SiLU / Sigmoid: every AVX2 epilogue could apply them (sx_act8), but on
    // EfficientNet-B0 (batch 1, 2 threads, Zen 4) the 1×1 layers ran level with the separate pass
    // and the depthwise layers 15–30 % slower (the exp's constants beside 9 weights and 9 taps
    // in 16 registers); BENCHMARKS §7.21.
    // Depthwise k×k in place (x86/depthwise_kxk_avx2.c): 8 columns × 7 rows a block, each tap one
    // load feeding every row it reaches; 5×5 layers 0.15–0.75 of the padded copy + dw_plane
    // (BENCHMARKS §7.22). It applies SiLU / HardSwish / Sigmoid itself, as every dw_direct does.
    // 3×3 keeps dw3x3_direct (faster on every plane but 7×7, stride 2 up to 1.6×).
    .dw_direct = sxk_dw_direct_avx2,
    .dw_plane = sxk_dw_plane_avx2,  // 5×5 depthwise through the padded copy, in C instead of Swift's loop
    // sx_sgemm in BLIS's order for a 6×16 tile (sxk_sgemm_block_avx2): a B panel of kc 288
    // (18 KB) in L1; the A block, 264×288 (297 KB), in L2 (Zen 2 512 KB; Zen 4 1 MB); the B
    // block, 288×2048 (2.3 MB), in L3, so a 2048-wide product packs its A once, not four times.
    // KC 288 (was 256): a 576-deep product in 2 K blocks, not 3 — C read back once less, the tile's
    // epilogue over 288 steps; MC 264 (was 168): a 256-row product is one A block, so B is packed
    // and used once (with sgemm.c's 8-row B packing in 512-column groups, sgemm_bench r 7, Zen 4,
    // AVX2 forced: 256×3136×576 0.96 → 0.99 of OpenBLAS Haswell, 64×3136×576 0.94 → 0.99,
    // BENCHMARKS §7.16; Haswell's 256 KB L2 would not hold the A block — unmeasured there; with
    // the lean full tile and A's next-panel prefetch, §7.18: 0.997–1.027 on the four conv shapes).
    .sgemm_mc = 264, .sgemm_kc = 288, .sgemm_nc = 2048,
    .sgemm_block = sxk_sgemm_block_avx2,
    .sgemm_skinny = sxk_sgemm_skinny_avx2, .sgemm_skinny_max_n = 32,
    // Grouped convolutions directly (4 channels × 3 strips of 8, x86/grouped_conv_avx2.c) instead
    // of im2col + a 6-row GEMM per group.
    .grouped_conv = sxk_gconv_avx2,

    // Where the 6×16 direct grid lost to the packed products in `selfxit-kernelbench tune`
    // (SELFXIT_GEMM_ISA=avx2, Zen 4, 2026-12-05, six runs at 1 and 2 threads): ResNet-18's stem
    // (K 27) by 30–94 % to im2col at 1 thread (a tie at 2); 1×1 layers with 64+ output channels
    // by 5–46 % in most runs (ResNet-50's 1024→256 on 14×14 and 256→64 on 56×56 to pointwise,
    // the stride-2 downsamples to im2col at 2 threads in every run: 0.10 against 0.13–0.15 ms);
    // MobileNetV2's 144→24 tied or won on the grid (15 % faster at 1 thread).
    .direct_min_k = 32, .direct_pointwise_max_m = 32,
    // Channel-major direct (6 pixels × 16 channels) against the grid and the packed products,
    // each forced (SELFXIT_GEMM_ISA=avx2 selfxit-kernelbench [r50|dn] min ctd|grid|packed 2 1 8 32,
    // Zen 4, BENCHMARKS §7.21): stride-1 3×3 layers on rows of 7–56 pixels 0.36–0.95 of the best
    // other path at batch 1 and 0.74–0.97 at batches 8 / 32 (one 1.24 at batch 8); stride-2 3×3
    // into rows of 7–14 0.71–1.00 at batch 1, 0.92–1.14 batched, into 28 (56-pixel input) 1.39;
    // 1×1 layers on 14×14 and 7×7 0.71–0.90 at batch 1 (1.10 for 512→2048), on 28×28 and 56×56
    // 1.2–1.5; stride-2 1×1 downsamples 0.92–1.24 at batch 1, 1.05–1.32 batched: never. 1×1
    // expansions (fewer inputs than outputs) on 7×7: 1.10 at batch 1 (512→2048), 1.31–1.36 at
    // batch 8 (EfficientNet-B0's 192→1152, 320→1280): never.
    .ctd_max_width = 56, .ctd_max_width_s2 = 14, .ctd_max_width_1x1 = 14, .ctd_max_width_1x1_s2 = 0,
    .ctd_1x1_expand_max_plane = 0,
};

/// The AVX2 table with the CPU-dependent choices set for this machine's CPU (filled once).
static sx_kernel_config avx2_tuned;
static pthread_once_t avx2_tuned_once = PTHREAD_ONCE_INIT;
static void avx2_tune_for_cpu(void) {
    avx2_tuned = avx2_config;
    // 1×1 layers of any width on the grid off AMD: the limit of 32 output channels above was
    // measured on Zen 4; on an Intel Xeon (Emerald Rapids) seen as AVX2-only (tools/cpuid_mask.c)
    // the grid beat the packed pointwise product on ResNet-50's 1×1 layers at 56×56 and 28×28 by
    // 6–19 % (selfxit-kernelbench tune, 1 and 2 threads, batch 1: 256→64 1.150 against 1.255 ms,
    // 512→128 1.062 against 1.134 at one thread); the 14×14 and 7×7 ones stay channel-major or
    // packed (the grid's rule skips planes that waste its columns). BENCHMARKS §7.31.
    if (!sxk_cpu_is_amd()) avx2_tuned.direct_pointwise_max_m = 0;
    // Batches of 8 samples a thread and up on planes under 7 pixels wide channel-major direct, on
    // AMD (the AVX-512 table's reason, `ctd_narrow_planes`). On an EPYC Zen 3 (2 threads)
    // ResNet-18 w64's 512→512 3×3 at 4×4, batch 32, ran 14.5–17.8 ms channel-major against
    // 20.6–22.8 packed (selfxit-kernelbench min ctd|packed 2 32); at batch 1 the packed product
    // kept the model 4 % faster (bench/ab_bench.py), so one shared sample stays packed. BENCHMARKS §7.34.
    if (sxk_cpu_is_amd()) avx2_tuned.ctd_narrow_planes = SX_CTD_NARROW_BATCHED;
    // 1×1 layers with more than 32 output channels through the packed pointwise product (neither
    // the grid nor channel-major) where a core's L2 is under 1 MB (Zen 2 and Zen 3 512 KB, Haswell
    // 256 KB; the limits above were measured with 1 MB on Zen 4 and 2 MB on the Xeon). On an AMD
    // EPYC Zen 3 (512 KB L2, 2 threads, batch 1), bench/ab_bench.py with the order swapped, every
    // 1×1 layer packed: ResNet-50 0.94 / 0.96 of the table's time, MobileNetV3-Large 0.95 / 0.96,
    // RegNetY-400MF 0.97 / 0.88, DenseNet-121 0.95 / 0.95, MobileNetV2 0.96 / 1.01,
    // EfficientNet-B0 1.00 / 0.97, ResNet-18 w64 1.01 / 1.01 (BENCHMARKS §7.32). The direct
    // products read B in place across the whole input (a 1×1 layer's K rows are whole planes), and
    // the grid once per 6 output channels, which a 512 KB L2 holds beside the weights only for
    // small layers. The narrow ones (MobileNet and EfficientNet projections to 16–32 channels) keep
    // the grid: it reads B M/6 ≤ 6 times, and packing it cost more than that (selfxit-kernelbench pw
    // cold, same CPU, 2 threads: 32→16 on 112×112 0.138 against 0.193 ms, 96→24 on 56×56 0.107
    // against 0.150, 192→32 on 28×28 0.063 against 0.119; bench/ab_bench.py, 2 threads, batch 1:
    // MobileNetV2 and MobileNetV3-Large in 0.96 of the all-packed time, EfficientNet-B0 0.98,
    // RegNetY-400MF 1.00; BENCHMARKS §7.33).
    //
    // Stride-2 convolutions with kernels over 1×1 on more than 16 channels (not the 7×7 stems, which
    // the grid runs 1.6× faster alone and level inside ResNet-50) on the packed product there too: inside the model
    // (bench/profile_compare.py, 2 threads, batch 1, Zen 3) ResNet-50's 3×3 downsampling layers ran
    // 1.96 / 1.94 / 2.35 ms im2col against 2.77 / 2.40 / 2.88 on the grid / channel-major, ResNet-18
    // w64's 0.27 / 0.29 / 0.40 against 0.35 / 0.33 / 0.41; their B, read in place as subsampled
    // planes, is scattered over the whole input, and im2col's packed panels are not.
    const int l2_kib = sxk_l2_cache_kib();
    if (l2_kib > 0 && l2_kib < 1024) {
        avx2_tuned.direct_pointwise_max_m = 32;
        avx2_tuned.ctd_max_width_1x1 = 0;
        avx2_tuned.ctd_max_width_s2 = 0;
        avx2_tuned.s2_packed = 1;
    }
}
static const sx_kernel_config *avx2_for_cpu(void) {
    pthread_once(&avx2_tuned_once, avx2_tune_for_cpu);
    return &avx2_tuned;
}

static const sx_kernel_config avx512_config = {
    .isa = SX_GEMM_ISA_AVX512, .name = "avx512",
    // 16×16 tiles (8×32 per pass over two panels); direct: 8 rows × 48 columns (24 zmm
    // accumulators); channel-major direct: 14 pixels × 32 channels (28 accumulators).
    .mr = SXK_MR_AVX512, .nr = SXK_NR,
    .direct_unit = 48, .ctd_max_pixels = 14, .small_rows_max = 8, .vector_floats = 16,
    .gemm = sxk_gemm_avx512,
    .direct = sxk_direct_avx512,
    .ct = sxk_ct_avx512, .ctd = sxk_ctd_avx512, .small_rows = sxk_small_rows_avx512,
    .im2col = sxk_im2col_avx512,
    .dw3x3_plane = sxk_dw3x3_plane_avx512,
    .dw3x3_direct = sxk_dw3x3_direct_avx512, .maxpool_direct = sxk_maxpool_direct_avx512,
    .deinterleave2 = sxk_deinterleave2_avx512,
    .sigmoid = sxk_sigmoid_avx512, .silu = sxk_silu_avx512,
    // Depthwise k×k in place (5×5 of MobileNetV3 / EfficientNet); HardSwish / SiLU / Sigmoid in
    // every epilogue (sx_act512) instead of a second pass over the output.
    .dw_direct = sxk_dw_direct_avx512,
    .fused_acts = SXK_EXT_ACTS,
    // 240×256 of A (240 KB) in L2 beside the 256 KB run of B panels sx_gemm_compute sweeps it over.
    .sgemm_mc = 240, .sgemm_kc = 256, .sgemm_nc = 512,
    // At most two panels of columns: A read in place, only B packed. Packing A for these ran
    // 0.32–0.62 of OpenBLAS SkylakeX on an Intel Xeon (n = 1–32; slower than the AVX2
    // configuration on the same core); in place 0.79–1.39 (BENCHMARKS §7.23).
    .sgemm_skinny = sxk_sgemm_skinny_avx512, .sgemm_skinny_max_n = 32,
    // Grouped convolutions directly (8 channels × 3 strips of 16, x86/grouped_conv_avx512.c) instead
    // of im2col + the 16-row GEMM, half idle for RegNet's 8-channel groups (BENCHMARKS §7.9).
    .grouped_conv = sxk_gconv_avx512,
    // Channel-major direct (14 pixels × 32 channels, DirectConvPlan): stride-1 kernels > 1×1 on
    // rows up to 56 pixels (four segments, §7.20), stride 2 up to 28 (112 off AMD:
    // `avx512_tune_for_cpu`), 1×1 up to 14 (§7.12–7.14).
    .ctd_max_width = 56, .ctd_max_width_s2 = 28, .ctd_max_width_1x1 = 14, .ctd_max_width_1x1_s2 = 14,
    // 1×1 expansions channel-major below 64 pixels (7×7: the packed product measured 4–20 % slower);
    // 256 off AMD (`avx512_tune_for_cpu`).
    .ctd_1x1_expand_max_plane = 64,
    // Measured on AMD Zen 4 (Conv2D's init: 512→512 3×3 at 4×4, 2 threads, 0.361 ms channel-major
    // against 0.491 packed at batch 1, 10.32 against 10.79 at batch 32); `avx512_for_cpu` turns it
    // off on other vendors' CPUs: on an Intel Xeon (Emerald Rapids) the same layer ran 0.45–0.72
    // against 0.30–0.62 ms at batch 1 and 16.1–17.1 against 8.8–11.2 ms at batch 32
    // (selfxit-kernelbench min [packed] 2 1|32, tune 2 1), channel-major not gaining from the
    // second thread; ResNet-18 w64 b1 ours/ORT 1.15–1.33 → 1.05–1.23 (BENCHMARKS §7.24).
    .ctd_narrow_planes = SX_CTD_NARROW_SHARED | SX_CTD_NARROW_BATCHED,
};

/// The AVX-512 table with the CPU-dependent choices set for this machine's CPU (filled once).
static sx_kernel_config avx512_tuned;
static pthread_once_t avx512_tuned_once = PTHREAD_ONCE_INIT;
static void avx512_tune_for_cpu(void) {
    avx512_tuned = avx512_config;
    const int amd = sxk_cpu_is_amd();
    avx512_tuned.ctd_narrow_planes = amd ? SX_CTD_NARROW_SHARED | SX_CTD_NARROW_BATCHED : 0;
    // Stride-2 rows up to 112 pixels channel-major off AMD: the 7×7 stem (3→64 at 224, K 147) is
    // the only dense layer of the benchmark models it moves. On an Intel Xeon (Emerald Rapids) it
    // ran 0.90–0.95 of the grid's time inside ResNet-50 and DenseNet-121 (bench/profile_ab.py, 8–12
    // alternating rounds, nodes around it ±3 %) and the tuning check had flagged it (+8–9 %); on
    // Zen 4 the stem channel-major ran slower inside the model (1.42–1.54 against 1.23–1.29 ms,
    // DirectConvPlan, BENCHMARKS §7.12), so AMD keeps 28. The 1×1 widths stay 14 on both: 28-pixel
    // rows (ResNet-50's 512→128 at 28×28, 256→512 stride 2), faster alone, ran 1.04–1.21 of the grid
    // inside the model on the Xeon as on Zen 4 (BENCHMARKS §7.26).
    //
    // 1×1 expansions channel-major on planes under 256 pixels off AMD: ResNet-50's layer3
    // 256→1024 at 14×14 (+ residual in place) ran 0.94–0.99 of the grid's time inside the model on
    // the Xeon, one and two threads (bench/profile_ab.py, 10–12 rounds, paired median 0.963–0.976
    // at one thread; alone 0.86–0.94, selfxit-kernelbench r50 / tune 1 1). The 28×28 expansion
    // (128→512) stays on the grid (channel-major 1.09 alone). Zen 4 had measured the 7×7 limit
    // (BENCHMARKS §7.27).
    if (!amd) {
        avx512_tuned.ctd_max_width_s2 = 112;
        avx512_tuned.ctd_1x1_expand_max_plane = 256;
    }
}
static const sx_kernel_config *avx512_for_cpu(void) {
    pthread_once(&avx512_tuned_once, avx512_tune_for_cpu);
    return &avx512_tuned;
}
#endif

#if SX_ARM64
static const sx_kernel_config neon_config = {
    .isa = SX_GEMM_ISA_NEON, .name = "neon",
    // 6×16 tile: 24 q-register accumulators + 4 B vectors + 2 A vectors (lane-indexed FMAs) of 32.
    .mr = SXK_MR_NEON, .nr = SXK_NR,
    .direct_unit = 48, .ctd_max_pixels = 0, .small_rows_max = 0, .vector_floats = 4,
    .gemm = sxk_gemm_neon,
    .direct = sxk_direct_neon,
    .ct = NULL, .ctd = NULL, .small_rows = NULL,
    .im2col = sxk_im2col_portable,
    .dw3x3_plane = sxk_dw3x3_plane_neon,
    .dw3x3_direct = NULL, .maxpool_direct = NULL,
    .deinterleave2 = sxk_deinterleave2_portable,
    .sigmoid = sxk_sigmoid_neon, .silu = sxk_silu_neon,
    .sgemm_mc = 240, .sgemm_kc = 256, .sgemm_nc = 512,
};
#endif

const sx_kernel_config *sx_kernel_config_for(int isa) {
    if (!sx_gemm_isa_supported(isa)) return NULL;
    switch (isa) {
    case SX_GEMM_ISA_SCALAR: return &scalar_config;
#if SX_X86
    case SX_GEMM_ISA_AVX2: return avx2_for_cpu();
    case SX_GEMM_ISA_AVX512: return avx512_for_cpu();
#endif
#if SX_ARM64
    case SX_GEMM_ISA_NEON: return &neon_config;
#endif
    default: return NULL;
    }
}

const sx_kernel_config *sx_kernel_config_default(void) {
    const sx_kernel_config *cfg = sx_kernel_config_for(sx_gemm_default_isa());
    return cfg ? cfg : &scalar_config;
}
