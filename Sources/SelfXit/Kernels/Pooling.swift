import SelfXitGEMM

/// Window geometry of a 2-D pooling over one sample (NCHW). Output sizes come from the caller
/// (which applies `ceil_mode`); windows may then overhang the bottom/right padding.
package struct Pool2DGeometry: Equatable, Sendable {
    package var channels, inHeight, inWidth, outHeight, outWidth: Int
    package var kernelHeight, kernelWidth: Int
    package var strideH, strideW: Int
    package var padTop, padLeft, padBottom, padRight: Int
    package var dilationH, dilationW: Int

    package init(channels: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int,
                kernelHeight: Int, kernelWidth: Int, strideH: Int = 1, strideW: Int = 1,
                padTop: Int = 0, padLeft: Int = 0, padBottom: Int = 0, padRight: Int = 0,
                dilationH: Int = 1, dilationW: Int = 1) {
        self.channels = channels; self.inHeight = inHeight; self.inWidth = inWidth
        self.outHeight = outHeight; self.outWidth = outWidth
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideH = strideH; self.strideW = strideW
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.dilationH = dilationH; self.dilationW = dilationW
    }
}

/// Window taps (or floats summed) below which a pooling runs on the calling thread alone: a
/// hand-off to the pool's threads costs more than such a pass.
private let minParallelPoolWork = 32_768

/// MaxPool (with dilation) over `batch` samples; padding never wins (it is −∞).
/// Preconditions: `input` holds `batch·C·inH·inW` floats, `output` `batch·C·outH·outW`; every
/// window touches at least one input pixel.
package func maxPool2D(_ g: Pool2DGeometry, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                      batch: Int, pool: ThreadPool) {
    // ResNet's 3×3 stride-2 pooling and the like: the configuration's maxpool_direct kernel
    // (AVX-512: masked loads straight from the plane), where it has one.
    let maxpoolDirect = PackedGEMM.currentConfig.pointee.maxpool_direct
    let direct = maxpoolDirect != nil && g.kernelHeight <= 3 && g.kernelWidth <= 3 && g.dilationH == 1 && g.dilationW == 1
        && g.strideH == g.strideW && (g.strideH == 1 || g.strideH == 2)
        && g.outWidth <= Int(SX_MAXPOOL_DIRECT_MAX_WIDTH)
    /// Output rows `rows` of one plane.
    func poolRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ rows: Range<Int>) {
        guard !rows.isEmpty else { return }
        if direct, let maxpoolDirect {
            // The kernel takes a plane from its first output row: rows from `rows.lowerBound` are
            // a plane starting at input row `top` (the padding above only for the first row).
            let top = rows.lowerBound * g.strideH - g.padTop
            let skip = max(0, top)
            maxpoolDirect(x + skip * g.inWidth, Int32(g.inHeight - skip), Int32(g.inWidth), Int32(g.kernelHeight), Int32(g.kernelWidth),
                          Int32(g.strideH), Int32(skip - top), Int32(g.padLeft), y + rows.lowerBound * g.outWidth,
                          Int32(rows.count), Int32(g.outWidth))
            return
        }
        for oy in rows {
            let (y0, y1) = taps(oy, g.strideH, g.padTop, g.dilationH, g.kernelHeight, g.inHeight)
            for ox in 0..<g.outWidth {
                let (x0, x1) = taps(ox, g.strideW, g.padLeft, g.dilationW, g.kernelWidth, g.inWidth)
                var m = -Float.infinity
                for ky in y0..<y1 {
                    let row = x + (oy * g.strideH - g.padTop + ky * g.dilationH) * g.inWidth + ox * g.strideW - g.padLeft
                    // NaN-sticky (as ONNX Runtime): `max` would drop a NaN that comes second.
                    for kx in x0..<x1 { let v = row[kx * g.dilationW]; if v > m || v.isNaN { m = v } }
                }
                y[oy * g.outWidth + ox] = m
            }
        }
    }
    let threads = pool.threadCount
    if batch == 1 && threads > 1 && g.outHeight >= 2 * threads
        && g.channels * g.outHeight * g.outWidth * g.kernelHeight * g.kernelWidth >= minParallelPoolWork {
        // One sample on several threads: thread t takes the t-th band of output rows of every
        // plane, where the convolution before it (split by rows, `parallelForEachThread`) left
        // that band's input in t's core. Split by planes, each thread read half its input from
        // the other core: ResNet-50's MaxPool after the stem, one image, 2 threads, Intel Xeon
        // (Emerald Rapids) seen as AVX2-only, 0.240 ms against ONNX Runtime's 0.074 (BENCHMARKS §7.31).
        let inPlane = g.inHeight * g.inWidth, outPlane = g.outHeight * g.outWidth
        pool.parallelForEachThread { t in
            let rows = (g.outHeight * t / threads)..<(g.outHeight * (t + 1) / threads)
            for c in 0..<g.channels { poolRows(input + c * inPlane, output + c * outPlane, rows) }
        }
        return
    }
    forEachPlane(g, input, output, batch: batch, pool: pool) { x, y in poolRows(x, y, 0..<g.outHeight) }
}

/// AveragePool over `batch` samples (no dilation). With `countIncludePad` the divisor counts the
/// padding but not the overhang past the bottom/right padding that ceil-mode sizes add (PyTorch's
/// and ONNX Runtime's rule); without it only input pixels count.
/// Preconditions: as `maxPool2D`; dilations are 1.
package func averagePool2D(_ g: Pool2DGeometry, countIncludePad: Bool, input: UnsafePointer<Float>,
                          output: UnsafeMutablePointer<Float>, batch: Int, pool: ThreadPool) {
    precondition(g.dilationH == 1 && g.dilationW == 1, "AveragePool has no dilation")
    // 2×2 stride 2 with every window inside the plane (DenseNet's transitions): the mean of four,
    // whatever `countIncludePad`, without the general loop's per-pixel bounds (0.57 ms against
    // ONNX Runtime's 0.04 on DenseNet-121's first transition at batch 1).
    if g.kernelHeight == 2 && g.kernelWidth == 2 && g.strideH == 2 && g.strideW == 2 && g.padTop == 0 && g.padLeft == 0
        && 2 * g.outHeight <= g.inHeight && 2 * g.outWidth <= g.inWidth {
        forEachPlane(g, input, output, batch: batch, pool: pool) { x, y in
            for oy in 0..<g.outHeight {
                let r0 = x + 2 * oy * g.inWidth, r1 = r0 + g.inWidth, out = y + oy * g.outWidth
                for ox in 0..<g.outWidth {
                    out[ox] = (r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]) * 0.25
                }
            }
        }
        return
    }
    forEachPlane(g, input, output, batch: batch, pool: pool) { x, y in
        for oy in 0..<g.outHeight {
            let (y0, y1) = taps(oy, g.strideH, g.padTop, 1, g.kernelHeight, g.inHeight)
            let top = oy * g.strideH - g.padTop
            let paddedRows = min(top + g.kernelHeight, g.inHeight + g.padBottom) - top
            for ox in 0..<g.outWidth {
                let (x0, x1) = taps(ox, g.strideW, g.padLeft, 1, g.kernelWidth, g.inWidth)
                let left = ox * g.strideW - g.padLeft
                var s: Float = 0
                for ky in y0..<y1 {
                    let row = x + (top + ky) * g.inWidth + left
                    for kx in x0..<x1 { s += row[kx] }
                }
                let divisor = countIncludePad
                    ? paddedRows * (min(left + g.kernelWidth, g.inWidth + g.padRight) - left)
                    : (y1 - y0) * (x1 - x0)
                y[oy * g.outWidth + ox] = s / Float(max(divisor, 1))
            }
        }
    }
}

/// GlobalAveragePool: the mean of each of `planes` (= batch·C) planes of `planeSize` floats.
package func globalAveragePool(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                              planes: Int, planeSize: Int, pool: ThreadPool) {
    let tasks = planes * planeSize < minParallelPoolWork ? 1 : min(pool.threadCount, planes)
    let work = { (t: Int) in
        for p in (planes * t / tasks)..<(planes * (t + 1) / tasks) {
            let raw = UnsafeRawPointer(input + p * planeSize)
            var acc = SIMD16<Float>()
            var i = 0
            while i + 16 <= planeSize { acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self); i += 16 }
            var s = acc.sum()
            while i < planeSize { s += input[p * planeSize + i]; i += 1 }
            output[p] = s / Float(planeSize)
        }
    }
    if tasks <= 1 { work(0) } else { pool.parallelFor(tasks, work) }
}

/// Kernel taps `lo..<hi` of output position `o` that land inside `0..<size`.
@inline(__always)
private func taps(_ o: Int, _ stride: Int, _ pad: Int, _ dilation: Int, _ kernel: Int, _ size: Int) -> (Int, Int) {
    let start = o * stride - pad
    let lo = start >= 0 ? 0 : (-start + dilation - 1) / dilation
    let hi = size - start <= 0 ? 0 : min(kernel, (size - 1 - start) / dilation + 1)
    return (min(lo, hi), hi)
}

/// Runs `body(inputPlane, outputPlane)` for every (sample, channel), split over the pool.
private func forEachPlane(_ g: Pool2DGeometry, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                          batch: Int, pool: ThreadPool,
                          _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
    let planes = batch * g.channels
    let inPlane = g.inHeight * g.inWidth, outPlane = g.outHeight * g.outWidth
    let tasks = planes * outPlane * g.kernelHeight * g.kernelWidth < minParallelPoolWork ? 1 : min(pool.threadCount, planes)
    func work(_ t: Int) {
        for p in (planes * t / tasks)..<(planes * (t + 1) / tasks) { body(input + p * inPlane, output + p * outPlane) }
    }
    if tasks <= 1 { work(0) } else { pool.parallelFor(tasks, work) }
}
