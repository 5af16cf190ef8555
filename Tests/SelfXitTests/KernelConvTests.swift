import XCTest
@testable import SelfXit
import SelfXitGEMM

final class KernelConvTests: XCTestCase {
    /// Plain-loop convolution with Double accumulation.
    func reference(_ g: Conv2DGeometry, _ x: [Float], _ w: [Float], _ bias: [Float]?, _ residual: [Float]?,
                   _ act: Activation, batch: Int) -> [Double] {
        let icg = g.inChannels / g.groups, ocg = g.outChannels / g.groups
        var y = [Double](repeating: 0, count: batch * g.outChannels * g.outHeight * g.outWidth)
        for n in 0..<batch {
            for oc in 0..<g.outChannels {
                let grp = oc / ocg
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        var s = Double(bias?[oc] ?? 0)
                        for ic in 0..<icg {
                            let c = grp * icg + ic
                            for ky in 0..<g.kernelHeight {
                                let iy = oy * g.strideH + ky * g.dilationH - g.padTop
                                if iy < 0 || iy >= g.inHeight { continue }
                                for kx in 0..<g.kernelWidth {
                                    let ix = ox * g.strideW + kx * g.dilationW - g.padLeft
                                    if ix < 0 || ix >= g.inWidth { continue }
                                    s += Double(x[((n * g.inChannels + c) * g.inHeight + iy) * g.inWidth + ix])
                                        * Double(w[((oc * icg + ic) * g.kernelHeight + ky) * g.kernelWidth + kx])
                                }
                            }
                        }
                        let o = ((n * g.outChannels + oc) * g.outHeight + oy) * g.outWidth + ox
                        if let residual { s += Double(residual[o]) }
                        y[o] = referenceActivation(act, s)
                    }
                }
            }
        }
        return y
    }

    /// Geometry with output size derived from symmetric-or-not pads (bottom/right given explicitly).
    func geometry(c: Int, h: Int, w: Int, oc: Int, k: (Int, Int), s: (Int, Int) = (1, 1), d: (Int, Int) = (1, 1),
                  pads: (Int, Int, Int, Int) = (0, 0, 0, 0), groups: Int = 1) -> Conv2DGeometry {
        let oh = (h + pads.0 + pads.2 - d.0 * (k.0 - 1) - 1) / s.0 + 1
        let ow = (w + pads.1 + pads.3 - d.1 * (k.1 - 1) - 1) / s.1 + 1
        return Conv2DGeometry(inChannels: c, inHeight: h, inWidth: w, outChannels: oc, outHeight: oh, outWidth: ow,
                              kernelHeight: k.0, kernelWidth: k.1, strideH: s.0, strideW: s.1,
                              dilationH: d.0, dilationW: d.1, padTop: pads.0, padLeft: pads.1, groups: groups)
    }

    /// `inPlace`: the residual is the output buffer itself (as the memory plan lays out a
    /// ResNet's expanding convolutions), else a buffer of its own.
    func check(_ g: Conv2DGeometry, bias: Bool = true, residual: Bool = false, inPlace: Bool = false, act: Activation = .none,
               batches: [Int] = [1, 5], threads: [Int] = [1, 2, 3], seed: UInt64 = 7, plan: Conv2DKernel.PlanChoice = .rule,
               file: StaticString = #filePath, line: UInt = #line) {
        var rng = SeededRandom(seed)
        let w = rng.array(g.outChannels * (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth)
        let b = bias ? rng.array(g.outChannels) : nil
        let kernel = Conv2DKernel(geometry: g, weights: w, bias: b, activation: act, plan: plan)
        for batch in batches {
            let x = rng.array(batch * g.inChannels * g.inPlane)
            let outCount = batch * g.outChannels * g.outPlane
            let r = residual ? rng.array(outCount) : nil
            let expected = reference(g, x, w, b, r, act, batch: batch)
            for t in threads {
                let pool = ThreadPool(threadCount: t)
                var y = inPlace ? r! : [Float](repeating: .nan, count: outCount)
                var scratch = [Float](repeating: .nan, count: max(1, t * kernel.scratchFloatsPerThread))
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { yp in
                        scratch.withUnsafeMutableBufferPointer { sp in
                            if inPlace {
                                kernel.run(input: xp.baseAddress!, residual: UnsafePointer(yp.baseAddress!), output: yp.baseAddress!,
                                           batch: batch, scratch: sp.baseAddress!, pool: pool)
                            } else if let r {
                                r.withUnsafeBufferPointer { rp in
                                    kernel.run(input: xp.baseAddress!, residual: rp.baseAddress!, output: yp.baseAddress!,
                                               batch: batch, scratch: sp.baseAddress!, pool: pool)
                                }
                            } else {
                                kernel.run(input: xp.baseAddress!, residual: nil, output: yp.baseAddress!,
                                           batch: batch, scratch: sp.baseAddress!, pool: pool)
                            }
                        }
                    }
                }
                assertClose(y, expected, "\(g) batch \(batch) threads \(t) \(act)\(inPlace ? " in place" : "")", file: file, line: line)
            }
        }
    }

    func testPointwise() {
        check(geometry(c: 16, h: 7, w: 9, oc: 40, k: (1, 1)))
        check(geometry(c: 48, h: 3, w: 3, oc: 8, k: (1, 1)), bias: false, residual: true, act: .relu)
    }

    func testPointwiseStrided() { check(geometry(c: 8, h: 9, w: 9, oc: 12, k: (1, 1), s: (2, 2))) }

    func test3x3() {
        check(geometry(c: 8, h: 10, w: 11, oc: 20, k: (3, 3), pads: (1, 1, 1, 1)))
        check(geometry(c: 8, h: 10, w: 11, oc: 20, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)), residual: true, act: .relu)
        check(geometry(c: 3, h: 6, w: 40, oc: 70, k: (3, 3), pads: (1, 1, 1, 1)), act: .silu)
    }

    func test7x7Stride2Pad3() { check(geometry(c: 3, h: 23, w: 21, oc: 16, k: (7, 7), s: (2, 2), pads: (3, 3, 3, 3))) }

    func testDilation() { check(geometry(c: 5, h: 12, w: 12, oc: 6, k: (3, 3), d: (2, 2), pads: (2, 2, 2, 2))) }

    func testAsymmetricPads() {
        check(geometry(c: 4, h: 9, w: 8, oc: 6, k: (3, 2), s: (2, 1), pads: (0, 1, 2, 0)))
        check(geometry(c: 6, h: 9, w: 8, oc: 6, k: (3, 3), pads: (0, 2, 1, 0), groups: 6), residual: true)
    }

    func testGrouped() {
        check(geometry(c: 8, h: 7, w: 7, oc: 12, k: (3, 3), pads: (1, 1, 1, 1), groups: 4), act: .hardSwish)
        check(geometry(c: 8, h: 5, w: 5, oc: 8, k: (1, 1), groups: 2), residual: true)
    }

    /// Grouped (not depthwise) convolutions on every kernel configuration this machine runs:
    /// through `GroupedConvPlan` where the configuration has `grouped_conv` (the test asserts that
    /// it is taken), im2col otherwise. RegNet's 8- and 16-channel groups at stride 1 and 2,
    /// ResNeXt's 4-channel ones, blocks of 8 with a remainder, odd planes, 5×5, dilation, asymmetric
    /// pads, 1×1 groups; every fused activation and the separate ones.
    func testGroupedEveryConfig() {
        forEachKernelConfig("grouped conv") { cfg in
            let cases: [(Conv2DGeometry, Bool, Activation)] = [
                (geometry(c: 48, h: 28, w: 28, oc: 48, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1), groups: 6), false, .relu),
                (geometry(c: 24, h: 15, w: 17, oc: 24, k: (3, 3), pads: (1, 1, 1, 1), groups: 3), true, .relu),
                (geometry(c: 32, h: 14, w: 14, oc: 32, k: (3, 3), pads: (1, 1, 1, 1), groups: 2), true, .none),
                (geometry(c: 32, h: 11, w: 23, oc: 32, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1), groups: 8), false, .clip(min: 0, max: 6)),
                (geometry(c: 12, h: 9, w: 10, oc: 30, k: (3, 3), pads: (1, 1, 1, 1), groups: 3), false, .silu),
                (geometry(c: 10, h: 13, w: 12, oc: 4, k: (5, 5), s: (2, 2), pads: (2, 1, 2, 1), groups: 2), true, .hardSwish),
                (geometry(c: 6, h: 12, w: 12, oc: 9, k: (3, 3), d: (2, 2), pads: (2, 2, 2, 2), groups: 3), false, .sigmoid),
                (geometry(c: 8, h: 9, w: 8, oc: 8, k: (3, 2), s: (2, 1), pads: (0, 1, 2, 0), groups: 4), true, .none),
                (geometry(c: 8, h: 5, w: 5, oc: 8, k: (1, 1), groups: 2), true, .relu),
            ]
            for (g, residual, act) in cases {
                if cfg.pointee.grouped_conv != nil {
                    let k = Conv2DKernel(geometry: g, weights: [Float](repeating: 0, count: g.outChannels * g.inChannels / g.groups * g.kernelHeight * g.kernelWidth),
                                         bias: nil, activation: act)
                    XCTAssertEqual(k.algorithmName, "grouped", "\(g) on \(String(cString: cfg.pointee.name))")
                }
                check(g, residual: residual, act: act, batches: [1, 3], threads: [1, 2])
            }
        }
    }

    /// Depthwise on every kernel configuration this machine runs (in-place 3×3 where the
    /// configuration has `dw3x3_direct`, its `dw3x3_plane` through the padded copy otherwise).
    func testDepthwiseEveryConfig() {
        forEachKernelConfig("depthwise") { _ in testDepthwise() }
    }

    func testDepthwise() {
        check(geometry(c: 5, h: 19, w: 37, oc: 5, k: (3, 3), pads: (1, 1, 1, 1), groups: 5), act: .relu)
        check(geometry(c: 5, h: 19, w: 37, oc: 5, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1), groups: 5), residual: true)
        check(geometry(c: 4, h: 14, w: 14, oc: 4, k: (5, 5), pads: (2, 2, 2, 2), groups: 4), act: .clip(min: 0, max: 6))
        check(geometry(c: 4, h: 14, w: 14, oc: 4, k: (5, 5), s: (2, 2), pads: (2, 2, 2, 2), groups: 4), bias: false)
        check(geometry(c: 3, h: 15, w: 20, oc: 3, k: (3, 3), s: (3, 3), d: (2, 2), pads: (2, 2, 2, 2), groups: 3))
        check(geometry(c: 3, h: 6, w: 6, oc: 3, k: (3, 3), s: (1, 1), d: (2, 2), pads: (2, 2, 2, 2), groups: 3))
        // Planes of at most 256 pixels: a batch below the thread count splits the planes, in
        // shares that may be short or empty (4 planes over 3 threads).
        check(geometry(c: 4, h: 7, w: 7, oc: 4, k: (3, 3), pads: (1, 1, 1, 1), groups: 4), act: .relu)
        check(geometry(c: 17, h: 14, w: 14, oc: 17, k: (3, 3), pads: (1, 1, 1, 1), groups: 17), residual: true)
        check(geometry(c: 9, h: 14, w: 14, oc: 9, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1), groups: 9), act: .clip(min: 0, max: 6))
        testDepthwiseKxK()
    }

    /// Kernels other than 3×3 (in place through `dw_direct` where the configuration has it):
    /// 5×5 / 7×7 at stride 1 and 2 over planes one, two and three 16-column strips wide, the
    /// activations the kernel fuses (HardSwish, SiLU, Sigmoid) and one it does not (HardSigmoid),
    /// residuals, MobileNetV3's 7×7 planes (split by channels at a small batch), asymmetric
    /// pads, no padding, a 3×5 and a 1×1 kernel (the run-time-size code), and dilation 2 (the
    /// padded copy).
    func testDepthwiseKxK() {
        check(geometry(c: 3, h: 23, w: 37, oc: 3, k: (5, 5), pads: (2, 2, 2, 2), groups: 3), act: .hardSwish)
        check(geometry(c: 3, h: 23, w: 37, oc: 3, k: (5, 5), s: (2, 2), pads: (2, 2, 2, 2), groups: 3), residual: true, act: .silu)
        check(geometry(c: 2, h: 9, w: 40, oc: 2, k: (7, 7), pads: (3, 3, 3, 3), groups: 2), act: .sigmoid)
        check(geometry(c: 2, h: 17, w: 70, oc: 2, k: (7, 7), s: (2, 2), pads: (3, 3, 3, 3), groups: 2), act: .relu)
        check(geometry(c: 9, h: 7, w: 7, oc: 9, k: (5, 5), pads: (2, 2, 2, 2), groups: 9), residual: true, act: .hardSwish)
        check(geometry(c: 5, h: 14, w: 14, oc: 5, k: (5, 5), s: (2, 2), pads: (1, 2, 2, 1), groups: 5), act: .hardSigmoid(alpha: 0.2, beta: 0.5))
        check(geometry(c: 2, h: 12, w: 51, oc: 2, k: (5, 5), s: (2, 2), groups: 2), bias: false, act: .clip(min: -0.5, max: 0.7))
        check(geometry(c: 3, h: 11, w: 19, oc: 3, k: (3, 5), pads: (1, 2, 1, 2), groups: 3), residual: true, act: .silu)
        check(geometry(c: 3, h: 6, w: 21, oc: 3, k: (1, 1), s: (2, 2), groups: 3), act: .hardSwish)
        check(geometry(c: 3, h: 13, w: 13, oc: 3, k: (5, 5), d: (2, 2), pads: (4, 4, 4, 4), groups: 3), act: .silu)
        check(geometry(c: 2, h: 20, w: 20, oc: 2, k: (9, 9), pads: (4, 4, 4, 4), groups: 2), act: .none)
    }

    /// Stride-1 convolutions on planes large enough run as implicit GEMMs with AVX-512: padded
    /// grids whose extra columns are dropped, asymmetric pads, dilation, residuals, a K split into
    /// blocks, batches below and above the thread count.
    /// Every kernel configuration this machine runs, forced (so that a run with SELFXIT_GEMM_ISA
    /// lowered still tests these paths): those with a `direct` kernel must take it.
    func testDirectImplicitGEMM() throws {
        forEachKernelConfig("direct convolutions") { cfg in runDirectSuite(cfg) }
    }

    /// Whether `cfg` has a channel-major direct kernel and its widths (`ctd_max_width…`, per kind:
    /// kernels over 1×1 or 1×1, stride 1 or 2) take `g`'s output rows — the cases below are
    /// chosen to pass the planner's other conditions (rows of 7 or more, K ≥ 128, more inputs
    /// than outputs or a small plane for 1×1).
    /// Whether `cfg` sends `g`, a stride-2 kernel over 1×1 on more channels than a stem, to the
    /// packed product whatever its widths (`s2_packed`: AVX2 with an L2 under 1 MB).
    func stride2GoesPacked(_ g: Conv2DGeometry, _ cfg: UnsafePointer<sx_kernel_config>) -> Bool {
        g.strideH == 2 && g.strideW == 2 && !(g.kernelHeight == 1 && g.kernelWidth == 1)
            && g.inChannels > DirectConvPlan.maxPhaseSplitChannels && cfg.pointee.s2_packed != 0
    }

    /// Whether the configuration lets a 1×1 layer with `g`'s output channels on the grid
    /// (`direct_pointwise_max_m`: 0 any, negative none).
    func pointwiseGridAllowed(_ g: Conv2DGeometry, _ cfg: UnsafePointer<sx_kernel_config>) -> Bool {
        let maxM = Int(cfg.pointee.direct_pointwise_max_m)
        return maxM == 0 || (maxM > 0 && g.outChannels <= maxM)
    }

    func channelMajorWidthAllowed(_ g: Conv2DGeometry, _ cfg: UnsafePointer<sx_kernel_config>) -> Bool {
        let c = cfg.pointee, pointwise = g.kernelHeight == 1 && g.kernelWidth == 1, s2 = g.strideH == 2 && g.strideW == 2
        let width = pointwise ? (s2 ? c.ctd_max_width_1x1_s2 : c.ctd_max_width_1x1) : (s2 ? c.ctd_max_width_s2 : c.ctd_max_width)
        let expansion = pointwise && !s2 && g.inChannels < g.outChannels
        return c.ctd != nil && g.outWidth <= Int(width) && (!expansion || g.outHeight * g.outWidth < Int(c.ctd_1x1_expand_max_plane))
            && !stride2GoesPacked(g, cfg)
    }

    func runDirectSuite(_ cfg: UnsafePointer<sx_kernel_config>) {
        let cases: [(Conv2DGeometry, Bool, Activation)] = [
            (geometry(c: 20, h: 12, w: 16, oc: 37, k: (1, 1)), true, .relu),
            (geometry(c: 9, h: 17, w: 23, oc: 33, k: (3, 3), pads: (1, 1, 1, 1)), false, .clip(min: 0, max: 6)),
            (geometry(c: 7, h: 16, w: 30, oc: 18, k: (3, 3), pads: (0, 1, 2, 1)), true, .none),
            (geometry(c: 5, h: 12, w: 40, oc: 17, k: (3, 3), d: (2, 2), pads: (2, 2, 2, 2)), false, .silu),
            (geometry(c: 4, h: 10, w: 44, oc: 8, k: (5, 5), pads: (2, 2, 2, 2)), true, .relu),
            (geometry(c: 600, h: 8, w: 8, oc: 460, k: (1, 1)), true, .relu),
            // Channel-major 1×1 on a plane as wide as its grid: the rows' pixels cut as one run
            // (63 pixels into segments of 12 and 13; a subsampled 7×7 plane).
            (geometry(c: 130, h: 7, w: 9, oc: 50, k: (1, 1)), true, .clip(min: 0, max: 6)),
            (geometry(c: 130, h: 7, w: 7, oc: 200, k: (1, 1)), true, .relu),  // fewer inputs than outputs
            // An expansion on 120 pixels: channel-major where `ctd_1x1_expand_max_plane` is over
            // that (AVX-512 off AMD), else the grid.
            (geometry(c: 130, h: 10, w: 12, oc: 260, k: (1, 1)), true, .relu),
            (geometry(c: 160, h: 14, w: 14, oc: 48, k: (1, 1), s: (2, 2)), false, .relu),
            // Stride 2: phase-split copies (only the phases the taps read).
            (geometry(c: 5, h: 40, w: 38, oc: 19, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)), true, .relu),
            (geometry(c: 12, h: 30, w: 34, oc: 20, k: (1, 1), s: (2, 2)), false, .none),
            (geometry(c: 3, h: 61, w: 61, oc: 17, k: (7, 7), s: (2, 2), pads: (3, 3, 3, 3)), false, .clip(min: 0, max: 6)),
            (geometry(c: 4, h: 40, w: 42, oc: 9, k: (3, 3), s: (2, 2), d: (2, 2), pads: (2, 2, 2, 2)), true, .none),
            (geometry(c: 6, h: 37, w: 41, oc: 10, k: (3, 3), s: (2, 2), pads: (0, 1, 1, 0)), false, .hardSwish),
            // Stride 2 with more channels: a plane per row phase and kernel column on the grid
            // (rows over 28 pixels, or a short K), phases when channel-major.
            (geometry(c: 20, h: 70, w: 66, oc: 12, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)), true, .relu),
            (geometry(c: 20, h: 30, w: 34, oc: 24, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)), true, .relu),
            (geometry(c: 24, h: 29, w: 31, oc: 10, k: (1, 1), s: (2, 2)), false, .none),
            (geometry(c: 17, h: 33, w: 36, oc: 9, k: (3, 3), s: (2, 2), d: (2, 2), pads: (2, 2, 2, 2)), true, .none),
            (geometry(c: 18, h: 37, w: 41, oc: 10, k: (3, 3), s: (2, 2), pads: (0, 1, 1, 0)), false, .hardSwish),
            (geometry(c: 19, h: 31, w: 30, oc: 12, k: (5, 5), s: (2, 2), pads: (2, 2, 2, 2)), true, .clip(min: 0, max: 6)),
        ]
        for (g, residual, act) in cases {
            let kernel = Conv2DKernel(geometry: g, weights: [Float](repeating: 0, count: g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth),
                                      bias: nil, activation: act)
            // The channel-major cases (≥ 130 channels, short rows) take the direct path only with a
            // `ctd` kernel; without one the grid rule decides (small planes are packed instead).
            // The configuration's limits on the grid (direct_min_k, direct_pointwise_max_m) send
            // tiny K and wide 1×1 layers to the packed products.
            let k = g.inChannels * g.kernelHeight * g.kernelWidth, pointwise = g.kernelHeight == 1 && g.kernelWidth == 1
            // An unpadded 1×1 grid's columns are the output's pixels (these cases' stride-2 planes
            // too): under 64 of them, or with over an eighth of its 16-column vectors' lanes idle,
            // the grid's own rule (`DirectConvPlan.init`) sends the layer to the packed product.
            let gridFits = g.outPlane >= 64 && 8 * g.outPlane >= 7 * ((g.outPlane + 15) / 16 * 16)
            let gridAllowed = k >= Int(cfg.pointee.direct_min_k) && (!pointwise || pointwiseGridAllowed(g, cfg))
                && (!pointwise || gridFits) && !stride2GoesPacked(g, cfg)
            let channelMajor = g.inChannels >= 130 && channelMajorWidthAllowed(g, cfg)
            if channelMajor {
                XCTAssertTrue(kernel.isDirectChannelMajor, "\(g) on \(String(cString: cfg.pointee.name))")
            } else if g.inChannels < 130 || cfg.pointee.ctd != nil {
                XCTAssertEqual(kernel.isDirect, cfg.pointee.direct != nil && gridAllowed,
                               "\(g) on \(String(cString: cfg.pointee.name))")
            }
            check(g, residual: residual, act: act, batches: [1, 3], threads: [1, 2])
        }
    }

    /// Weights of 1 MB or more that outweigh a sample's input run a batch weight tile by weight
    /// tile, each tile over a group of samples (`DirectConvPlan.run`): padded copies of a group in
    /// the threads' scratch (groups of 4 a thread, so batch 9 on 2 threads is a group of 8 and
    /// one of 1), stride-2 phases, the input read in place (1×1), residuals (also in place) and
    /// an activation applied after the product.
    func testDirectWeightTileMajorBatches() throws {
        forEachKernelConfig("weight-tile-major direct batches") { cfg in
            let cases: [(Conv2DGeometry, Bool, Activation)] = [
                (geometry(c: 192, h: 7, w: 7, oc: 160, k: (3, 3), pads: (1, 1, 1, 1)), true, .relu),
                (geometry(c: 192, h: 14, w: 14, oc: 160, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)), false, .silu),
                (geometry(c: 600, h: 7, w: 7, oc: 460, k: (1, 1)), true, .clip(min: 0, max: 6)),
            ]
            for (g, residual, act) in cases {
                let kernel = Conv2DKernel(geometry: g, weights: [Float](repeating: 0, count: g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth),
                                          bias: nil, activation: act)
                let pointwise = g.kernelHeight == 1 && g.kernelWidth == 1
                if cfg.pointee.direct == nil {
                    print("weight-tile-major direct batches: \(String(cString: cfg.pointee.name)) has no direct kernel, \(g) packed")
                } else if (pointwise && Int(cfg.pointee.ctd_max_width_1x1) < g.outWidth && !pointwiseGridAllowed(g, cfg))
                            || stride2GoesPacked(g, cfg) {
                    // A CPU whose table sends wide 1×1 layers and stride-2 kernels to the packed
                    // product (AVX2 with an L2 under 1 MB: configs/kernel_config.c): the stride-1 3×3
                    // case runs the direct batches here.
                    XCTAssertFalse(kernel.isDirect, "\(g) on \(String(cString: cfg.pointee.name)): \(kernel.algorithmName)")
                    print("weight-tile-major direct batches: \(String(cString: cfg.pointee.name)) takes \(g) packed on this CPU")
                } else {
                    XCTAssertTrue(kernel.isDirectWeightTileMajor, "\(g) on \(String(cString: cfg.pointee.name)): \(kernel.algorithmName)")
                }
                check(g, residual: residual, act: act, batches: [2, 5, 9], threads: [1, 2])
                if residual { check(g, residual: true, inPlace: true, act: act, batches: [9], threads: [2]) }
            }
        }
        // Below 1 MB of weights a batch stays sample by sample.
        let small = geometry(c: 64, h: 7, w: 7, oc: 64, k: (3, 3), pads: (1, 1, 1, 1))
        XCTAssertFalse(Conv2DKernel(geometry: small, weights: [Float](repeating: 0, count: 64 * 64 * 9), bias: nil, activation: .relu)
            .isDirectWeightTileMajor)
    }

    /// A NaN in the input stays NaN through a fused ReLU on every path (`max(0, NaN)` must keep
    /// the NaN, as ONNX Runtime does): 1×1 products on the grid (its straight-line epilogue),
    /// channel-major and packed, with and without a residual, on every configuration.
    func testNaNThroughFusedReLU() throws {
        forEachKernelConfig("NaN through a fused ReLU") { cfg in
            for g in [geometry(c: 20, h: 12, w: 16, oc: 37, k: (1, 1)), geometry(c: 160, h: 9, w: 11, oc: 40, k: (1, 1)),
                      geometry(c: 9, h: 17, w: 23, oc: 33, k: (3, 3), pads: (1, 1, 1, 1))] {
                var rng = SeededRandom(3)
                let w = rng.array(g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth)
                let kernel = Conv2DKernel(geometry: g, weights: w, bias: rng.array(g.outChannels), activation: .relu)
                var x = rng.array(g.inChannels * g.inPlane)
                let pixel = g.inPlane / 2 + 3  // an interior pixel, read by the output pixel at the same place
                x[pixel] = .nan
                for residual in [false, true] {
                    var y = [Float](repeating: 0, count: g.outChannels * g.outPlane)
                    let r = rng.array(y.count)
                    var scratch = [Float](repeating: 0, count: max(1, 2 * kernel.scratchFloatsPerThread))
                    x.withUnsafeBufferPointer { xp in
                        r.withUnsafeBufferPointer { rp in
                            y.withUnsafeMutableBufferPointer { yp in
                                scratch.withUnsafeMutableBufferPointer { sp in
                                    kernel.run(input: xp.baseAddress!, residual: residual ? rp.baseAddress! : nil, output: yp.baseAddress!,
                                               batch: 1, scratch: sp.baseAddress!, pool: ThreadPool(threadCount: 2))
                                }
                            }
                        }
                    }
                    for oc in 0..<g.outChannels {
                        XCTAssertTrue(y[oc * g.outPlane + pixel].isNaN,
                                      "\(String(cString: cfg.pointee.name)) \(kernel.algorithmName) channel \(oc) residual \(residual): \(y[oc * g.outPlane + pixel])")
                    }
                }
            }
        }
    }

    /// A residual that is the output buffer itself: every ungrouped path (direct, packed,
    /// channel-major, row blocks, products split into K blocks) adds the product onto it.
    func testResidualInPlace() {
        let cases: [Conv2DGeometry] = [
            geometry(c: 20, h: 12, w: 16, oc: 37, k: (1, 1)),                          // direct 1×1
            geometry(c: 9, h: 17, w: 23, oc: 33, k: (3, 3), pads: (1, 1, 1, 1)),       // direct 3×3 (padded grid)
            geometry(c: 600, h: 8, w: 8, oc: 460, k: (1, 1)),                          // > 1 MB of weights: K blocks
            geometry(c: 24, h: 14, w: 14, oc: 20, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)), // packed im2col
            geometry(c: 32, h: 7, w: 7, oc: 40, k: (3, 3), pads: (1, 1, 1, 1)),        // channel-major (49 pixels)
            geometry(c: 700, h: 5, w: 5, oc: 400, k: (1, 1)),                          // channel-major, K blocks
            geometry(c: 130, h: 10, w: 12, oc: 260, k: (1, 1)),                        // expansion (grid or channel-major by CPU)
            geometry(c: 20, h: 50, w: 48, oc: 21, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)), // direct, stride-2 planes
            geometry(c: 5, h: 80, w: 80, oc: 21, k: (3, 3), s: (3, 3), pads: (1, 1, 1, 1)),  // large plane, row blocks
        ]
        for g in cases {
            check(g, residual: true, inPlace: true, act: .relu, batches: [1, 3, 9], threads: [1, 2])
        }
    }

    /// Direct products on short rows (7 to 28 output pixels) run channel-major: rows split into
    /// segments of up to 14 pixels, odd channel panels, residuals (also in place), stride-2 phases,
    /// K in blocks (partial sums kept between them) and rows in groups.
    func testDirectChannelMajor() throws {
        // Configurations without a `ctd` kernel run the same cases on their other paths.
        forEachKernelConfig("channel-major direct convolutions") { cfg in runDirectChannelMajorSuite(cfg) }
    }

    func runDirectChannelMajorSuite(_ cfg: UnsafePointer<sx_kernel_config>) {
        let hasCTD = cfg.pointee.ctd != nil
        let cases: [(Conv2DGeometry, Bool, Activation)] = [
            (geometry(c: 40, h: 14, w: 14, oc: 37, k: (3, 3), pads: (1, 1, 1, 1)), true, .relu),
            (geometry(c: 72, h: 14, w: 14, oc: 35, k: (3, 3), pads: (1, 1, 1, 1)), true, .relu),  // K in blocks
            (geometry(c: 160, h: 9, w: 11, oc: 40, k: (1, 1)), true, .none),
            (geometry(c: 16, h: 20, w: 28, oc: 16, k: (3, 3), pads: (1, 1, 1, 1)), false, .clip(min: 0, max: 6)),  // row groups
            (geometry(c: 6, h: 12, w: 19, oc: 19, k: (5, 5), pads: (2, 2, 2, 2)), true, .silu),
            (geometry(c: 16, h: 10, w: 9, oc: 33, k: (3, 3), d: (2, 2), pads: (2, 1, 2, 1)), false, .none),
            (geometry(c: 20, h: 30, w: 34, oc: 24, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)), true, .relu),
            (geometry(c: 32, h: 7, w: 7, oc: 50, k: (3, 3), pads: (1, 1, 1, 1)), false, .relu),
            (geometry(c: 16, h: 9, w: 56, oc: 40, k: (3, 3), pads: (1, 1, 1, 1)), true, .relu),  // 56-pixel rows: 4 segments
        ]
        for (g, residual, act) in cases {
            let kernel = Conv2DKernel(geometry: g, weights: [Float](repeating: 0, count: g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth),
                                      bias: nil, activation: act)
            XCTAssertEqual(kernel.isDirectChannelMajor, channelMajorWidthAllowed(g, cfg), "\(g) on \(String(cString: cfg.pointee.name))")
            check(g, residual: residual, act: act, batches: [1, 3, 17], threads: [1, 2])
            if residual { check(g, residual: true, inPlace: true, act: act, batches: [2], threads: [2]) }
        }
        // Rows of at most half the micro-kernel's pixels, 512 output channels or more (stride 2:
        // 14 → 7, 11×13 → 6×7, one-sided padding; stride 1: 7×7 3×3, 5×5, dilation 2): channel-major
        // over the kernel-column planes as one run of pixels, the taps that read padding computed
        // on zeros; fewer output channels (the last case) keep the padded plane's rows.
        for g in [geometry(c: 24, h: 14, w: 14, oc: 520, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)),
                  geometry(c: 20, h: 11, w: 13, oc: 513, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)),
                  geometry(c: 18, h: 14, w: 14, oc: 530, k: (3, 3), s: (2, 2), pads: (0, 0, 1, 1)),
                  geometry(c: 16, h: 14, w: 14, oc: 512, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)),  // ≤ 16 channels too
                  geometry(c: 24, h: 7, w: 7, oc: 512, k: (3, 3), pads: (1, 1, 1, 1)),
                  geometry(c: 8, h: 6, w: 7, oc: 540, k: (5, 5), pads: (2, 2, 2, 2)),
                  geometry(c: 16, h: 7, w: 7, oc: 515, k: (3, 3), d: (2, 2), pads: (2, 2, 2, 2)),
                  geometry(c: 24, h: 7, w: 7, oc: 40, k: (3, 3), pads: (1, 1, 1, 1))] {
            let kernel = Conv2DKernel(geometry: g, weights: [Float](repeating: 0, count: g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth),
                                      bias: nil, activation: .relu)
            let narrow = hasCTD && channelMajorWidthAllowed(g, cfg) && 2 * g.outWidth <= Int(cfg.pointee.ctd_max_pixels)
                && g.outChannels >= 512
            XCTAssertEqual(kernel.isDirectChannelMajorDense, narrow, "\(g) on \(String(cString: cfg.pointee.name)): \(kernel.algorithmName)")
            check(g, residual: true, act: .relu, batches: [1, 3, 17], threads: [1, 2])
            check(g, residual: true, inPlace: true, act: .relu, batches: [2], threads: [2])
        }
        // A costly sample (over 50 MFLOP) at a batch below 8 per thread: the threads share each
        // sample's copy and product (split by channel pairs).
        let costly = geometry(c: 128, h: 14, w: 14, oc: 128, k: (3, 3), pads: (1, 1, 1, 1))
        check(costly, residual: true, act: .relu, batches: [3, 6], threads: [2])
        check(costly, residual: true, inPlace: true, act: .relu, batches: [5], threads: [2])
        // Split by rows at batch 1 (input larger than the weights): each thread pads only the
        // rows its row blocks read, blocks of uneven height over 2 and 3 threads, taps reaching
        // 8 rows down (5×5, dilation 2).
        check(geometry(c: 8, h: 13, w: 20, oc: 8, k: (5, 5), d: (2, 2), pads: (4, 4, 4, 4)), residual: true, act: .relu,
              batches: [1, 2], threads: [1, 2, 3])
        check(geometry(c: 16, h: 23, w: 17, oc: 8, k: (3, 3), pads: (1, 0, 2, 1)), act: .none, batches: [1], threads: [2, 3])
        // Planes under 7 pixels wide: packed product when batched, channel-major direct on the
        // same packed weights when one sample is shared by the threads (batch < threads) and, at
        // stride 1, from 8 samples a thread (batch 16 on 2 threads, 24 on 3: whole samples a thread,
        // the top and bottom rows on their K-row lists) — by the rule where the configuration has
        // `ctd_narrow_planes` (AVX-512 on AMD CPUs both, AVX2 on AMD batched only, on a second,
        // channel-major copy of the weights), forced on every configuration that can, so the path
        // is checked on whichever CPU runs the tests (any configuration with a `ctd` kernel).
        for g in [geometry(c: 32, h: 4, w: 4, oc: 40, k: (3, 3), pads: (1, 1, 1, 1)),
                  geometry(c: 32, h: 7, w: 7, oc: 24, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1))] {
            let weights = [Float](repeating: 0, count: g.outChannels * g.inChannels * 9)
            let kernel = Conv2DKernel(geometry: g, weights: weights, bias: nil, activation: .relu)
            // Batched only (no shared-sample flag): stride 1 only, no second copy of the weights at stride 2.
            let flags = cfg.pointee.ctd_narrow_planes
            let byRule = flags & Int32(SX_CTD_NARROW_SHARED) != 0 || (flags != 0 && g.strideH == 1)
            XCTAssertEqual(kernel.algorithmName == "im2col/ctd", hasCTD && byRule, "\(g): \(kernel.algorithmName)")
            check(g, residual: true, act: .relu, batches: [1, 2, 3, 16, 24], threads: [1, 2, 3])
            let forced = Conv2DKernel(geometry: g, weights: weights, bias: nil, activation: .relu, plan: .packedSharingDirect)
            XCTAssertEqual(forced.algorithmName, hasCTD ? "im2col/ctd" : "im2col", "\(g) forced")
            if hasCTD { check(g, residual: true, act: .relu, batches: [1, 2, 3, 16, 24], threads: [1, 2, 3], plan: .packedSharingDirect) }
        }
        // Wide rows and short K stay on the grid; so do 1×1 products with fewer inputs than outputs
        // on planes of `ctd_1x1_expand_max_plane` pixels or more (144 here: the grid on AMD's
        // AVX-512 and on AVX2, channel-major on other AVX-512 CPUs).
        for g in [geometry(c: 17, h: 16, w: 58, oc: 18, k: (3, 3), pads: (0, 1, 2, 1)), geometry(c: 9, h: 20, w: 28, oc: 16, k: (3, 3), pads: (1, 1, 1, 1)),
                  geometry(c: 160, h: 12, w: 12, oc: 200, k: (1, 1))] {
            let expected = g.kernelHeight == 1 && hasCTD && channelMajorWidthAllowed(g, cfg)
            XCTAssertEqual(Conv2DKernel(geometry: g, weights: [Float](repeating: 0, count: g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth),
                                        bias: nil, activation: .none).isDirectChannelMajor, expected, "\(g) on \(String(cString: cfg.pointee.name))")
        }
    }

    /// Planes of 512 pixels and more are packed and multiplied in blocks of output rows.
    func testLargePlaneInRowBlocks() {
        check(geometry(c: 3, h: 50, w: 48, oc: 21, k: (3, 3), s: (2, 1), pads: (1, 1, 1, 1)), act: .hardSwish, batches: [1, 3], threads: [1, 2])
        check(geometry(c: 4, h: 24, w: 24, oc: 6, k: (1, 1), groups: 2), residual: true, act: .relu, batches: [1, 3], threads: [1, 2])
        check(geometry(c: 3, h: 61, w: 45, oc: 17, k: (7, 7), s: (3, 3), pads: (3, 3, 3, 3)), batches: [2], threads: [2])
    }

    /// HardSwish, SiLU and Sigmoid, which configurations listing them in `fused_acts` apply in
    /// their kernels' stores: every product path (direct grid 1×1 and 3×3, channel-major direct,
    /// channel-major packed, packed im2col, row blocks, K blocks, stride-2 planes, in-place
    /// depthwise 3×3 and 5×5) on every configuration, with residuals (the activation comes after
    /// the sum).
    func testExtendedActivationsFusedOnEveryPath() {
        let cases: [(Conv2DGeometry, Bool)] = [
            (geometry(c: 20, h: 12, w: 16, oc: 37, k: (1, 1)), true),                           // direct 1×1
            (geometry(c: 9, h: 17, w: 23, oc: 33, k: (3, 3), pads: (1, 1, 1, 1)), false),       // direct grid
            (geometry(c: 40, h: 14, w: 14, oc: 37, k: (3, 3), pads: (1, 1, 1, 1)), true),       // channel-major direct
            (geometry(c: 32, h: 7, w: 7, oc: 40, k: (3, 3), pads: (1, 1, 1, 1)), false),        // channel-major packed
            (geometry(c: 24, h: 14, w: 14, oc: 20, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1)), true), // stride 2
            (geometry(c: 600, h: 8, w: 8, oc: 70, k: (1, 1)), false),                           // K blocks
            (geometry(c: 5, h: 80, w: 80, oc: 21, k: (3, 3), s: (3, 3), pads: (1, 1, 1, 1)), true),  // row blocks
            (geometry(c: 3, h: 9, w: 9, oc: 10, k: (4, 4), s: (4, 4)), false),                  // im2col, 4-pixel plane
            (geometry(c: 6, h: 21, w: 19, oc: 6, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1), groups: 6), true),
            (geometry(c: 6, h: 21, w: 19, oc: 6, k: (5, 5), pads: (2, 2, 2, 2), groups: 6), true),
        ]
        forEachKernelConfig("HardSwish/SiLU/Sigmoid fused") { cfg in
            for (g, residual) in cases {
                for act in [Activation.hardSwish, .silu, .sigmoid] {
                    check(g, residual: residual, act: act, batches: [1, 3], threads: [1, 2])
                }
            }
            print("fused_acts of \(String(cString: cfg.pointee.name)): \(cfg.pointee.fused_acts)")
        }
    }

    func testEveryActivationFused() {
        for act in allActivations {
            check(geometry(c: 4, h: 6, w: 6, oc: 6, k: (3, 3), pads: (1, 1, 1, 1)), residual: true, act: act, batches: [2], threads: [2])
            check(geometry(c: 4, h: 6, w: 6, oc: 4, k: (3, 3), pads: (1, 1, 1, 1), groups: 4), act: act, batches: [1], threads: [2])
            check(geometry(c: 4, h: 9, w: 18, oc: 4, k: (5, 5), s: (2, 2), pads: (2, 2, 2, 2), groups: 4), residual: true, act: act,
                  batches: [1], threads: [2])
        }
    }
    /// `balancedChunkCount` against an exhaustive search over the same counts (least … 4·least +
    /// threads, smallest largest share, fewest chunks on a tie): the early stop at ⌈batch/threads⌉
    /// must not change the choice; batch 32 in chunks of ≤ 6 on 2 threads is 8 chunks of 4.
    func testBalancedChunkCountMatchesExhaustiveSearch() {
        func exhaustive(_ batch: Int, _ maxChunk: Int, _ threads: Int) -> Int {
            let least = (batch + maxChunk - 1) / maxChunk
            guard threads > 1 && batch > 1 else { return least }
            var best = least, bestShare = Int.max
            for count in least...min(batch, 4 * least + threads) {
                var loads = [Int](repeating: 0, count: threads)
                for c in 0..<count {
                    let t = loads.indices.min { loads[$0] < loads[$1] }!
                    loads[t] += batch * (c + 1) / count - batch * c / count
                }
                if loads.max()! < bestShare { best = count; bestShare = loads.max()! }
            }
            return best
        }
        XCTAssertEqual(balancedChunkCount(batch: 32, maxChunk: 6, threads: 2), 8)
        for threads in [1, 2, 3, 4, 8] {
            for maxChunk in 1...8 {
                for batch in 1...160 {
                    XCTAssertEqual(balancedChunkCount(batch: batch, maxChunk: maxChunk, threads: threads),
                                   exhaustive(batch, maxChunk, threads), "batch \(batch) maxChunk \(maxChunk) threads \(threads)")
                }
            }
        }
    }
}
