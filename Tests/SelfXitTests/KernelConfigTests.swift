import XCTest
@testable import SelfXit
import SelfXitGEMM

/// The kernel configuration tables (configs/kernel_config.c): what each ISA has, that planners
/// read it, and the kernels every configuration carries (activations) against a double
/// reference. Which configurations ran and which were skipped is printed, never silent.
final class KernelConfigTests: XCTestCase {
    func testConfigurationTables() {
        XCTAssertNotNil(PackedGEMM.config(PackedGEMM.scalar), "the portable configuration runs everywhere")
        XCTAssertNotNil(PackedGEMM.config(sx_gemm_default_isa()))
        XCTAssertNil(sx_kernel_config_for(-1))
        XCTAssertNil(sx_kernel_config_for(Int32(SX_GEMM_ISA_COUNT)))
        #if arch(x86_64)
        XCTAssertNil(PackedGEMM.config(PackedGEMM.neon), "NEON on x86")
        #elseif arch(arm64)
        XCTAssertNotNil(PackedGEMM.config(PackedGEMM.neon), "NEON on AArch64")
        XCTAssertNil(PackedGEMM.config(PackedGEMM.avx2), "AVX2 on AArch64")
        #endif
        for isa in PackedGEMM.allISAs {
            guard let cfg = PackedGEMM.config(isa)?.pointee else {
                print("kernel config \(isaName(isa)): not available on this CPU (its tests are skipped)")
                continue
            }
            let name = String(cString: cfg.name)
            XCTAssertEqual(cfg.isa, isa, name)
            XCTAssertEqual(cfg.nr, Int32(SX_GEMM_NR), name)
            XCTAssertEqual(sx_gemm_mr(isa), cfg.mr, name)
            XCTAssertTrue(cfg.mr > 0 && cfg.mr <= 16 && 240 % cfg.mr == 0, "\(name): MR must divide sx_sgemm's MC (240)")
            XCTAssertEqual(cfg.direct != nil, cfg.direct_unit > 0, "\(name): direct_unit iff a direct kernel")
            if cfg.direct != nil { XCTAssertEqual(cfg.direct_unit % cfg.nr, 0, name) }
            XCTAssertEqual(cfg.ctd != nil, cfg.ctd_max_pixels > 0, "\(name): ctd_max_pixels iff a ctd kernel")
            XCTAssertEqual(cfg.small_rows != nil, cfg.small_rows_max > 0, "\(name): small_rows_max iff small_rows")
            XCTAssertTrue(cfg.ctd == nil || cfg.direct != nil, "\(name): channel-major direct needs the direct planner")
            XCTAssertTrue(cfg.ctd_narrow_planes == 0 || cfg.ctd != nil, "\(name): ctd_narrow_planes needs a ctd kernel")
            // Set once from the CPU (the AVX-512 table's vendor-dependent fields): asked again, the same table.
            XCTAssertEqual(sx_kernel_config_for(cfg.isa), sx_kernel_config_for(cfg.isa), name)
            XCTAssertTrue(cfg.gemm != nil && cfg.im2col != nil && cfg.dw3x3_plane != nil && cfg.deinterleave2 != nil
                          && cfg.sigmoid != nil && cfg.silu != nil, "\(name): a mandatory kernel is missing")
            func has(_ p: Bool, _ what: String) -> String { p ? what : "" }
            let kernels = [has(cfg.direct != nil, "direct"), has(cfg.ct != nil, "ct"), has(cfg.ctd != nil, "ctd"),
                           has(cfg.small_rows != nil, "small_rows"), has(cfg.dw3x3_direct != nil, "dw3x3_direct"),
                           has(cfg.maxpool_direct != nil, "maxpool_direct"), has(cfg.dw_direct != nil, "dw_direct"),
                           has(cfg.dw_plane != nil, "dw_plane")].filter { !$0.isEmpty }
            print("kernel config \(name): runs here; MR \(cfg.mr), \(cfg.vector_floats) floats a vector; "
                  + "gemm, im2col, dw3x3_plane, sigmoid, silu + [\(kernels.joined(separator: ", "))]"
                  + (cfg.ctd != nil ? "; channel-major rows up to \(cfg.ctd_max_width) px (stride 2: \(cfg.ctd_max_width_s2), "
                      + "1×1: \(cfg.ctd_max_width_1x1), 1×1 stride 2: \(cfg.ctd_max_width_1x1_s2))" : "")
                  + (cfg.ctd_narrow_planes & Int32(SX_CTD_NARROW_SHARED) != 0 ? "; narrow planes channel-major when shared" : "")
                  + (cfg.ctd_narrow_planes & Int32(SX_CTD_NARROW_BATCHED) != 0 ? "; narrow planes channel-major from 8 samples a thread" : ""))
        }
    }

    /// The override reaches every planner: a kernel created under a forced configuration uses it.
    func testOverrideReachesPlanners() {
        forEachKernelConfig("planner override") { cfg in
            XCTAssertEqual(PackedGEMM.currentConfig, cfg)
            let g = Conv2DGeometry(inChannels: 8, inHeight: 20, inWidth: 20, outChannels: 8, outHeight: 20, outWidth: 20,
                                   kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, groups: 8)
            XCTAssertEqual(DepthwisePlan(g).config, cfg)
            XCTAssertEqual(DepthwisePlan(g).readsInPlace, cfg.pointee.dw3x3_direct != nil || cfg.pointee.dw_direct != nil)
            let g5 = Conv2DGeometry(inChannels: 8, inHeight: 20, inWidth: 20, outChannels: 8, outHeight: 10, outWidth: 10,
                                    kernelHeight: 5, kernelWidth: 5, strideH: 2, strideW: 2, padTop: 2, padLeft: 2, groups: 8)
            XCTAssertEqual(DepthwisePlan(g5).readsInPlace, cfg.pointee.dw_direct != nil)
            XCTAssertEqual(PackedGEMM.fused(.hardSwish, config: cfg).separate, cfg.pointee.fused_acts == 0)
            let d = Conv2DGeometry(inChannels: 8, inHeight: 20, inWidth: 20, outChannels: 8, outHeight: 20, outWidth: 20,
                                   kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1)
            let plan = DirectConvPlan(d, config: cfg)
            XCTAssertEqual(plan != nil, cfg.pointee.direct != nil)
            if let plan { XCTAssertEqual(plan.unitColumns, Int(cfg.pointee.direct_unit)) }
        }
    }

    /// Sigmoid and SiLU of every configuration: random values over [−100, 100] and the edges
    /// (NaN, ±inf, huge, the exp limits, denormals, ±0), every length 0…40 (vector tails),
    /// in place and out of place, against a double reference. Nothing may trap.
    func testActivationsEveryConfig() {
        var rng = SeededRandom(14)
        var values: [Float] = [.nan, -.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                               1e30, -1e30, 88.72, 88.73, -87.33, -87.34, 88.3, -87.3, 1e-40, -1e-40, 0, -0.0,
                               .leastNormalMagnitude, 1, -1, 20, -20, 100, -100, 1e-7]
        values += (0..<2000).map { _ in Float(rng.uniform() * 200 - 100) }
        values += (0..<2000).map { _ in Float(rng.uniform() * 10 - 5) }
        forEachKernelConfig("sigmoid/SiLU") { cfg in
            let name = String(cString: cfg.pointee.name)
            for (label, fn, ref) in [("sigmoid", cfg.pointee.sigmoid!, { (x: Double) in 1 / (1 + Foundation.exp(-x)) }),
                                     ("silu", cfg.pointee.silu!, { (x: Double) in x / (1 + Foundation.exp(-x)) })] {
                var out = [Float](repeating: 7, count: values.count + 1)
                values.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { fn(x.baseAddress!, $0.baseAddress!, values.count) } }
                XCTAssertEqual(out[values.count], 7, "\(name) \(label) wrote past n")
                var worst = 0.0
                for (x, y) in zip(values, out) {
                    if x.isNaN { XCTAssertTrue(y.isNaN, "\(name) \(label)(NaN) = \(y)"); continue }
                    let want = label == "silu" && x == -.infinity ? Double.nan : ref(Double(x))
                    if want.isNaN { XCTAssertTrue(y.isNaN, "\(name) \(label)(\(x)) = \(y)"); continue }
                    if want.isInfinite { XCTAssertEqual(Double(y), want, "\(name) \(label)(\(x))"); continue }
                    let err = abs(Double(y) - want) / max(1e-30, abs(want))
                    if abs(want) > 1e-30 { worst = max(worst, err) }
                    XCTAssertLessThanOrEqual(err, 1e-5, "\(name) \(label)(\(x)) = \(y), want \(want)")
                }
                print("\(label) on \(name): worst relative error \(worst)")
                // Every tail length, in place.
                for n in 0...40 {
                    var x = Array(values[100..<(100 + n)])
                    let before = x
                    x.withUnsafeMutableBufferPointer { fn($0.baseAddress!, $0.baseAddress!, n) }
                    for (a, y) in zip(before, x) {
                        XCTAssertEqual(Double(y), ref(Double(a)), accuracy: 1e-5 * max(1, abs(ref(Double(a)))), "\(name) \(label) n \(n)")
                    }
                }
            }
        }
    }

    /// Every alternative `selfxit-kernelbench tune` times computes what the rule's path computes
    /// (on every configuration), so the tuning check compares like with like.
    func testForcedPlanChoicesAgree() {
        let layers = [
            Conv2DGeometry(inChannels: 40, inHeight: 14, inWidth: 14, outChannels: 37, outHeight: 14, outWidth: 14,
                           kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1),
            Conv2DGeometry(inChannels: 130, inHeight: 7, inWidth: 7, outChannels: 50, outHeight: 7, outWidth: 7,
                           kernelHeight: 1, kernelWidth: 1),
            Conv2DGeometry(inChannels: 20, inHeight: 30, inWidth: 34, outChannels: 24, outHeight: 15, outWidth: 17,
                           kernelHeight: 3, kernelWidth: 3, strideH: 2, strideW: 2, padTop: 1, padLeft: 1),
            Conv2DGeometry(inChannels: 12, inHeight: 19, inWidth: 23, outChannels: 12, outHeight: 10, outWidth: 12,
                           kernelHeight: 3, kernelWidth: 3, strideH: 2, strideW: 2, padTop: 1, padLeft: 1, groups: 12),
        ]
        let choices: [Conv2DKernel.PlanChoice] = [.packed(channelMajor: false), .packed(channelMajor: true),
                                                 .direct(channelMajor: false), .direct(channelMajor: true),
                                                 .depthwise(inPlace: true), .depthwise(inPlace: false)]
        forEachKernelConfig("forced plan choices") { cfg in
            var rng = SeededRandom(41)
            for g in layers {
                let batch = 3
                let w = rng.array(g.outChannels * g.inChannels / g.groups * g.kernelHeight * g.kernelWidth)
                let bias = rng.array(g.outChannels)
                let x = rng.array(batch * g.inChannels * g.inHeight * g.inWidth)
                let outCount = batch * g.outChannels * g.outHeight * g.outWidth
                let pool = ThreadPool(threadCount: 2)
                func run(_ choice: Conv2DKernel.PlanChoice) -> (String, [Float]) {
                    let k = Conv2DKernel(geometry: g, weights: w, bias: bias, activation: .relu, plan: choice)
                    var y = [Float](repeating: .nan, count: outCount)
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, 2 * k.scratchFloatsPerThread))
                    defer { scratch.deallocate() }
                    withPointers([x], &y) { k.run(input: $0[0], residual: nil, output: $1, batch: batch, scratch: scratch, pool: pool) }
                    return (k.algorithmName, y)
                }
                let (ruleName, want) = run(.rule)
                for c in choices {
                    let (name, y) = run(c)
                    assertClose(y, want.map { Double($0) }, "\(g) \(name) vs rule \(ruleName) on \(String(cString: cfg.pointee.name))")
                }
            }
        }
    }
}
