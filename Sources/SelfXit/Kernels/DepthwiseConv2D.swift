import SelfXitGEMM

/// Direct depthwise convolution (`groups == inC == outC`), any kernel, stride, dilation and padding.
///
/// Each channel plane is first copied into a zero-padded per-thread buffer so that the inner loops
/// need no bounds checks. With horizontal stride `s` each padded row is stored as `s` phases
/// (columns `p, p+s, p+2s, …` for phase `p`), so every kernel tap reads 16 consecutive outputs'
/// inputs with one contiguous load. Output rows are computed 16 pixels at a time with all taps
/// accumulated in registers; 3×3 kernels keep their nine weights hoisted.
///
/// 3×3 kernels with dilation 1 and stride 1 or 2 (MobileNet's) skip the padded copy where the
/// kernel configuration has a `dw3x3_direct` kernel (AVX-512 today):
/// `sx_dw3x3_direct` reads the plane in place with masked loads, deinterleaving stride-2 rows in
/// registers; the copy was most of the time of a stride-2 layer. Other square-or-not kernels up
/// to `SX_DW_DIRECT_MAX_K` (5×5 in MobileNetV3 and EfficientNet) with dilation 1 and stride 1 or
/// 2 do the same through the configuration's `dw_direct` (x86/depthwise_kxk_avx512.c,
/// x86/depthwise_kxk_avx2.c), as do 3×3 kernels where a configuration has `dw_direct` but no
/// `dw3x3_direct`; before it they took the padded copy and the Swift loop below, 15× their FLOPs
/// at peak. `dw_direct` applies HardSwish / SiLU / Sigmoid as it stores; the other kernels do
/// where the configuration lists them (`fused_acts`), instead of a second pass over the plane.
struct DepthwisePlan {
    let g: Conv2DGeometry
    /// The kernels the plan runs on (a test's forced configuration, else the default one).
    let config: UnsafePointer<sx_kernel_config>
    /// Whether planes are read in place (`dw3x3_direct` or `dw_direct`) rather than through the padded buffer.
    let readsInPlace: Bool
    /// Whether the in-place kernel is the configuration's `dw_direct` (any size) rather than `dw3x3_direct`.
    let usesKxK: Bool
    /// Padded rows: enough for every tap of every output row.
    let paddedH: Int
    /// Floats per phase of a padded row, and per padded row (`strideW` phases).
    let phaseW: Int
    let rowW: Int
    /// Offset within a padded row of kernel column `kx`'s input for output pixel 0.
    let tapOffsets: [Int]

    /// `inPlace: false` (tuning checks only) takes the padded copy where the rule would read in place.
    init(_ g: Conv2DGeometry, config: UnsafePointer<sx_kernel_config> = PackedGEMM.currentConfig, inPlace: Bool = true) {
        self.g = g
        self.config = config
        let directShape = g.dilationH == 1 && g.dilationW == 1 && g.strideH == g.strideW && (g.strideH == 1 || g.strideH == 2)
        let is3x3 = g.kernelHeight == 3 && g.kernelWidth == 3
        // A config may read stride-1 3×3 planes in place only up to a size (AVX2: measured per plane size).
        let maxPlaneS1 = Int(config.pointee.dw3x3_direct_max_plane_s1)
        let in3x3 = inPlace && directShape && is3x3 && config.pointee.dw3x3_direct != nil
            && (g.strideH == 2 || maxPlaneS1 == 0 || g.inHeight * g.inWidth <= maxPlaneS1)
        // 3×3 goes through `dw_direct` only where the configuration has no 3×3 kernel of its own.
        usesKxK = inPlace && directShape && (!is3x3 || config.pointee.dw3x3_direct == nil) && config.pointee.dw_direct != nil
            && g.kernelHeight <= Int(SX_DW_DIRECT_MAX_K) && g.kernelWidth <= Int(SX_DW_DIRECT_MAX_K)
        readsInPlace = in3x3 || usesKxK
        paddedH = (g.outHeight - 1) * g.strideH + (g.kernelHeight - 1) * g.dilationH + 1
        let roundedW = (g.outWidth + 15) / 16 * 16
        let phaseW = roundedW + (g.kernelWidth - 1) * g.dilationW / g.strideW + 1
        self.phaseW = phaseW
        rowW = phaseW * g.strideW
        tapOffsets = (0..<g.kernelWidth).map { kx in
            let c = kx * g.dilationW
            return (c % g.strideW) * phaseW + c / g.strideW
        }
    }

    var scratchFloats: Int { readsInPlace ? 0 : paddedH * rowW }

    /// Output pixels up to which a small batch splits planes (channels) over the threads rather
    /// than each plane's rows.
    static let maxPlaneSplitByChannels = 256

    /// Preconditions as `Conv2DKernel.run`; `weights` is `[C][kH][kW]`, `bias` has `C` entries.
    func run(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>,
             residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, batch: Int,
             activation: Activation, scratch: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let planes = batch * g.inChannels
        let parts = min(pool.threadCount, planes)
        let taps = g.kernelHeight * g.kernelWidth
        // `dw_direct` applies every activation code as it stores, whatever `fused_acts` says of
        // the configuration's other kernels (AVX2: its GEMM epilogues do not).
        let fused = usesKxK ? PackedGEMM.fused(activation, extended: ~0) : PackedGEMM.fused(activation, config: config)
        let offsets3 = tapOffsets.map { Int32($0) }
        if readsInPlace && batch < pool.threadCount {
            // Small batch: each thread owns a share of the work, planes handed out in chunks.
            // Large planes: a share of the rows of every plane (the rows the convolutions around
            // it give the same thread). Small planes (14×14 and less): a contiguous share of the
            // planes, whole, as the 1×1 convolutions around them split their channels; split by
            // rows, a 7-row plane left each thread a few rows a call (measured 40 % slower).
            let threads = pool.threadCount
            let byPlanes = g.outPlane <= DepthwisePlan.maxPlaneSplitByChannels
            let perShare = byPlanes ? (planes + threads - 1) / threads : planes
            let chunk = max(1, perShare / 8)
            pool.parallelForShares(itemsPerShare: (perShare + chunk - 1) / chunk) { share, item in
                let shareStart = byPlanes ? share * perShare : 0
                let first = shareStart + item * chunk
                let end = min(planes, shareStart + perShare, first + chunk)
                guard first < end else { return }  // the last shares may be short or empty
                let rows = byPlanes ? 0..<g.outHeight : (g.outHeight * share / threads)..<(g.outHeight * (share + 1) / threads)
                for p in first..<end {
                    direct(plane: p, rows: rows, input: input, weights: weights, bias: bias, residual: residual,
                           output: output, activation: activation, fused: fused)
                }
            }
            return
        }
        // Planes are handed out dynamically in small chunks (cores of a shared machine run unevenly).
        let chunk = max(1, planes / (8 * parts))
        let chunks = (planes + chunk - 1) / chunk
        pool.parallelForItems(chunks, slots: parts) { t, ci in
            let buffer = scratch + t * scratchFloats
            for p in (ci * chunk)..<min(planes, (ci + 1) * chunk) {
                let c = p % g.inChannels
                if readsInPlace {
                    direct(plane: p, rows: 0..<g.outHeight, input: input, weights: weights, bias: bias, residual: residual,
                           output: output, activation: activation, fused: fused)
                    continue
                }
                fillPadded(input + p * g.inPlane, buffer)
                let out = output + p * g.outPlane
                var activated = false
                if g.kernelHeight == 3 && g.kernelWidth == 3 {
                    let fuse = residual == nil && !fused.separate
                    offsets3.withUnsafeBufferPointer { off in
                        config.pointee.dw3x3_plane(buffer, g.strideH * rowW, g.dilationH * rowW, off.baseAddress, weights + c * taps, bias[c],
                                       out, Int32(g.outHeight), Int32(g.outWidth),
                                       fuse ? fused.code : Int32(SX_GEMM_ACT_NONE), fused.lo, fused.hi)
                    }
                    activated = fuse
                } else if let plane = config.pointee.dw_plane {
                    let fuse = residual == nil && !fused.separate
                    offsets3.withUnsafeBufferPointer { off in
                        plane(buffer, g.strideH * rowW, g.dilationH * rowW, off.baseAddress, Int32(g.kernelHeight), Int32(g.kernelWidth),
                              weights + c * taps, bias[c], out, Int32(g.outHeight), Int32(g.outWidth),
                              fuse ? fused.code : Int32(SX_GEMM_ACT_NONE), fused.lo, fused.hi)
                    }
                    activated = fuse
                } else {
                    rows(buffer, weights + c * taps, bias[c], out)
                }
                if let residual {
                    addBiasAndResidual(out, count: g.outPlane, bias: 0, residual: residual + p * g.outPlane)
                }
                if !activated { applyActivation(activation, out, count: g.outPlane) }
            }
        }
    }

    /// Rows `rows` of plane `p` by the configuration's in-place kernel (requires `readsInPlace`).
    private func direct(plane p: Int, rows: Range<Int>, input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                        activation: Activation, fused: (code: Int32, lo: Float, hi: Float, separate: Bool)) {
        let c = p % g.inChannels
        let y = output + p * g.outPlane
        let x = input + p * g.inPlane
        let r = residual.map { $0 + p * g.outPlane }
        if usesKxK {
            config.pointee.dw_direct(x, Int32(g.inHeight), Int32(g.inWidth), Int32(g.kernelHeight), Int32(g.kernelWidth),
                                     Int32(g.strideH), Int32(g.padTop), Int32(g.padLeft), weights + c * g.kernelHeight * g.kernelWidth,
                                     bias[c], r, y, Int32(rows.lowerBound), Int32(rows.upperBound), Int32(g.outWidth),
                                     fused.code, fused.lo, fused.hi)
        } else {
            config.pointee.dw3x3_direct(x, Int32(g.inHeight), Int32(g.inWidth), Int32(g.strideH),
                                        Int32(g.padTop), Int32(g.padLeft), weights + c * 9, bias[c],
                                        r, y, Int32(rows.lowerBound), Int32(rows.upperBound), Int32(g.outWidth),
                                        fused.code, fused.lo, fused.hi)
        }
        if fused.separate { applyActivation(activation, y + rows.lowerBound * g.outWidth, count: rows.count * g.outWidth) }
    }

    private func fillPadded(_ x: UnsafePointer<Float>, _ buffer: UnsafeMutablePointer<Float>) {
        for py in 0..<paddedH {
            let dst = buffer + py * rowW
            let iy = py - g.padTop
            guard iy >= 0 && iy < g.inHeight else {
                dst.update(repeating: 0, count: rowW)
                continue
            }
            let src = x + iy * g.inWidth
            if g.strideW == 1 {
                let left = min(g.padLeft, rowW)
                let copy = max(0, min(g.inWidth, rowW - g.padLeft))
                dst.update(repeating: 0, count: left)
                (dst + left).update(from: src, count: copy)
                (dst + left + copy).update(repeating: 0, count: rowW - left - copy)
            } else {
                for phase in 0..<g.strideW {
                    // Phase columns j with input column j·s + phase − padLeft inside the image.
                    let off = phase - g.padLeft
                    let lo = min(phaseW, off >= 0 ? 0 : (-off + g.strideW - 1) / g.strideW)
                    let hi = max(lo, g.inWidth - 1 - off < 0 ? 0 : min(phaseW, (g.inWidth - 1 - off) / g.strideW + 1))
                    let d = dst + phase * phaseW
                    d.update(repeating: 0, count: lo)
                    if g.strideW == 2 {
                        config.pointee.deinterleave2(src + off, d, Int32(lo), Int32(hi))
                    } else {
                        for j in lo..<hi { d[j] = src[j * g.strideW + off] }
                    }
                    (d + hi).update(repeating: 0, count: phaseW - hi)
                }
            }
        }
    }

    @inline(__always)
    private func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Any kernel size.
    private func rows(_ buffer: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: Float,
                      _ out: UnsafeMutablePointer<Float>) {
        tapOffsets.withUnsafeBufferPointer { offsets in
            for oy in 0..<g.outHeight {
                let base = buffer + oy * g.strideH * rowW
                var ox = 0
                while ox < g.outWidth {
                    var acc = SIMD16<Float>(repeating: bias)
                    for ky in 0..<g.kernelHeight {
                        let row = base + ky * g.dilationH * rowW + ox
                        for kx in 0..<g.kernelWidth { acc += w[ky * g.kernelWidth + kx] * load(row + offsets[kx]) }
                    }
                    store(acc, out + oy * g.outWidth + ox, g.outWidth - ox)
                    ox += 16
                }
            }
        }
    }

    /// Stores the first `min(16, remaining)` lanes of `v`.
    @inline(__always)
    private func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ remaining: Int) {
        if remaining >= 16 {
            UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
        } else {
            for i in 0..<remaining { p[i] = v[i] }
        }
    }
}
