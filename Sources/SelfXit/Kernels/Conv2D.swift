import SelfXitGEMM
import Synchronization

/// Shape of a 2-D convolution over one sample (NCHW). `padBottom`/`padRight` are implied by
/// `outHeight`/`outWidth`; the caller computes output sizes.
package struct Conv2DGeometry: Equatable, Sendable {
    package var inChannels, inHeight, inWidth: Int
    package var outChannels, outHeight, outWidth: Int
    package var kernelHeight, kernelWidth: Int
    package var strideH, strideW: Int
    package var dilationH, dilationW: Int
    package var padTop, padLeft: Int
    package var groups: Int

    package init(inChannels: Int, inHeight: Int, inWidth: Int,
                outChannels: Int, outHeight: Int, outWidth: Int,
                kernelHeight: Int, kernelWidth: Int,
                strideH: Int = 1, strideW: Int = 1, dilationH: Int = 1, dilationW: Int = 1,
                padTop: Int = 0, padLeft: Int = 0, groups: Int = 1) {
        self.inChannels = inChannels; self.inHeight = inHeight; self.inWidth = inWidth
        self.outChannels = outChannels; self.outHeight = outHeight; self.outWidth = outWidth
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideH = strideH; self.strideW = strideW
        self.dilationH = dilationH; self.dilationW = dilationW
        self.padTop = padTop; self.padLeft = padLeft; self.groups = groups
    }

    var inPlane: Int { inHeight * inWidth }
    var outPlane: Int { outHeight * outWidth }
    /// Multiply-adds per sample.
    package var macsPerSample: Int { outChannels * outPlane * (inChannels / groups) * kernelHeight * kernelWidth }
}

/// Convolution with folded bias, optional residual add and fused activation:
/// `y = act(conv(x) + bias + residual)`.
///
/// The algorithm is picked at init: depthwise (`groups == inChannels == outChannels`) → direct
/// SIMD kernel; stride-1 ungrouped on a plane large enough (with AVX-512) → implicit GEMM that
/// reads B in place (`DirectConvPlan`); 1×1 stride-1 unpadded → sgemm on the input packed as is;
/// grouped (not depthwise) where the configuration has a `grouped_conv` kernel → `GroupedConvPlan`;
/// anything else → im2col + sgemm per group.
package final class Conv2DKernel {
    package let geometry: Conv2DGeometry
    package let activation: Activation

    private enum Algorithm { case pointwise, im2col, depthwise(DepthwisePlan), direct(DirectConvPlan), grouped(GroupedConvPlan) }
    private let algorithm: Algorithm
    /// The weights as given, `[outC][inC/groups][kH][kW]` (per group a row-major `M×K` operand),
    /// kept only where a kernel reads them unpacked: depthwise, and the unpacked `sx_sgemm` path (`packedA` empty).
    /// A packed product keeps its packed copy alone (ResNet-50 would otherwise hold 100 MB twice).
    private let unpackedWeights: UnsafeMutablePointer<Float>?
    /// One per output channel; zeros when the model has none.
    private let bias: UnsafeMutablePointer<Float>
    private let m: Int  // output channels per group
    private let k: Int  // (inC / groups) · kH · kW
    private let n: Int  // output pixels
    /// Per group, the weights packed for SelfXit's SGEMM; empty when `sx_sgemm` runs the products on unpacked weights.
    private let packedA: [PackedMatrixA]
    /// Samples whose columns share one packed B (short rows at late layers: longer N per product).
    private let samplesPerChunk: Int
    /// A packed product's channel-major direct alternative for batches smaller than the thread
    /// count (one sample shared by the threads) and, at stride 1, from 8 samples a thread, as the
    /// configuration's `ctd_narrow_planes` flags say; see `init`.
    private let sharedSampleDirect: DirectConvPlan?
    /// The batch sizes `sharedSampleDirect` takes (`SX_CTD_NARROW_*` flags).
    private let sharedSampleFlags: Int32
    /// The weights `sharedSampleDirect` reads: `packedA[0]` where the configuration's A panels
    /// are its channel vectors' height, else a channel-major copy of its own.
    private let sharedSampleWeights: PackedMatrixA?

    /// Precondition: `geometry` is consistent (channels divisible by `groups`, output sizes match
    /// the padding), `weights.count == outC · inC/groups · kH · kW`, `bias` (if any) has `outC` entries.
    /// A planner decision forced instead of the rule (`selfxit-kernelbench tune` times both sides).
    package enum PlanChoice: Sendable, Equatable {
        case rule
        /// Packed GEMM (im2col / pointwise), channel-major (`ct`) or not; `nil`: the rule's.
        case packed(channelMajor: Bool?)
        /// The direct product, channel-major (`ctd`) or on the grid.
        case direct(channelMajor: Bool)
        /// Depthwise: in place (`dw3x3_direct`) or through the padded copy.
        case depthwise(inPlace: Bool)
        /// The packed product with its channel-major direct alternative for shared samples (the
        /// rule's choice on rows under 7 pixels where the configuration has `ctd_narrow_planes`).
        case packedSharingDirect
    }

    package convenience init(geometry g: Conv2DGeometry, weights: [Float], bias: [Float]?, activation: Activation) {
        self.init(geometry: g, weights: weights, bias: bias, activation: activation, plan: .rule)
    }

    package init(geometry g: Conv2DGeometry, weights: [Float], bias: [Float]?, activation: Activation, plan choice: PlanChoice) {
        precondition(g.groups >= 1 && g.inChannels % g.groups == 0 && g.outChannels % g.groups == 0)
        precondition(weights.count == g.outChannels * (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth)
        precondition(bias == nil || bias!.count == g.outChannels)
        geometry = g
        self.activation = activation
        m = g.outChannels / g.groups
        k = (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth
        n = g.outPlane
        // Packing reads this copy; it is freed at the end when the kernels read only packed weights.
        let unpacked = allocateFloats(weights.count)
        unpacked.initialize(from: weights, count: weights.count)
        self.bias = allocateFloats(g.outChannels)
        if let bias { self.bias.initialize(from: bias, count: bias.count) } else { self.bias.initialize(repeating: 0, count: g.outChannels) }

        var directChoice: Bool?? = .some(nil)  // .none: no direct product; .some(cm): forced or (nil) the rule's
        var packedCM: Bool? = nil
        switch choice {
        case .rule, .depthwise: break
        case let .packed(cm): directChoice = .none; packedCM = cm
        case .packedSharingDirect: directChoice = .none
        case let .direct(cm): directChoice = .some(cm)
        }
        if g.groups == g.inChannels && g.groups == g.outChannels {
            if case let .depthwise(inPlace) = choice { algorithm = .depthwise(DepthwisePlan(g, inPlace: inPlace)) }
            else { algorithm = .depthwise(DepthwisePlan(g)) }
        } else if case .rule = choice, PackedGEMM.currentISA != nil,
                  let plan = GroupedConvPlan(g, weights: unpacked, config: PackedGEMM.currentConfig) {
            // Grouped (not depthwise): the configuration's direct grouped kernel (GroupedConvPlan).
            algorithm = .grouped(plan)
        } else if PackedGEMM.currentISA != nil, let cm = directChoice,
                  let plan = DirectConvPlan(g, config: PackedGEMM.currentConfig, channelMajor: cm) {
            algorithm = .direct(plan)
        } else if g.kernelHeight == 1 && g.kernelWidth == 1 && g.strideH == 1 && g.strideW == 1
                    && g.padTop == 0 && g.padLeft == 0 && g.outHeight == g.inHeight && g.outWidth == g.inWidth {
            algorithm = .pointwise
        } else {
            algorithm = .im2col
        }
        // Planes narrower than the channel-major direct rule's 7 pixels (ResNet-18 w64's 4×4
        // layer4): batched, the packed product wins (its samples share one packed B: 227 against
        // 209 GFLOPS at batch 2–32), but one sample shared by two threads runs 1.14–1.36× faster
        // channel-major direct (0.361 against 0.491 ms for 512→512 3×3 at 4×4, 0.217 against
        // 0.248 for 256→512 stride 2; 1×1 layers even; selfxit-kernelbench min packed|ctd 2 1,
        // Zen 4). The direct kernel reads the packed weights as they are where the
        // configuration's A panels are as tall as its channel vectors (`mr` = `nr`: AVX-512's 16,
        // the same layout as channel-major packing); packing the batched product channel-major
        // instead cost it 4 % at batch 32. Since the channel-major kernel skips the taps that read
        // padding rows (`DirectConvPlan.rowK`: a sixth of a 4×4 plane's work), stride-1 layers run it
        // at batches of 8 a thread and up too, whole samples a thread: 512→512 at 4×4, batch 32,
        // 10.32–10.39 against the packed product's 10.79–10.85 ms (batch 8 and 2 even; stride 2
        // still 5–6 % slower channel-major; selfxit-kernelbench min ctd|packed 2 1 2 8 32, Zen 4).
        // On an Intel Xeon (Emerald Rapids) the packed product won both (0.30–0.62 against 0.45–0.72
        // ms at batch 1, 8.8–11.2 against 16.1–17.1 at batch 32: channel-major streams a channel
        // pair's weights once per row and sample, from an L3 its cores read slowly): which one wins
        // depends on the CPU, not only the ISA, and the configuration says (`ctd_narrow_planes`).
        // AVX2 (6-row A panels, so a second copy of the weights channel-major) takes it only
        // batched: on an EPYC Zen 3 the batch-32 layer ran 14.5–17.8 against 20.6–22.8 ms, and
        // ResNet-18 w64 b32 0.92–0.97 of the packed time in the model, b1 1.04–1.08 (BENCHMARKS §7.34).
        let narrowConfig = PackedGEMM.currentISA.flatMap { PackedGEMM.config($0) }
        let narrowFlags: Int32 = narrowConfig.map {
            choice == .rule ? $0.pointee.ctd_narrow_planes
                : choice == .packedSharingDirect ? Int32(SX_CTD_NARROW_SHARED | SX_CTD_NARROW_BATCHED) : 0
        } ?? 0
        // (Batches take it at stride 1 only: a configuration without the shared-sample flag has no
        // use for it, nor for a second copy of the weights, at stride 2.)
        if case .im2col = algorithm, let config = narrowConfig,
           narrowFlags & Int32(SX_CTD_NARROW_SHARED) != 0 || (narrowFlags != 0 && g.strideH == 1),
           g.kernelHeight * g.kernelWidth > 1, k >= 128, g.outWidth < 7,
           let plan = DirectConvPlan(g, config: config, channelMajor: true), plan.channelMajor {
            sharedSampleDirect = plan
            sharedSampleFlags = narrowFlags
        } else {
            sharedSampleDirect = nil
            sharedSampleFlags = 0
        }
        if case .grouped = algorithm {
            packedA = []
            samplesPerChunk = 1
        } else if case .depthwise = algorithm {
            packedA = []
            samplesPerChunk = 1
        } else if case let .direct(plan) = algorithm {
            packedA = [PackedMatrixA(isa: plan.config.pointee.isa, rows: unpacked, lda: k, m: m, k: k, channelMajor: plan.channelMajor)]
            samplesPerChunk = 1
        } else if let isa = PackedGEMM.currentISA {
            let (m, k) = (self.m, self.k)
            let w = UnsafePointer(unpacked)
            // Small planes whose pixel count is not a multiple of 16 (7×7, 5×5, …) run channel-major:
            // row-major panels would compute 64 pixel lanes for a 49-pixel plane.
            let hasCT = PackedGEMM.config(isa)?.pointee.ct != nil
            let channelMajor = hasCT && (packedCM ?? (n <= 64 && n % PackedGEMM.nr != 0))
            packedA = (0..<g.groups).map { PackedMatrixA(isa: isa, rows: w + $0 * m * k, lda: k, m: m, k: k, channelMajor: channelMajor) }
            // Aim for ≥ 256 columns per product, with packed B at most 8 MB per thread.
            let byWidth = max(1, 256 / max(1, n))
            // Channel-major products over more than 1 MB of packed B split K into blocks (partial
            // sums gathered back from C), which pays only when it saves streaming large weights
            // once per sample: with under 4 MB of weights keep B within 1 MB instead.
            let byMemory = max(1, (channelMajor && m * k < 1 << 20 ? 1 << 18 : 2 << 20) / max(1, k * n))
            samplesPerChunk = max(1, min(byWidth, byMemory))
        } else {
            packedA = []
            samplesPerChunk = 1
        }
        if let plan = sharedSampleDirect, let first = packedA.first {
            // AVX2's packed products read 6-row A panels, its channel-major kernel 16-channel ones:
            // the second copy (ResNet-18 w64's 4×4 layer4: 9.4 MB a layer) buys the batched speed.
            sharedSampleWeights = Int(plan.config.pointee.mr) == PackedGEMM.nr ? first
                : PackedMatrixA(isa: plan.config.pointee.isa, rows: unpacked, lda: k, m: m, k: k, channelMajor: true)
        } else {
            sharedSampleWeights = nil
        }
        if case .grouped = algorithm {  // GroupedConvPlan holds its own packed copy
            unpacked.deallocate()
            unpackedWeights = nil
        } else if packedA.isEmpty {  // depthwise, or the unpacked sx_sgemm path
            unpackedWeights = unpacked
        } else {
            unpacked.deallocate()
            unpackedWeights = nil
        }
    }

    /// The algorithm in words (tuning reports).
    package var algorithmName: String {
        switch algorithm {
        case .pointwise: return packedA.first?.channelMajor == true ? "pointwise ct" : "pointwise"
        case .im2col where sharedSampleDirect != nil: return "im2col/ctd"  // ctd below the thread count (and batched at stride 1)
        case .im2col: return packedA.first?.channelMajor == true ? "im2col ct" : "im2col"
        case let .depthwise(plan): return plan.readsInPlace ? "dw in place" : "dw padded"
        case let .direct(plan): return plan.channelMajor ? "direct ctd" : "direct grid"
        case .grouped: return "grouped"
        }
    }

    /// Whether the convolution runs as an implicit GEMM on its (padded) input.
    var isDirect: Bool { if case .direct = algorithm { return true } else { return false } }
    /// Whether that implicit GEMM runs channel-major (short rows).
    var isDirectChannelMajor: Bool { if case let .direct(plan) = algorithm { return plan.channelMajor } else { return false } }
    /// Whether that implicit GEMM runs channel-major over one run of the plane's pixels (B as wide
    /// as the output: a 1×1 product on an unpadded plane, or kernel-column planes of 7-pixel rows).
    var isDirectChannelMajorDense: Bool {
        if case let .direct(plan) = algorithm { return plan.channelMajor && plan.gridW == plan.g.outWidth } else { return false }
    }
    /// Whether a batch runs that implicit GEMM weight tile by weight tile over a group of samples.
    var isDirectWeightTileMajor: Bool {
        if case let .direct(plan) = algorithm { return plan.reusesWeightsAcrossSamples } else { return false }
    }

    deinit {
        unpackedWeights?.deallocate()
        bias.deallocate()
    }

    /// Floats of scratch each thread needs; `run` takes `pool.threadCount` times this.
    package var scratchFloatsPerThread: Int {
        if case let .direct(plan) = algorithm { return plan.scratchFloats }
        if case let .grouped(plan) = algorithm { return plan.scratchFloats }
        if !packedA.isEmpty {
            let nr = PackedGEMM.nr
            return max((samplesPerChunk * n + nr - 1) / nr * nr * k, sharedSampleDirect?.scratchFloats ?? 0)
        }
        switch algorithm {
        case .pointwise: return 0
        case .im2col: return k * n
        case let .depthwise(plan): return plan.scratchFloats
        case let .direct(plan): return plan.scratchFloats
        case let .grouped(plan): return plan.scratchFloats
        }
    }

    /// Runs the convolution on `batch` samples.
    ///
    /// Preconditions: `input` holds `batch·inC·inH·inW` floats, `output` (and `residual`, if any)
    /// `batch·outC·outH·outW`; `scratch` holds `pool.threadCount · scratchFloatsPerThread`;
    /// `output` aliases neither `input` nor `scratch`. `residual` may be `output` itself when
    /// `groups == 1` (the sum is accumulated in place); otherwise it aliases nothing either.
    package func run(input: UnsafePointer<Float>, residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                    batch: Int, scratch: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        guard batch > 0 else { return }
        if case let .depthwise(plan) = algorithm, let weights = unpackedWeights {
            plan.run(input: input, weights: weights, bias: bias, residual: residual, output: output,
                     batch: batch, activation: activation, scratch: scratch, pool: pool)
            return
        }
        if case let .direct(plan) = algorithm {
            plan.run(input: input, weights: packedA[0], bias: bias, residual: residual, output: output,
                     batch: batch, activation: activation, scratch: scratch, pool: pool)
            return
        }
        if case let .grouped(plan) = algorithm {
            plan.run(input: input, bias: bias, residual: residual, output: output, batch: batch,
                     activation: activation, scratch: scratch, pool: pool)
            return
        }
        if let plan = sharedSampleDirect, let weights = sharedSampleWeights,
           batch < pool.threadCount ? sharedSampleFlags & Int32(SX_CTD_NARROW_SHARED) != 0
               : batch >= 8 * pool.threadCount && plan.g.strideH == 1 && sharedSampleFlags & Int32(SX_CTD_NARROW_BATCHED) != 0 {
            plan.run(input: input, weights: weights, bias: bias, residual: residual, output: output,
                     batch: batch, activation: activation, scratch: scratch, pool: pool)
            return
        }
        guard let weights = unpackedWeights else {
            runPacked(input: input, residual: residual, output: output, batch: batch, scratch: scratch, pool: pool)
            return
        }
        let g = geometry
        let threads = pool.threadCount
        let inSample = g.inChannels * g.inPlane, outSample = g.outChannels * n
        let perThread = scratchFloatsPerThread
        let pointwise: Bool = { if case .pointwise = algorithm { return true } else { return false } }()

        if batch >= threads || threads == 1 {
            // Enough samples to go round: each thread runs whole samples with its own im2col buffer.
            pool.parallelFor(threads) { t in
                let col = scratch + t * perThread
                for s in (batch * t / threads)..<(batch * (t + 1) / threads) {
                    for grp in 0..<g.groups {
                        let x = input + s * inSample + grp * (g.inChannels / g.groups) * g.inPlane
                        if !pointwise { im2col(x, col, rows: 0..<k) }
                        gemmTile(weights, pointwise ? x : UnsafePointer(col), sample: s, group: grp, rows: 0..<m, cols: 0..<n,
                                 residual: residual, output: output, outSample: outSample)
                    }
                }
            }
        } else if g.groups >= threads {
            // Fewer samples than threads but many groups: each thread takes whole groups.
            for s in 0..<batch {
                pool.parallelFor(threads) { t in
                    let col = scratch + t * perThread
                    for grp in (g.groups * t / threads)..<(g.groups * (t + 1) / threads) {
                        let x = input + s * inSample + grp * (g.inChannels / g.groups) * g.inPlane
                        if !pointwise { im2col(x, col, rows: 0..<k) }
                        gemmTile(weights, pointwise ? x : UnsafePointer(col), sample: s, group: grp, rows: 0..<m, cols: 0..<n,
                                 residual: residual, output: output, outSample: outSample)
                    }
                }
            }
        } else {
            // Small batch: share one im2col per sample and group (built in parallel over its rows),
            // then give each thread a slice of the output. Split the larger of M and N: every
            // thread repacks the whole operand that is not split, so that one should be small.
            let splitRows = m >= n
            for s in 0..<batch {
                for grp in 0..<g.groups {
                    let x = input + s * inSample + grp * (g.inChannels / g.groups) * g.inPlane
                    if !pointwise {
                        pool.parallelFor(threads) { t in im2col(x, scratch, rows: (k * t / threads)..<(k * (t + 1) / threads)) }
                    }
                    let b = pointwise ? x : UnsafePointer(scratch)
                    pool.parallelFor(threads) { t in
                        if splitRows {
                            gemmTile(weights, b, sample: s, group: grp, rows: slice(m, t, threads), cols: 0..<n,
                                     residual: residual, output: output, outSample: outSample)
                        } else {
                            gemmTile(weights, b, sample: s, group: grp, rows: 0..<m, cols: slice(n, t, threads),
                                     residual: residual, output: output, outSample: outSample)
                        }
                    }
                }
            }
        }
    }

    /// `run` on SelfXit's packed SGEMM: B (im2col or the input itself) is packed per product,
    /// the epilogue (bias, residual, relu/clip) is fused into the micro-kernel's store.
    private func runPacked(input: UnsafePointer<Float>, residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                           batch: Int, scratch: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let g = geometry
        let threads = pool.threadCount
        let inSample = g.inChannels * g.inPlane, outSample = g.outChannels * n
        let groupInput = (g.inChannels / g.groups) * g.inPlane
        let perThread = scratchFloatsPerThread
        let pointwise: Bool = { if case .pointwise = algorithm { return true } else { return false } }()
        let (m, k, n) = (self.m, self.k, self.n)
        let nr = PackedGEMM.nr
        let act = PackedGEMM.fused(activation, config: packedA[0].config)
        var geom = sx_im2col_geom(channels: Int32(g.inChannels / g.groups), in_h: Int32(g.inHeight), in_w: Int32(g.inWidth),
                                  out_h: Int32(g.outHeight), out_w: Int32(g.outWidth),
                                  kernel_h: Int32(g.kernelHeight), kernel_w: Int32(g.kernelWidth),
                                  stride_h: Int32(g.strideH), stride_w: Int32(g.strideW),
                                  dilation_h: Int32(g.dilationH), dilation_w: Int32(g.dilationW),
                                  pad_top: Int32(g.padTop), pad_left: Int32(g.padLeft))

        /// Packs rows `rows` (output pixel rows `oy`) of sample `s`'s (group `grp`) B into columns `col0...` of `pb`.
        func pack(_ s: Int, _ grp: Int, rows: Range<Int>, oy: Range<Int>? = nil, col0: Int, into pb: UnsafeMutablePointer<Float>) {
            guard !rows.isEmpty else { return }
            let oy = oy ?? 0..<g.outHeight
            let x = input + s * inSample + grp * groupInput
            if pointwise {
                sx_gemm_pack_b(x + oy.lowerBound * g.outWidth, n, Int32(oy.count * g.outWidth), Int32(k),
                               Int32(rows.lowerBound), Int32(rows.upperBound), Int32(col0), pb)
            } else {
                packedA[grp].config.pointee.im2col(x, &geom, Int32(rows.lowerBound), Int32(rows.upperBound),
                                                   Int32(oy.lowerBound), Int32(oy.upperBound), Int32(col0), pb)
            }
        }
        /// A panels `mp` × B panels `np` of the product whose columns start at pixel `pixel0` of sample `s`.
        func compute(_ pb: UnsafePointer<Float>, cols: Int, sample s: Int, pixel0: Int = 0, group grp: Int, mp: Range<Int>, np: Range<Int>) {
            guard !mp.isEmpty && !np.isEmpty else { return }
            let a = packedA[grp]
            let off = s * outSample + grp * m * n + pixel0
            var out = sx_gemm_out(c: output + off, ldc: n, c_sample_stride: outSample,
                                  residual: residual.map { $0 + off }, ldr: n, r_sample_stride: outSample,
                                  bias: UnsafePointer(bias + grp * m), cols_per_sample: Int32(n),
                                  act: act.code, lo: act.lo, hi: act.hi)
            a.compute(pb, cols: cols, mp: mp, np: np, &out)
        }
        let mPanels = packedA[0].panels

        // Work is handed out dynamically (the two cores of a shared machine rarely run at the same
        // speed): threads pull row blocks, sample chunks, K-row slices and panel tiles from counters.
        if n >= 512 {
            // A large plane (a stem, a strided early layer): its packed B would spill out of L2
            // before the product reads it back. Threads take blocks of output rows instead, pack a
            // block's B (about 128 KB) and multiply it by all of A while it is in cache.
            // At least 128 columns a block (each block re-reads all of A), else about 128 KB of B,
            // and enough blocks to go round the threads.
            let minRows = (128 + g.outWidth - 1) / g.outWidth
            let rowsPerBlock = min(g.outHeight, max(minRows, min(32 * 1024 / max(1, k * g.outWidth), batch * g.outHeight / (4 * threads))))
            let blocksPerSample = (g.outHeight + rowsPerBlock - 1) / rowsPerBlock
            // Thread t takes the t-th contiguous share of the blocks first (then helps the others):
            // the layers around split their planes by rows the same way (depthwise, the grid), so
            // each core reads the rows it wrote. Handed out one by one instead, blocks alternated
            // between the cores and the next layer read half its input from the other core's
            // cache: MobileNetV3-Large's 1×1 and depthwise layers then ran no faster on two
            // threads than on one (EPYC Zen 3, batch 1); ab_bench, both orders: MobileNetV3-Large
            // 0.94, EfficientNet-B0 0.89–0.92, RegNetY-400MF 0.94–0.95 (BENCHMARKS §7.34).
            let tasks = batch * blocksPerSample, tasksPerShare = (tasks + threads - 1) / threads
            pool.parallelForSharesOnThreads(itemsPerShare: tasksPerShare) { t, share, item in
                let task = share * tasksPerShare + item
                guard task < tasks else { return }
                let pb = scratch + t * perThread
                let s = task / blocksPerSample, block = task % blocksPerSample
                let oy = (block * rowsPerBlock)..<min(g.outHeight, (block + 1) * rowsPerBlock)
                let cols = oy.count * g.outWidth
                for grp in 0..<g.groups {
                    pack(s, grp, rows: 0..<k, oy: oy, col0: 0, into: pb)
                    sx_gemm_pack_b_zero_tail(Int32(cols), Int32(k), 0, Int32(k), pb)
                    compute(pb, cols: cols, sample: s, pixel0: oy.lowerBound * g.outWidth, group: grp,
                            mp: 0..<mPanels, np: 0..<((cols + nr - 1) / nr))
                }
                if act.separate {
                    for c in 0..<g.outChannels {
                        applyActivation(activation, output + s * outSample + c * n + oy.lowerBound * g.outWidth, count: cols)
                    }
                }
            }
        } else if batch >= threads || threads == 1 {
            // Each thread runs whole samples, several at a time as one product with a longer N.
            let chunks = balancedChunkCount(batch: batch, maxChunk: min(samplesPerChunk, max(1, (batch + 3 * threads - 1) / (3 * threads))),
                                            threads: threads)
            pool.parallelForItems(chunks) { t, c in
                let pb = scratch + t * perThread
                let s = batch * c / chunks
                let count = batch * (c + 1) / chunks - s
                let cols = count * n
                for grp in 0..<g.groups {
                    for i in 0..<count { pack(s + i, grp, rows: 0..<k, col0: i * n, into: pb) }
                    sx_gemm_pack_b_zero_tail(Int32(cols), Int32(k), 0, Int32(k), pb)
                    compute(pb, cols: cols, sample: s, group: grp, mp: 0..<mPanels, np: 0..<((cols + nr - 1) / nr))
                }
                if act.separate { applyActivation(activation, output + s * outSample, count: count * outSample) }
            }
        } else {
            // Small batch: pack one sample's B together (K-row slices), then share its product out
            // as tiles of A panels × B panel blocks.
            let nPanels = (n + nr - 1) / nr
            let rowSlice = max(16, (k / (8 * threads) + 15) / 16 * 16)
            let rowTasks = (k + rowSlice - 1) / rowSlice
            // About 8 tiles per thread: split A panels first (in pairs when channel-major, whose
            // kernel takes two panels at once), then B panels.
            let unit = packedA[0].channelMajor ? 2 : 1
            let mUnits = (mPanels + unit - 1) / unit
            let mTiles = min(mUnits, 8 * threads)
            let nTiles = min(nPanels, max(1, (8 * threads + mTiles - 1) / mTiles))
            let tiles = mTiles * nTiles
            for s in 0..<batch {
                for grp in 0..<g.groups {
                    // One job per product: threads take pack slices, wait (spinning, inside the job)
                    // until every slice is packed, then take tiles. No deadlock: a thread only waits
                    // for slices already taken, i.e. being packed by a thread that is running.
                    let packNext = TaskCounter(), packed = TaskCounter(), tileNext = TaskCounter()
                    pool.parallelFor(threads) { _ in
                        while true {
                            let t = packNext.take()
                            if t >= rowTasks { break }
                            let rows = (t * rowSlice)..<min(k, (t + 1) * rowSlice)
                            pack(s, grp, rows: rows, col0: 0, into: scratch)
                            sx_gemm_pack_b_zero_tail(Int32(n), Int32(k), Int32(rows.lowerBound), Int32(rows.upperBound), scratch)
                            packed.finish()
                        }
                        while packed.finishedCount < rowTasks { sx_cpu_relax() }
                        while true {
                            let t = tileNext.take()
                            if t >= tiles { break }
                            let mt = t / nTiles, nt = t % nTiles
                            compute(scratch, cols: n, sample: s, group: grp,
                                    mp: min(mPanels, mUnits * mt / mTiles * unit)..<min(mPanels, mUnits * (mt + 1) / mTiles * unit),
                                    np: (nPanels * nt / nTiles)..<(nPanels * (nt + 1) / nTiles))
                        }
                    }
                }
                if act.separate {
                    let y = output + s * outSample
                    runActivation(activation, input: y, output: y, count: outSample, pool: pool)
                }
            }
        }
    }

    /// sgemm of weight rows `rows` against columns `cols` of `b` (`k×n`), then the fused
    /// bias/residual/activation epilogue on that tile while it is in cache.
    @inline(__always)
    private func gemmTile(_ weights: UnsafePointer<Float>, _ b: UnsafePointer<Float>, sample s: Int, group grp: Int, rows: Range<Int>, cols: Range<Int>,
                          residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, outSample: Int) {
        guard !rows.isEmpty && !cols.isEmpty else { return }
        let channel0 = grp * m + rows.lowerBound
        let offset = s * outSample + channel0 * n + cols.lowerBound
        let c = output + offset
        // A residual in place is already in C: accumulate onto it (beta 1).
        let inPlace = residual == UnsafePointer(output)
        sx_sgemm(sx_gemm_default_isa(), 0, 0, Int32(rows.count), Int32(cols.count), Int32(k),
                 1, weights + channel0 * k, k, b + cols.lowerBound, n, inPlace ? 1 : 0, c, n)
        for r in 0..<rows.count {
            let row = c + r * n
            addBiasAndResidual(row, count: cols.count, bias: bias[channel0 + r], residual: inPlace ? nil : residual.map { $0 + offset + r * n })
            applyActivation(activation, row, count: cols.count)
        }
    }

    /// Writes rows `rows` of the `k×n` im2col matrix of one group's input `x` into `col`.
    private func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let g = geometry
        let kArea = g.kernelHeight * g.kernelWidth
        for r in rows {
            let c = r / kArea, ky = (r / g.kernelWidth) % g.kernelHeight, kx = r % g.kernelWidth
            let src = x + c * g.inPlane
            let dst = col + r * n
            // Output columns whose input column lies inside the image.
            let off = kx * g.dilationW - g.padLeft
            let lo = min(g.outWidth, off >= 0 ? 0 : (-off + g.strideW - 1) / g.strideW)
            let hi = max(lo, g.inWidth - 1 - off < 0 ? 0 : min(g.outWidth, (g.inWidth - 1 - off) / g.strideW + 1))
            for oy in 0..<g.outHeight {
                let d = dst + oy * g.outWidth
                let iy = oy * g.strideH + ky * g.dilationH - g.padTop
                if iy < 0 || iy >= g.inHeight {
                    d.update(repeating: 0, count: g.outWidth)
                    continue
                }
                d.update(repeating: 0, count: lo)
                let srcRow = src + iy * g.inWidth + off
                if g.strideW == 1 {
                    (d + lo).update(from: srcRow + lo, count: hi - lo)
                } else {
                    for ox in lo..<hi { d[ox] = srcRow[ox * g.strideW] }
                }
                (d + hi).update(repeating: 0, count: g.outWidth - hi)
            }
        }
    }
}

/// The `t`-th of `parts` near-equal contiguous slices of `0..<count`, in multiples of 16 where possible
/// (sgemm micro-kernels work in 16-wide panels).
@inline(__always)
func slice(_ count: Int, _ t: Int, _ parts: Int) -> Range<Int> {
    let blocks = (count + 15) / 16
    let lo = min(count, blocks * t / parts * 16), hi = min(count, blocks * (t + 1) / parts * 16)
    return lo..<hi
}

/// How many chunks of near-equal size (`batch·c/chunks ..< batch·(c+1)/chunks`) `batch` samples
/// are cut into, each at most `maxChunk`, so that `threads` threads taking them in turn finish
/// together: the count that gives the smallest largest share (in samples), the fewest chunks on
/// a tie. Cutting 32 samples into chunks of at most 6 as 6,6,6,6,6,2 left one of two threads
/// 18 samples and the other 14: ResNet-18's layer4 at batch 32 ran 11 % below its one-thread
/// rate (BENCHMARKS §7.15); 8 chunks of 4 give each 16.
///
/// The search stops at the first count whose largest share is the lower bound ⌈batch / threads⌉
/// (no later count does better, and ties keep the fewer chunks): stopping only at an exactly even
/// split, an odd batch searched every count up to 4× the least, each costing `count × threads`
/// steps on every call (batch 1023 in chunks of 6 on 2 threads: 442 K steps, now 686).
func balancedChunkCount(batch: Int, maxChunk: Int, threads: Int) -> Int {
    let least = (batch + max(1, maxChunk) - 1) / max(1, maxChunk)
    guard threads > 1 && batch > 1 else { return max(1, least) }
    let bound = (batch + threads - 1) / threads
    var best = least, bestShare = Int.max
    var loads = [Int](repeating: 0, count: threads)
    var count = least
    while count <= min(batch, 4 * least + threads) {
        // The loads when each chunk goes to the thread with the least work so far.
        for t in 0..<threads { loads[t] = 0 }
        for c in 0..<count {
            let size = batch * (c + 1) / count - batch * c / count
            var t = 0
            for u in 1..<threads where loads[u] < loads[t] { t = u }
            loads[t] += size
        }
        let share = loads.max()!
        if share < bestShare { best = count; bestShare = share }
        if share == bound { break }  // no later count does better
        count += 1
    }
    return best
}

/// A shared counter threads take work items from.
final class TaskCounter: @unchecked Sendable {
    private let value = Atomic<Int>(0)
    /// The next item (0, 1, 2, …).
    func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
    /// Marks one item done (release), for counters used as completion counts.
    func finish() { value.wrappingAdd(1, ordering: .releasing) }
    /// Items marked done so far (acquire).
    var finishedCount: Int { value.load(ordering: .acquiring) }
}

/// `row[i] += bias (+ residual[i])` for `i < count`.
@inline(__always)
func addBiasAndResidual(_ row: UnsafeMutablePointer<Float>, count: Int, bias: Float, residual: UnsafePointer<Float>?) {
    let raw = UnsafeMutableRawPointer(row)
    var i = 0
    if let residual {
        let res = UnsafeRawPointer(residual)
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                + res.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) + bias
            raw.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { row[i] += bias + residual[i]; i += 1 }
    } else if bias != 0 {
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) + bias
            raw.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { row[i] += bias; i += 1 }
    }
}

/// Uninitialized floats aligned to a cache line (large ones on huge pages: `allocateForKernels`);
/// free with `deallocate()` (on Linux Swift's aligned deallocation is `free`).
func allocateFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let bytes = max(1, count) * 4
    let raw = allocateForKernels(bytes: bytes) ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    return raw.bindMemory(to: Float.self, capacity: max(1, count))
}
