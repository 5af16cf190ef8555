/// Max and average pooling over NCHW planes, and global average pooling.
struct PoolGeometry {
    let channels, inHeight, inWidth, outHeight, outWidth: Int
    let kernelHeight, kernelWidth, strideH, strideW, padTop, padLeft, padBottom, padRight, dilationH, dilationW: Int
    let countIncludePad: Bool

    init(_ g: Graph.PoolGeometry) {
        channels = g.channels; inHeight = g.inHeight; inWidth = g.inWidth; outHeight = g.outHeight; outWidth = g.outWidth
        kernelHeight = g.kernelHeight; kernelWidth = g.kernelWidth; strideH = g.strideH; strideW = g.strideW
        padTop = g.padTop; padLeft = g.padLeft; padBottom = g.padBottom; padRight = g.padRight; dilationH = g.dilationH; dilationW = g.dilationW
        countIncludePad = g.countIncludePad
    }
}

/// Runs `body(inputPlane, outputPlane)` for every (sample, channel) plane, in parallel.
private func forEachPlane(batch: Int, _ g: PoolGeometry, pool: ThreadPool,
                          _ body: (_ plane: Int) -> Void) {
    let planes = batch * g.channels
    let chunks = planes * g.outHeight * g.outWidth * g.kernelHeight * g.kernelWidth >= 1 << 15 ? min(pool.threadCount, planes) : 1
    pool.parallelFor(chunks) { chunk in
        for plane in (planes * chunk / chunks)..<(planes * (chunk + 1) / chunks) { body(plane) }
    }
}

/// Preconditions: `input` holds batch × C × H × W floats, `output` batch × C × outH × outW;
/// every window overlaps the input (guaranteed by the output size rules at import).
func maxPool2D(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, geometry g: PoolGeometry, pool: ThreadPool) {
    forEachPlane(batch: batch, g, pool: pool) { plane in
        let x = input + plane * g.inHeight * g.inWidth, y = output + plane * g.outHeight * g.outWidth
        for oh in 0..<g.outHeight {
            for ow in 0..<g.outWidth {
                var best = -Float.infinity
                for kh in 0..<g.kernelHeight {
                    let ih = oh * g.strideH - g.padTop + kh * g.dilationH
                    guard ih >= 0 && ih < g.inHeight else { continue }
                    for kw in 0..<g.kernelWidth {
                        let iw = ow * g.strideW - g.padLeft + kw * g.dilationW
                        guard iw >= 0 && iw < g.inWidth else { continue }
                        best = max(best, x[ih * g.inWidth + iw])
                    }
                }
                y[oh * g.outWidth + ow] = best
            }
        }
    }
}

/// Average pooling; with `countIncludePad` the divisor counts padded positions (but not
/// positions past the padded input, which ceil_mode windows may reach).
func averagePool2D(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, geometry g: PoolGeometry, pool: ThreadPool) {
    forEachPlane(batch: batch, g, pool: pool) { plane in
        let x = input + plane * g.inHeight * g.inWidth, y = output + plane * g.outHeight * g.outWidth
        for oh in 0..<g.outHeight {
            let h0 = oh * g.strideH - g.padTop
            for ow in 0..<g.outWidth {
                let w0 = ow * g.strideW - g.padLeft
                var sum: Float = 0
                var count = 0
                for ih in max(h0, 0)..<min(h0 + g.kernelHeight, g.inHeight) {
                    for iw in max(w0, 0)..<min(w0 + g.kernelWidth, g.inWidth) {
                        sum += x[ih * g.inWidth + iw]
                        count += 1
                    }
                }
                if g.countIncludePad {
                    // Window clipped to the padded input [−padTop, H + padBottom).
                    let hEnd = min(h0 + g.kernelHeight, g.inHeight + g.padBottom), wEnd = min(w0 + g.kernelWidth, g.inWidth + g.padRight)
                    count = (hEnd - h0) * (wEnd - w0)
                }
                y[oh * g.outWidth + ow] = count > 0 ? sum / Float(count) : 0
            }
        }
    }
}

/// Mean of each (sample, channel) plane of `plane` floats.
func globalAveragePool(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, channels: Int, plane: Int, pool: ThreadPool) {
    let planes = batch * channels
    let chunks = planes * plane >= 1 << 16 ? min(pool.threadCount, planes) : 1
    let scale = 1 / Float(plane)
    pool.parallelFor(chunks) { chunk in
        for index in (planes * chunk / chunks)..<(planes * (chunk + 1) / chunks) {
            let x = input + index * plane
            var sum: Float = 0
            for i in 0..<plane { sum += x[i] }
            output[index] = sum * scale
        }
    }
}
