/// Direct depthwise convolution (`groups == inC == outC`), any kernel, stride, dilation and padding.
///
/// Each channel plane is first copied into a zero-padded per-thread buffer so that the inner loops
/// need no bounds checks; output rows are then computed 16 pixels at a time, all kernel taps
/// accumulated in registers. 3×3 kernels keep their weights hoisted; strides 1 and 2 load
/// contiguously (stride 2 by de-interleaving a 32-wide load).
struct DepthwisePlan {
    let g: Conv2DGeometry
    /// Padded plane: enough rows and columns for every tap of every (16-rounded) output pixel.
    let paddedH: Int
    let paddedW: Int

    init(_ g: Conv2DGeometry) {
        self.g = g
        paddedH = (g.outHeight - 1) * g.strideH + (g.kernelHeight - 1) * g.dilationH + 1
        let roundedW = (g.outWidth + 15) / 16 * 16
        // +32: a stride-2 vector load reads 32 floats from its first tap.
        paddedW = (roundedW - 1) * g.strideW + (g.kernelWidth - 1) * g.dilationW + 32
    }

    var scratchFloats: Int { paddedH * paddedW }

    /// Preconditions as `Conv2DKernel.run`; `weights` is `[C][kH][kW]`, `bias` has `C` entries.
    func run(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>,
             residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, batch: Int,
             activation: Activation, scratch: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let planes = batch * g.inChannels
        let threads = pool.threadCount
        let taps = g.kernelHeight * g.kernelWidth
        pool.parallelFor(min(threads, planes)) { t in
            let parts = min(threads, planes)
            let buffer = scratch + t * scratchFloats
            for p in (planes * t / parts)..<(planes * (t + 1) / parts) {
                let c = p % g.inChannels
                fillPadded(input + p * g.inPlane, buffer)
                let out = output + p * g.outPlane
                computePlane(buffer, weights + c * taps, bias[c], out)
                if let residual {
                    addBiasAndResidual(out, count: g.outPlane, bias: 0, residual: residual + p * g.outPlane)
                }
                applyActivation(activation, out, count: g.outPlane)
            }
        }
    }

    private func fillPadded(_ x: UnsafePointer<Float>, _ buffer: UnsafeMutablePointer<Float>) {
        let left = min(g.padLeft, paddedW)
        let copy = max(0, min(g.inWidth, paddedW - g.padLeft))
        for py in 0..<paddedH {
            let dst = buffer + py * paddedW
            let iy = py - g.padTop
            guard iy >= 0 && iy < g.inHeight else {
                dst.update(repeating: 0, count: paddedW)
                continue
            }
            dst.update(repeating: 0, count: left)
            (dst + left).update(from: x + iy * g.inWidth, count: copy)
            (dst + left + copy).update(repeating: 0, count: paddedW - left - copy)
        }
    }

    private func computePlane(_ buffer: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: Float,
                              _ out: UnsafeMutablePointer<Float>) {
        let is3x3 = g.kernelHeight == 3 && g.kernelWidth == 3
        switch g.strideW {
        case 1:
            let load: (UnsafeRawPointer) -> SIMD16<Float> = { $0.loadUnaligned(as: SIMD16<Float>.self) }
            if is3x3 { rows3x3(buffer, w, bias, out, load) } else { rows(buffer, w, bias, out, load) }
        case 2:
            let load: (UnsafeRawPointer) -> SIMD16<Float> = { $0.loadUnaligned(as: SIMD32<Float>.self).evenHalf }
            if is3x3 { rows3x3(buffer, w, bias, out, load) } else { rows(buffer, w, bias, out, load) }
        default:
            let sw = g.strideW
            rows(buffer, w, bias, out) { p in
                let f = p.assumingMemoryBound(to: Float.self)
                var v = SIMD16<Float>()
                for i in 0..<16 { v[i] = f[i * sw] }
                return v
            }
        }
    }

    /// Any kernel size. `load(p)` returns the 16 stride-spaced floats starting at `p`.
    @inline(__always)
    private func rows(_ buffer: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: Float,
                      _ out: UnsafeMutablePointer<Float>, _ load: (UnsafeRawPointer) -> SIMD16<Float>) {
        for oy in 0..<g.outHeight {
            let base = buffer + oy * g.strideH * paddedW
            var ox = 0
            while ox < g.outWidth {
                var acc = SIMD16<Float>(repeating: bias)
                for ky in 0..<g.kernelHeight {
                    let row = base + ky * g.dilationH * paddedW + ox * g.strideW
                    for kx in 0..<g.kernelWidth {
                        acc += w[ky * g.kernelWidth + kx] * load(UnsafeRawPointer(row + kx * g.dilationW))
                    }
                }
                store(acc, out + oy * g.outWidth + ox, g.outWidth - ox)
                ox += 16
            }
        }
    }

    /// 3×3 with the nine weights held in registers across the plane.
    @inline(__always)
    private func rows3x3(_ buffer: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: Float,
                         _ out: UnsafeMutablePointer<Float>, _ load: (UnsafeRawPointer) -> SIMD16<Float>) {
        let (w0, w1, w2, w3, w4, w5, w6, w7, w8) = (w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8])
        let dx = g.dilationW, dy = g.dilationH * paddedW
        for oy in 0..<g.outHeight {
            let base = buffer + oy * g.strideH * paddedW
            var ox = 0
            while ox < g.outWidth {
                let r0 = base + ox * g.strideW, r1 = r0 + dy, r2 = r1 + dy
                var acc = SIMD16<Float>(repeating: bias)
                acc += w0 * load(r0) + w1 * load(r0 + dx) + w2 * load(r0 + 2 * dx)
                acc += w3 * load(r1) + w4 * load(r1 + dx) + w5 * load(r1 + 2 * dx)
                acc += w6 * load(r2) + w7 * load(r2 + dx) + w8 * load(r2 + 2 * dx)
                store(acc, out + oy * g.outWidth + ox, g.outWidth - ox)
                ox += 16
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
