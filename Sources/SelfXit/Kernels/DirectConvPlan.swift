import SelfXitGEMM

/// An ungrouped stride-1 or stride-2 convolution run as an implicit GEMM: the AVX-512
/// micro-kernel reads B straight from the input (1×1, stride 1, unpadded) or from a zero-padded
/// copy of it, instead of packing an im2col matrix. The im2col matrix of a 3×3 convolution is nine
/// times the input, so packing it cost about a third of the convolution; the copy costs a ninth.
///
/// Output pixels are computed over a grid of rows as wide as the copy's rows: grid column `q`
/// reads `x[offset(c, ky, kx) + q]` for every tap, and the columns of a row that are not output
/// pixels are computed and dropped by the micro-kernel's store. On short rows (7 to 28 pixels)
/// the product runs channel-major instead (`channelMajor`): a row's pixels are broadcast against
/// vectors of output channels, and nothing is computed for the copy's padding columns.
///
/// With stride 2 the copy is a set of subsampled planes, plane `(py, cx)` holding input rows
/// `2i + py` and columns `2j + cx` (shifted by the padding), so that a tap reads consecutive
/// output pixels' inputs from consecutive floats of one plane:
/// - few input channels (a stem), or a channel-major product: the four phases (`cx` = 0, 1) of
///   the padded plane, rows a little wider than the output's; the copy is the input's size.
/// - many channels on the grid: one plane per row phase and kernel column (`cx = kx`), rows
///   exactly as wide as the output's, so no grid column is wasted and a 48-column chunk of B
///   stays within a few rows per tap (phases' rows would hold it across six rows a channel and
///   spill out of L1); the copy is 1.5× the input for a 3×3 kernel, against 2.25× for im2col.
/// Only the planes some tap reads are copied (one for a 1×1 stride-2 convolution).
/// Channel-major products on rows of at most half the micro-kernel's pixels (7×7 outputs) copy
/// the kernel-column planes at stride 1 too (`cx = kx`, rows as wide as the output; 3× the input
/// for a 3×3 kernel), so that the plane's pixels run on from row to row (see `init`).
struct DirectConvPlan {
    let g: Conv2DGeometry
    /// The kernels the plan runs on (`direct`, and `ctd` when `channelMajor`).
    let config: UnsafePointer<sx_kernel_config>
    /// Grid columns per work unit (the configuration's `direct_unit`: 48 on AVX-512, 3 vectors of 16).
    let unitColumns: Int
    /// Whether B is a padded copy (else the input itself).
    let padded: Bool
    /// Stride 1: the padded plane.
    let paddedH: Int, paddedW: Int
    /// Stride 2: the subsampled planes, each `planeH × planeW`; `planes[slot]` is the row phase
    /// and the (padded) input column of its first column.
    let planeH: Int, planeW: Int
    let planes: [(rowPhase: Int, column: Int)]
    /// Width of the grid's rows (`paddedW` or `planeW`) and its columns: `(outH − 1)·gridW + outW`.
    let gridW: Int
    let gridColumns: Int
    /// Whether the product runs channel-major (`sx_gemm_compute_ctd`: output rows ≤ 14 pixels at
    /// a time broadcast against vectors of 16 output channels) instead of over the grid's columns.
    let channelMajor: Bool
    /// Whether the kernel is 1×1.
    let pointwise: Bool
    /// Per K row (`c, ky, kx`), where its B row starts relative to the grid column.
    let offsets: [Int32]
    /// The regular layout of `offsets` where it has one (`sx_gemm_direct_b.win_*`: stride 1 on the
    /// padded plane, K row (c, ky, kx) at c·channel + ky·row + kx·col), else zeros.
    let window: (h: Int32, w: Int32, row: Int32, col: Int32, channel: Int32)
    /// Channel-major only (else empty): per output row, where its K-row list starts in `rowK` and
    /// its length, or (−1, 0) for a row whose window rows all lie inside the input
    /// (`sx_gemm_direct_b.row_k_span`). Top and bottom rows list only the K rows (`c, ky, kx`) whose
    /// input row `oy·s − padTop + ky·dilation` exists, so the channel-major kernel skips the taps that
    /// read zero padding rows: a third of a 3×3 kernel's work on those rows — of the whole product
    /// 5 % at 28×28 outputs, 10 % at 14×14, 19 % at 7×7 (ONNX Runtime's NCHWc kernels skip them too;
    /// the grid kernels compute them, as their vectors run across rows).
    let rowKSpan: [Int32]
    let rowK: [Int32]
    /// Channel-major only, with `rowK` (else empty): the output columns whose window reaches the
    /// padding columns, each with its (start, length) of K rows in `rowK` — the taps (`c, ky, kx`)
    /// whose input column exists — and the columns between them (`interiorColumns`), which
    /// the rows without a list run as row segments (`sx_gemm_direct_b.border_col`). Only on
    /// rows of at most 14 pixels (7 at stride 2; see `init`) with at least 5 interior columns
    /// (5-pixel segments ran at the kernel's full rate per pixel; fewer leave its FMA pipes idle).
    let borderColumns: [Int32]
    let borderColumnKSpan: [Int32]
    let interiorColumns: Range<Int>
    /// Most K-row list entries kept (4 MB); past that the rows run all of K (same sums, the padding is zero).
    static let maxRowKEntries = 1 << 20
    /// Widest input (channels) a stride-2 convolution copies as phases; wider ones copy a plane per kernel column.
    static let maxPhaseSplitChannels = 16

    /// `nil` when `g` does not suit a direct product: grouped, strides other than 1×1 or 2×2, or
    /// a grid wasting more than an eighth of its columns (small planes, whose im2col is cheap anyway).
    /// Also `nil` when `config` has no direct kernel. Channel-major needs its `ctd` kernel, and
    /// takes rows as wide as the configuration's `ctd_max_width…` (AVX-512: 56 pixels at stride 1
    /// with a kernel larger than 1×1, 28 at stride 2 — 112 on CPUs not AMD's — and 14 for 1×1).
    /// `channelMajor` (tuning checks only, selfxit-kernelbench tune) overrides the rule: `true`
    /// where the configuration has a `ctd` kernel, `false` always; the grid-waste limit is then lifted.
    init?(_ g: Conv2DGeometry, config: UnsafePointer<sx_kernel_config>, channelMajor forced: Bool? = nil) {
        let s = g.strideH
        guard config.pointee.direct != nil, config.pointee.direct_unit > 0,
              g.groups == 1, g.strideW == s, s == 1 || s == 2, g.padTop >= 0, g.padLeft >= 0 else { return nil }
        self.g = g
        self.config = config
        unitColumns = Int(config.pointee.direct_unit)
        let ctdPixels = config.pointee.ctd != nil ? Int(config.pointee.ctd_max_pixels) : 0
        // Channel-major on short rows (7 to 28 output pixels): a row segment of up to 14 pixels
        // fills the micro-kernel's broadcast lanes exactly, where 16-pixel vectors would straddle
        // rows and compute the padding between them (an eighth of a 14×14 plane's grid). Measured
        // 6–25 % faster on 3×3 layers of 28×28 down to 7×7. Only with K ≥ 128, over which the
        // transposing epilogue is spread. A 1×1 product only on rows of at most 14 pixels, and
        // with fewer inputs than outputs only on planes too small for the grid (AVX-512: under 64
        // pixels, where the packed product measured 4–20 % slower; under 256 off AMD, taking
        // ResNet-50's 14×14 expansion; `ctd_1x1_expand_max_plane`); the grid was faster otherwise.
        pointwise = g.kernelHeight == 1 && g.kernelWidth == 1
        let k = g.inChannels * g.kernelHeight * g.kernelWidth
        //
        // A stride-2 1×1 (a downsample) goes channel-major on rows of at most 14 pixels whatever
        // its channels: ResNet-50's layer3.0 downsample, 512→1024 at 28→14, ran 1.06 ms against
        // the grid's 1.43 (selfxit-kernelbench r50 min, 2 threads, Zen 4; the grid's stride-2 1×1
        // products ran at 145–160 GFLOPS where the same shapes at stride 1 run at 210–220).
        // Measured and not taken (docs/BENCHMARKS.md §7.12): the 28-pixel-row downsample
        // (256→512 at 56→28) and the 7×7 stem on channel-major ran faster alone (1.07 against
        // 1.27, 1.13 against 1.27 ms) but slower inside the model (1.23–1.50 against 1.01–1.29,
        // 1.42–1.54 against 1.23–1.29). Likely why: their outputs (1.6 and 3.2 MB) are written
        // cold there, and channel-major stores rows of ≤ 14 pixels (partial cache lines) per channel.
        // On an Intel Xeon the stem is the other way round (0.90–0.95 of the grid's time in the
        // model), so that configuration's stride-2 width is 112 there (configs/kernel_config.c).
        // Stride-1 kernels larger than 1×1 go channel-major on rows of up to 56 pixels (four
        // segments): ResNet-50's 3×3 64→64 at 56×56 ran 1.024–1.060 ms in the model against the
        // grid's 1.071–1.082 at batch 1 and 8.56–8.72 against 8.94–9.14 at batch 8 (its padding
        // rows skipped, no grid column spent on padding; selfxit-bench --profile, alternating,
        // Zen 4, 2 threads; BENCHMARKS §7.20).
        let s2 = g.strideH == 2 && g.strideW == 2
        // The configuration may send stride-2 kernels over 1×1 on more than 16 input channels (not
        // a stem) to the packed product (`s2_packed`: AVX2 on CPUs with an L2 under 1 MB,
        // configs/kernel_config.c).
        if forced == nil && s2 && !pointwise && g.inChannels > DirectConvPlan.maxPhaseSplitChannels
            && config.pointee.s2_packed != 0 { return nil }
        // The widths are the configuration's (`ctd_max_width…`: AVX-512 56 / 28 (112 off AMD) / 14 /
        // 14 pixels as above; AVX2, whose 6-pixel segments cost more per row, keeps stride-2 1×1
        // products off).
        let cfgWidths = config.pointee
        let maxWidth = Int(pointwise ? (s2 ? cfgWidths.ctd_max_width_1x1_s2 : cfgWidths.ctd_max_width_1x1)
                                     : (s2 ? cfgWidths.ctd_max_width_s2 : cfgWidths.ctd_max_width))
        let rule = ctdPixels > 0 && g.outWidth >= 7 && g.outWidth <= maxWidth && k >= 128
            && (!pointwise || s2 || k >= g.outChannels || g.outPlane < Int(cfgWidths.ctd_1x1_expand_max_plane))
        if let forced, forced && ctdPixels == 0 { return nil }
        channelMajor = forced ?? rule
        // Rows and columns the windows reach.
        let reachH = max(g.inHeight + g.padTop, (g.outHeight - 1) * s + (g.kernelHeight - 1) * g.dilationH + 1)
        let reachW = max(g.inWidth + g.padLeft, (g.outWidth - 1) * s + (g.kernelWidth - 1) * g.dilationW + 1)
        // Channel-major rows of at most half the micro-kernel's pixels (ResNet-50's layer4 3×3
        // layers, 7×7 outputs) with 512 output channels or more: the kernel-column planes below,
        // exactly as wide as the output, so a plane's pixels run on from row to row and the
        // product takes them as one run in segments of up to `ctdPixels` (`dense`), where the
        // padded plane or the phase planes left 7-pixel rows (5–6 with the border columns apart)
        // and half the micro-kernel's accumulators idle, each pass streaming a channel pair's
        // weights from L2. The taps that read padding are computed (zeros: 18 % more FMAs at 7×7
        // stride 1, 9 % at stride 2; no K lists in a dense run), and the copy is 2–3× the padded
        // one, paid once a sample and saved per channel pair: selfxit-kernelbench, Intel Xeon EMR,
        // ResNet-50's 512-channel 3×3 at 7×7 0.90–0.96 (stride 1) and 0.88–0.97 (stride 2) of the
        // old layout's time, ResNet-18 w64's 256-channel ones 1.06–1.14 (stride 1) and 1.04–1.07
        // (stride 2, batch 1), DenseNet-121's 128→32 1.3: taken from 512 output channels.
        let narrowChannelMajor = channelMajor && !pointwise && 2 * g.outWidth <= ctdPixels && g.outChannels >= 512
        var planes: [(rowPhase: Int, column: Int)] = []
        /// Slot of the plane a tap at padded offset (`dy`, `dx`) reads, and its offset in that plane.
        var tap: (Int, Int) -> (slot: Int, offset: Int)
        if s == 1 && !narrowChannelMajor {
            (paddedH, paddedW) = (reachH, reachW)
            (planeH, planeW) = (0, 0)
            padded = paddedH != g.inHeight || paddedW != g.inWidth
            gridW = paddedW
            tap = { dy, dx in (0, dy * reachW + dx) }
        } else if s == 2 && !narrowChannelMajor && (channelMajor || g.inChannels <= DirectConvPlan.maxPhaseSplitChannels) {
            // Phases: channel-major products waste nothing on the planes' extra column, and
            // taps kx and kx + 2 share their rows' cache lines.
            (paddedH, paddedW) = (0, 0)
            planeH = (reachH + s - 1) / s
            planeW = (reachW + s - 1) / s
            padded = true
            gridW = planeW
            tap = { [planeW] dy, dx in
                let key = (rowPhase: dy % s, column: dx % s)
                let slot = planes.firstIndex { $0 == key } ?? { planes.append(key); return planes.count - 1 }()
                return (slot, dy / s * planeW + dx / s)
            }
        } else {
            (paddedH, paddedW) = (0, 0)
            planeH = g.outHeight + (g.kernelHeight - 1) * g.dilationH / s
            planeW = g.outWidth
            padded = true
            gridW = planeW
            tap = { [planeW] dy, dx in
                let key = (rowPhase: dy % s, column: dx)
                let slot = planes.firstIndex { $0 == key } ?? { planes.append(key); return planes.count - 1 }()
                return (slot, dy / s * planeW)
            }
        }
        gridColumns = (g.outHeight - 1) * gridW + g.outWidth
        let computed = (gridColumns + 15) / 16 * 16
        guard forced != nil || channelMajor || (gridColumns >= 64 && 8 * g.outPlane >= 7 * computed) else { return nil }
        // The configuration's limits on the grid (measured per ISA: AVX2's 6×16 tile loses to the
        // packed products on tiny K and on 1×1 layers with many output channels).
        let minK = Int(config.pointee.direct_min_k), maxPointwiseM = Int(config.pointee.direct_pointwise_max_m)
        guard forced != nil || channelMajor
                || (k >= minK && (!pointwise || maxPointwiseM == 0 || g.outChannels <= maxPointwiseM)) else { return nil }
        // Per channel: the taps' (slot, offset), the same for every channel.
        var taps: [(slot: Int, offset: Int)] = []
        for ky in 0..<g.kernelHeight {
            for kx in 0..<g.kernelWidth { taps.append(tap(ky * g.dilationH, kx * g.dilationW)) }
        }
        self.planes = planes
        // Checked: with hostile pads or dilations these products can leave Int (the C offsets
        // below are 32-bit anyway); such geometries go to im2col, whose scratch the plan bounds.
        let (pH, pW, plH, plW) = (paddedH, paddedW, planeH, planeW)
        guard let channelFloats = planes.isEmpty ? checkedMultiply(pH, pW)
                : checkedMultiply(planes.count, plH).flatMap({ checkedMultiply($0, plW) }),
              let sampleFloats = checkedMultiply(g.inChannels, channelFloats), sampleFloats < Int(Int32.max) else { return nil }
        let plane = planes.isEmpty ? 0 : planeH * planeW
        offsets = (0..<g.inChannels).flatMap { c in taps.map { Int32(c * channelFloats + $0.slot * plane + $0.offset) } }
        // One plane a channel at stride 1: tap (ky, kx) at ky·dilationH rows and kx·dilationW
        // columns of the padded plane (`tap` above). The steps of a window with a second row or
        // column lie inside one channel's plane (under `sampleFloats` < 2³¹); a 1-wide or 1-high
        // window's step is never taken and stays 0 (a model's dilation there can be anything).
        window = s == 1 && planes.isEmpty
            ? (Int32(g.kernelHeight), Int32(g.kernelWidth), g.kernelHeight > 1 ? Int32(g.dilationH * gridW) : 0,
               g.kernelWidth > 1 ? Int32(g.dilationW) : 0, Int32(channelFloats))
            : (0, 0, 0, 0, 0)
        // Border columns apart only where a row is one segment (stride 1) or half of one (stride
        // 2): ResNet-50 b1's 3×3 layers (selfxit-bench --profile, alternating, Zen 4, 2 threads)
        // at 14×14 ran 0.968 ms against 0.988 with them apart, at 7×7 0.997–1.026 against
        // 1.054–1.063, stride 2 into 7×7 1.137–1.147 against 1.161–1.167; but at 28×28 and 56×56
        // 1–2.5 % slower, stride 2 into 14×14 1.5 % slower: a column segment's 14 pixels lie on 14
        // grid rows, whose lines for all the channels outgrow L1, while the work saved shrinks
        // with the row's width (2 columns of `outWidth`).
        let columnsApart = g.outWidth <= (s == 1 ? ctdPixels : ctdPixels / 2)
        let lists = channelMajor && !pointwise && !narrowChannelMajor ? DirectConvPlan.kLists(g, columns: columnsApart) : nil
        rowKSpan = lists?.rowSpans ?? []
        rowK = lists?.entries ?? []
        borderColumns = lists?.columns ?? []
        borderColumnKSpan = lists?.columnSpans ?? []
        interiorColumns = lists?.interior ?? 0..<0
    }

    /// The K-row lists of `g`'s top and bottom rows and border columns (`rowKSpan`, `borderColumns`);
    /// `nil` when no window reaches the padding or the lists would pass `maxRowKEntries`.
    private static func kLists(_ g: Conv2DGeometry, columns wanted: Bool)
        -> (rowSpans: [Int32], entries: [Int32], columns: [Int32], columnSpans: [Int32], interior: Range<Int>)? {
        let taps = g.kernelHeight * g.kernelWidth
        var entries: [Int32] = []
        /// Where the list of the taps with kernel rows `kys` and columns `kxs` starts (shared by
        /// the rows, or columns, with the same ones); nil past the budget.
        var known: [[Int]: Int32] = [:]
        func list(kys: Range<Int>, kxs: Range<Int>) -> Int32? {
            let key = [kys.lowerBound, kys.upperBound, kxs.lowerBound, kxs.upperBound]
            if let start = known[key] { return start }
            guard entries.count + g.inChannels * kys.count * kxs.count <= maxRowKEntries else { return nil }
            let start = Int32(entries.count)
            for c in 0..<g.inChannels {
                for ky in kys {
                    for kx in kxs { entries.append(Int32(c * taps + ky * g.kernelWidth + kx)) }
                }
            }
            known[key] = start
            return start
        }
        /// Kernel rows (or columns) whose input row (column) exists: a range, as the input index grows with the tap.
        func valid(_ o: Int, stride: Int, pad: Int, dilation: Int, extent: Int, size: Int) -> Range<Int> {
            let first = o * stride - pad
            let inside = (0..<extent).filter { first + $0 * dilation >= 0 && first + $0 * dilation < size }
            return (inside.first ?? 0)..<((inside.last ?? -1) + 1)
        }
        let allRows = 0..<g.kernelHeight, allColumns = 0..<g.kernelWidth
        var rowSpans: [Int32] = []
        rowSpans.reserveCapacity(2 * g.outHeight)
        var anyRow = false
        for oy in 0..<g.outHeight {
            let kys = valid(oy, stride: g.strideH, pad: g.padTop, dilation: g.dilationH, extent: g.kernelHeight, size: g.inHeight)
            if kys == allRows { rowSpans += [-1, 0]; continue }
            guard let start = list(kys: kys, kxs: allColumns) else { return nil }
            rowSpans += [start, Int32(g.inChannels * kys.count * g.kernelWidth)]
            anyRow = true
        }
        // Border columns: those outside the run of columns whose windows lie inside the input.
        let kxsOf = (0..<g.outWidth).map { valid($0, stride: g.strideW, pad: g.padLeft, dilation: g.dilationW, extent: g.kernelWidth, size: g.inWidth) }
        let inner = kxsOf.indices.filter { kxsOf[$0] == allColumns }
        var columns: [Int32] = [], columnSpans: [Int32] = []
        var interior = 0..<0
        if wanted, let first = inner.first, let last = inner.last, last + 1 - first == inner.count, inner.count >= 5,
           inner.count < g.outWidth {
            let saved = (entries, known)
            var fits = true
            for ox in 0..<g.outWidth where !(first...last).contains(ox) {
                guard let start = list(kys: allRows, kxs: kxsOf[ox]) else { fits = false; break }
                columns.append(Int32(ox))
                columnSpans += [start, Int32(g.inChannels * g.kernelHeight * kxsOf[ox].count)]
            }
            if fits { interior = first..<(last + 1) } else { (entries, known) = saved; columns = []; columnSpans = [] }
        }
        guard anyRow || !columns.isEmpty else { return nil }
        // Rows or columns whose window lies wholly in the padding list nothing: keep the pointer valid anyway.
        return (anyRow ? rowSpans : [], entries.isEmpty ? [0] : entries, columns, columnSpans, interior)
    }

    /// Floats of one sample's padded copy (0 when B is the input itself).
    private var copyFloats: Int {
        guard padded else { return 0 }
        return g.inChannels * (planes.isEmpty ? paddedH * paddedW : planes.count * planeH * planeW)
    }

    /// Whether a batch runs weight tile by weight tile, each tile over every sample of a group
    /// (`run`), instead of sample by sample: weights of 1 MB or more that outweigh a sample's input
    /// (the products split by output channels). Sample by sample every sample streamed all the
    /// weights from L3 again (ResNet-50's layer4 3×3, 9.4 MB: 1.90 ms a sample cold against 1.57
    /// with the weights in cache, one thread, Intel Xeon EMR); a tile of a few hundred KB stays in
    /// L2 while the group's samples pass through it.
    var reusesWeightsAcrossSamples: Bool {
        // In Double, as `run`'s FLOP count: the Int products of a model-supplied geometry could overflow.
        let weightFloats = Double(g.outChannels) * Double(g.inChannels) * Double(g.kernelHeight) * Double(g.kernelWidth)
        return weightFloats >= Double(1 << 18) && weightFloats >= Double(channelMajor && pointwise ? 2 : 1) * Double(g.inChannels) * Double(g.inPlane)
    }

    /// Padded samples a thread's scratch holds for the weight-tile-major batch (`run`): up to 4,
    /// within 2 MB a thread; 1 where the batch runs sample by sample.
    private var copiesPerThread: Int {
        guard padded, reusesWeightsAcrossSamples else { return 1 }
        return max(1, min(4, (1 << 19) / max(1, copyFloats)))
    }

    /// Floats of scratch per thread (the padded copies: one sample's, or `copiesPerThread`).
    var scratchFloats: Int { copyFloats * copiesPerThread }

    /// Preconditions as `Conv2DKernel.run`; `weights` packed for AVX-512 (`m = outC`, `k = inC·kH·kW`),
    /// `bias` has `outC` entries, and the CPU runs AVX-512.
    func run(input: UnsafePointer<Float>, weights: PackedMatrixA, bias: UnsafePointer<Float>,
             residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, batch: Int,
             activation: Activation, scratch: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let threads = pool.threadCount
        let inSample = g.inChannels * g.inPlane, outSample = g.outChannels * g.outPlane
        let act = PackedGEMM.fused(activation, config: config)
        let mPanels = weights.panels

        // A sample's product splits into units: output rows (channel-major) or 48-column chunks
        // of the grid (the micro-kernel's widest pass).
        let unitColumns = self.unitColumns
        let units = channelMajor ? g.outHeight : (gridColumns + unitColumns - 1) / unitColumns
        let cfg = config.pointee
        offsets.withUnsafeBufferPointer { off in
          rowKSpan.withUnsafeBufferPointer { rowKSpan in
          rowK.withUnsafeBufferPointer { rowK in
          borderColumns.withUnsafeBufferPointer { borderColumns in
          borderColumnKSpan.withUnsafeBufferPointer { borderColumnKSpan in
            /// A panels `mp` × units `u` of sample `s`, B read from `src`.
            func compute(_ s: Int, _ src: UnsafePointer<Float>, mp: Range<Int>, units u: Range<Int>) {
                guard !mp.isEmpty && !u.isEmpty else { return }
                var b = sx_gemm_direct_b(x: src, offsets: off.baseAddress, n: Int32(gridColumns),
                                         grid_w: Int32(gridW), valid_w: Int32(g.outWidth),
                                         row_k_span: rowKSpan.isEmpty ? nil : rowKSpan.baseAddress,
                                         row_k: rowK.isEmpty ? nil : rowK.baseAddress,
                                         col0: Int32(interiorColumns.lowerBound), col1: Int32(interiorColumns.upperBound),
                                         border_cols: Int32(borderColumns.count),
                                         border_col: borderColumns.isEmpty ? nil : borderColumns.baseAddress,
                                         col_k_span: borderColumnKSpan.isEmpty ? nil : borderColumnKSpan.baseAddress,
                                         win_h: window.h, win_w: window.w, win_row: window.row, win_col: window.col,
                                         win_channel: window.channel)
                var out = sx_gemm_out(c: output + s * outSample, ldc: g.outPlane, c_sample_stride: 0,
                                      residual: residual.map { $0 + s * outSample }, ldr: g.outPlane, r_sample_stride: 0,
                                      bias: bias, cols_per_sample: Int32(g.outPlane),
                                      act: act.code, lo: act.lo, hi: act.hi)
                if channelMajor {
                    cfg.ctd(weights.data, Int32(weights.m), Int32(weights.k), Int32(mp.lowerBound), Int32(mp.upperBound),
                            &b, Int32(u.lowerBound), Int32(u.upperBound), &out)
                } else {
                    cfg.direct(weights.data, Int32(weights.m), Int32(weights.k), Int32(mp.lowerBound), Int32(mp.upperBound),
                               &b, Int32(min(gridColumns, u.lowerBound * unitColumns)), Int32(min(gridColumns, u.upperBound * unitColumns)), &out)
                }
            }

            // A panels split into `tiles` channel tiles (pairs of panels when channel-major, the
            // micro-kernel's two vectors): tile `mt`'s panels.
            let panelUnit = channelMajor ? 2 : 1
            let mUnits = (mPanels + panelUnit - 1) / panelUnit
            func tilePanels(_ mt: Int, of tiles: Int) -> Range<Int> {
                min(mPanels, mUnits * mt / tiles * panelUnit)..<min(mPanels, mUnits * (mt + 1) / tiles * panelUnit)
            }

            if batch > 1 && reusesWeightsAcrossSamples {
                // Weight tile by weight tile: each tile (about 256 KB of packed weights, at least
                // two a thread) runs every sample of a group before the next tile is fetched, so a
                // batch streams the weights once a group instead of once a sample. A group is as
                // many samples as the scratch holds padded copies of (all threads' scratch,
                // shared), or the whole batch when B is the input itself.
                let weightBytes = Double(weights.m) * Double(weights.k) * 4
                let mTiles = min(mUnits, max(2 * threads, Int(weightBytes / Double(1 << 18))))
                let copy = copyFloats
                let groupSize = padded ? threads * copiesPerThread : batch
                var first = 0
                while first < batch {
                    let group = first..<min(batch, first + groupSize)
                    if padded {
                        pool.parallelForItems(group.count) { _, i in
                            pad(input + (group.lowerBound + i) * inSample, channels: 0..<g.inChannels, into: scratch + i * copy)
                        }
                    }
                    pool.parallelForItems(mTiles) { _, mt in
                        let mp = tilePanels(mt, of: mTiles)
                        for s in group {
                            let src = padded ? UnsafePointer(scratch + (s - group.lowerBound) * copy) : input + s * inSample
                            compute(s, src, mp: mp, units: 0..<units)
                        }
                    }
                    if act.separate {
                        for s in group {
                            let y = output + s * outSample
                            runActivation(activation, input: y, output: y, count: outSample, pool: pool)
                        }
                    }
                    first = group.upperBound
                }
                return
            }

            // Whole samples per thread when there are many samples a thread, or cheap ones: with a
            // few costly samples the last one taken leaves the other threads idle for most of a
            // sample (measured: ResNet-50 at batch 8 faster shared, MobileNetV2 at batch 8 slower).
            // In Double: for a model-supplied geometry the Int product could overflow (and trap).
            let sampleFLOPs = 2 * Double(weights.m) * Double(weights.k) * Double(gridColumns)
            if threads == 1 || batch >= 8 * threads || (batch >= threads && sampleFLOPs < 50e6) {
                // Each sample padded into the thread's own scratch.
                pool.parallelForItems(batch) { t, s in
                    let buffer = scratch + t * scratchFloats
                    let x = input + s * inSample
                    if padded { pad(x, channels: 0..<g.inChannels, into: buffer) }
                    compute(s, padded ? UnsafePointer(buffer) : x, mp: 0..<mPanels, units: 0..<units)
                    if act.separate { applyActivation(activation, output + s * outSample, count: outSample) }
                }
                return
            }
            // Otherwise pad one sample at a time together, then share its product out as tiles of
            // unit ranges × A panels, about 8 per thread (the last tile taken decides when the job
            // ends, so tiles stay small). Channel-major panels go in pairs (the micro-kernel's two
            // vectors). Each thread owns a contiguous share of the tiles (and of the padding) and
            // takes from the others' shares only when its own is done.
            //
            // The larger operand is the one split over the threads (each reads all of the other):
            // output channels when the weights outweigh the input (late layers, whose weights are
            // megabytes: a tile streams its channels' weights once for all its rows), else pixels,
            // which also leaves most of a layer's input in the L2 of the core that wrote it. A 1×1
            // channel-major product splits channels only from twice the input's size: ResNet-50's
            // 1024→256 at 14×14 (weights 1.3× the input) ran 9 % faster split by rows. Splitting
            // the larger operand saved 2–13 % on ResNet-50's 1×1 layers at 14×14 and its stride-2
            // 3×3 at 56×56, measured at batch 1 on 2 threads against a fixed split.
            let weightFloats = Double(weights.m) * Double(weights.k), inputFloats = Double(g.inChannels) * Double(g.inPlane)
            let nTiles: Int, mTiles: Int
            if weightFloats >= (channelMajor && pointwise ? 2 : 1) * inputFloats {
                mTiles = min(mUnits, 8 * threads)
                nTiles = mTiles >= 2 * threads ? 1 : min(units, (2 * threads + mTiles - 1) / mTiles)
            } else if channelMajor {
                // One block of rows a thread, each streaming the weights once (in up to 8 pair tiles).
                nTiles = min(units, threads)
                mTiles = min(mUnits, 8)
            } else {
                // On the grid a tile streams its columns of B once while all of A (a few hundred KB
                // at most) stays in L2; a tile of one A panel would stream all of B once per panel.
                nTiles = min(max(1, units / 2), 8 * threads)
                mTiles = min(mUnits, max(1, (8 * threads + nTiles - 1) / nTiles))
            }
            let tiles = nTiles * mTiles
            for s in 0..<batch {
                let x = input + s * inSample
                if padded && channelMajor && copyFloats <= 1 << 18 {
                    // Channel-major (short rows, planes up to 28 wide) with a copy of at most 1 MB:
                    // each thread pads the whole sample into its own scratch and then takes tiles.
                    // Padded together, half of every tile's B was written by the other core, and its
                    // scattered broadcast loads miss L2 on every such line: on the Zen 4 VM in its
                    // slower state (the same binary 41 or 50 ms a ResNet-50 image, run to run —
                    // cross-core traffic is the likely difference), ResNet-50's 3×3 layers at 28×28
                    // and 14×14 ran 1.5× faster on two threads than on one where the 1×1 ones ran
                    // 1.95× (in the model 1.35 → 1.11 ms each with this; ResNet-50 b1 49.8 → 48.4
                    // ms; unchanged in the faster state). One hand-off a layer instead of two, too.
                    // Larger copies (stride 2 on 56×56 planes: 1.7 MB) cost more to make twice than
                    // they save.
                    if nTiles == threads {
                        // Split by rows: thread t computes row block t first (`parallelForEachThread`
                        // keeps t on one core layer after layer) and pads only the rows its blocks
                        // read, which that core wrote in the previous layer: padding all of them
                        // pulled the other core's half of the input across (ResNet-18 w64's 28×28
                        // layers ran 1.25× their time alone inside the model, batch 1, 2 threads).
                        let next = (0..<threads).map { _ in TaskCounter() }
                        pool.parallelForEachThread { t in
                            let buffer = scratch + t * scratchFloats
                            for o in 0..<threads {
                                let share = (t + o) % threads
                                let u = (units * share / threads)..<(units * (share + 1) / threads)
                                var ready = false
                                while true {
                                    let mt = next[share].take()
                                    guard mt < mTiles else { break }
                                    if !ready { pad(x, outputRows: u, into: buffer); ready = true }
                                    compute(s, UnsafePointer(buffer), mp: tilePanels(mt, of: mTiles), units: u)
                                }
                            }
                        }
                    } else {
                        let next = TaskCounter()
                        pool.parallelFor(threads) { t in
                            let buffer = scratch + t * scratchFloats
                            var ready = false
                            while true {
                                let tile = next.take()
                                guard tile < tiles else { break }
                                if !ready { pad(x, channels: 0..<g.inChannels, into: buffer); ready = true }
                                let nt = tile / mTiles
                                compute(s, UnsafePointer(buffer), mp: tilePanels(tile % mTiles, of: mTiles),
                                        units: (units * nt / nTiles)..<(units * (nt + 1) / nTiles))
                            }
                        }
                    }
                    if act.separate {
                        let y = output + s * outSample
                        runActivation(activation, input: y, output: y, count: outSample, pool: pool)
                    }
                    continue
                }
                if padded {
                    pool.parallelFor(threads) { t in
                        if planes.isEmpty {
                            pad(x, channels: 0..<g.inChannels, rows: (paddedH * t / threads)..<(paddedH * (t + 1) / threads), into: scratch)
                        } else {
                            pad(x, channels: (g.inChannels * t / threads)..<(g.inChannels * (t + 1) / threads), into: scratch)
                        }
                    }
                }
                let src = padded ? UnsafePointer(scratch) : x
                let tilesPerShare = (tiles + threads - 1) / threads
                pool.parallelForShares(itemsPerShare: tilesPerShare) { share, item in
                    let tile = share * tilesPerShare + item
                    guard tile < tiles else { return }
                    let nt = tile / mTiles
                    compute(s, src, mp: tilePanels(tile % mTiles, of: mTiles), units: (units * nt / nTiles)..<(units * (nt + 1) / nTiles))
                }
                if act.separate {
                    let y = output + s * outSample
                    runActivation(activation, input: y, output: y, count: outSample, pool: pool)
                }
            }
          }
          }
          }
          }
        }
    }

    /// Copies channels `channels` of one sample `x` into the zero-padded plane or the `planes`
    /// (subsampled at stride 2, kernel-column at stride 1) of `buffer`.
    private func pad(_ x: UnsafePointer<Float>, channels: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        if planes.isEmpty { return pad(x, channels: channels, rows: 0..<paddedH, into: buffer) }
        copyPlaneRows(x, channels: channels, planeRows: 0..<planeH, into: buffer)
    }

    /// The rows of every channel's padded plane or `planes` that output rows `outputRows` read.
    private func pad(_ x: UnsafePointer<Float>, outputRows: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let s = g.strideH
        let reach = outputRows.upperBound + (g.kernelHeight - 1) * g.dilationH / s
        if planes.isEmpty { return pad(x, channels: 0..<g.inChannels, rows: outputRows.lowerBound..<min(paddedH, reach), into: buffer) }
        copyPlaneRows(x, channels: 0..<g.inChannels, planeRows: outputRows.lowerBound..<min(planeH, reach), into: buffer)
    }

    /// Rows `planeRows` of the subsampled (stride 2) or kernel-column (stride 1) planes of channels `channels`.
    private func copyPlaneRows(_ x: UnsafePointer<Float>, channels: Range<Int>, planeRows rows: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        guard !rows.isEmpty else { return }
        let plane = planeH * planeW
        for c in channels {
            let src = x + c * g.inPlane
            for (slot, (py, column)) in planes.enumerated() {
                if g.strideH == 1 {
                    // Stride 1 (kernel-column planes): plane row r is input row r − padTop, column j input column j + column − padLeft.
                    sx_pad_plane_rows(src, Int32(g.inHeight), Int32(g.inWidth), Int32(g.padTop), Int32(g.padLeft - column),
                                      buffer + (c * planes.count + slot) * plane, Int32(planeW), Int32(rows.lowerBound), Int32(rows.upperBound))
                    continue
                }
                sx_subsample2_plane(src, Int32(g.inHeight), Int32(g.inWidth), Int32(py - g.padTop + 2 * rows.lowerBound), Int32(column - g.padLeft),
                                    buffer + (c * planes.count + slot) * plane + rows.lowerBound * planeW, Int32(rows.count), Int32(planeW))
            }
        }
    }

    /// Stride 1: rows `rows` of padded planes `channels` (input rows at `padTop, padLeft`, zeros around).
    private func pad(_ x: UnsafePointer<Float>, channels: Range<Int>, rows: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let plane = paddedH * paddedW
        for c in channels {
            sx_pad_plane_rows(x + c * g.inPlane, Int32(g.inHeight), Int32(g.inWidth), Int32(g.padTop), Int32(g.padLeft),
                              buffer + c * plane, Int32(paddedW), Int32(rows.lowerBound), Int32(rows.upperBound))
        }
    }
}
