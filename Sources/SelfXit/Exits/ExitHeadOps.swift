import SelfXitGEMM
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small NCHW helpers shared by exit-head training and inference (one sample per call).
enum ExitOps {
    /// Average pool `window×window`, stride `window`, floor output size; `window == 1` copies.
    static func avgPool(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int, window p: Int) {
        if p == 1 { y.update(from: x, count: channels * height * width); return }
        let oh = height / p, ow = width / p
        let scale = 1 / Float(p * p)
        for c in 0..<channels {
            let src = x + c * height * width, dst = y + c * oh * ow
            for oy in 0..<oh {
                let d = dst + oy * ow
                for ox in 0..<ow { d[ox] = 0 }
                for dy in 0..<p {
                    let row = src + (oy * p + dy) * width
                    for ox in 0..<ow {
                        var s: Float = 0
                        let r = row + ox * p
                        for dx in 0..<p { s += r[dx] }
                        d[ox] += s
                    }
                }
                for ox in 0..<ow { d[ox] *= scale }
            }
        }
    }

    /// `x[c, ·] = (x[c, ·] − mean[c]) · invStd[c]` in place.
    static func standardize(_ x: UnsafeMutablePointer<Float>, channels: Int, plane: Int, mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>) {
        for c in 0..<channels {
            let p = x + c * plane
            let (m, s) = (mean[c], invStd[c])
            for i in 0..<plane { p[i] = (p[i] - m) * s }
        }
    }

    /// Per-channel mean of `x` (`channels × plane`) into `y`.
    static func globalAverage(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, channels: Int, plane: Int) {
        let scale = 1 / Float(plane)
        for c in 0..<channels {
            let p = x + c * plane
            var s: Float = 0
            for i in 0..<plane { s += p[i] }
            y[c] = s * scale
        }
    }

    /// im2col of one sample: `col` is `(C·k·k) × (outH·outW)` with row stride `ld` (default: outH·outW).
    static func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, _ g: ExitHeadPlan.Conv, ld: Int? = nil) {
        let k = g.kernel, n = ld ?? g.outPlane
        for c in 0..<g.inC {
            let src = x + c * g.inH * g.inW
            for ky in 0..<k {
                for kx in 0..<k {
                    let dst = col + ((c * k + ky) * k + kx) * n
                    for oy in 0..<g.outH {
                        let iy = oy * g.stride + ky - g.pad
                        let d = dst + oy * g.outW
                        if iy < 0 || iy >= g.inH { for ox in 0..<g.outW { d[ox] = 0 }; continue }
                        let row = src + iy * g.inW
                        for ox in 0..<g.outW {
                            let ix = ox * g.stride + kx - g.pad
                            d[ox] = (ix >= 0 && ix < g.inW) ? row[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// Adjoint of `im2col`: accumulates `col` into `x` (which the caller zeroes).
    static func col2im(_ col: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>, _ g: ExitHeadPlan.Conv, ld: Int? = nil) {
        let k = g.kernel, n = ld ?? g.outPlane
        for c in 0..<g.inC {
            let dstPlane = x + c * g.inH * g.inW
            for ky in 0..<k {
                for kx in 0..<k {
                    let src = col + ((c * k + ky) * k + kx) * n
                    for oy in 0..<g.outH {
                        let iy = oy * g.stride + ky - g.pad
                        if iy < 0 || iy >= g.inH { continue }
                        let row = dstPlane + iy * g.inW
                        let s = src + oy * g.outW
                        for ox in 0..<g.outW {
                            let ix = ox * g.stride + kx - g.pad
                            if ix >= 0 && ix < g.inW { row[ix] += s[ox] }
                        }
                    }
                }
            }
        }
    }

    /// `y = x·Wᵀ + b` for `rows` rows (`x`: rows×in, `W`: out×in), then ReLU if asked.
    static func dense(_ x: UnsafePointer<Float>, rows: Int, _ d: ExitHeadPlan.Dense, params: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        let b = params + d.bOffset
        for r in 0..<rows { (y + r * d.outF).update(from: b, count: d.outF) }
        sx_sgemm(sx_gemm_default_isa(), 0, 1, Int32(rows), Int32(d.outF), Int32(d.inF),
                 1, x, d.inF, params + d.wOffset, d.inF, 1, y, d.outF)
        if d.relu { applyActivation(.relu, y, count: rows * d.outF) }
    }

    /// Row-wise softmax of `z / temperature` (rows × classes), written to `p`.
    static func softmax(_ z: UnsafePointer<Float>, rows: Int, classes: Int, temperature: Float, _ p: UnsafeMutablePointer<Float>) {
        let invT = 1 / temperature
        for r in 0..<rows {
            let zr = z + r * classes, pr = p + r * classes
            var m = -Float.infinity
            for j in 0..<classes { m = max(m, zr[j] * invT) }
            var s: Float = 0
            for j in 0..<classes { let e = expf(zr[j] * invT - m); pr[j] = e; s += e }
            let inv = 1 / s
            for j in 0..<classes { pr[j] *= inv }
        }
    }
}

