import SelfXitGEMM
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Training-time forward and backward pass of one head over a minibatch, with preallocated
/// workspace for up to `capacity` samples. Input is the parameter-free prefix's output
/// (`plan.stageInputSize` floats per sample: pooled + standardised, or also GAP'd).
///
/// Convolutions run per sample (im2col + sgemm; col2im for input gradients), samples split over
/// the pool's threads with per-thread weight-gradient buffers; dense layers run one sgemm per
/// thread slice over the whole minibatch. Not thread-safe (owns its workspace).
final class ExitHeadNetwork {
    let plan: ExitHeadPlan
    let capacity: Int
    let pool: ThreadPool
    private var acts: [UnsafeMutablePointer<Float>] = []     // per conv: capacity × outSize (post-ReLU)
    private var dActs: [UnsafeMutablePointer<Float>] = []    // per conv: gradient w.r.t. act
    private let feat: UnsafeMutablePointer<Float>            // capacity × featureCount (GAP output)
    private let dFeat: UnsafeMutablePointer<Float>
    private var hid: [UnsafeMutablePointer<Float>] = []      // per dense: capacity × outF (last = logits)
    private var dHid: [UnsafeMutablePointer<Float>] = []
    private let cols: UnsafeMutablePointer<Float>            // threads × colFloats
    private let colFloats: Int
    /// Samples per batched im2col/sgemm, per conv.
    private let convChunks: [Int]
    /// Target size of one thread's im2col chunk.
    static let chunkFloats = 1 << 20
    private let convGrads: UnsafeMutablePointer<Float>       // threads × convParamCount
    private let convParamCount: Int
    private var owned: [UnsafeMutablePointer<Float>] = []

    init(plan: ExitHeadPlan, capacity: Int, pool: ThreadPool) {
        self.plan = plan; self.capacity = max(1, capacity); self.pool = pool
        func alloc(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = allocateFloats(max(1, n)); p.initialize(repeating: 0, count: max(1, n)); return p
        }
        var ownedBuffers: [UnsafeMutablePointer<Float>] = []
        for c in plan.convs {
            acts.append(alloc(self.capacity * c.outSize)); dActs.append(alloc(self.capacity * c.outSize))
        }
        feat = alloc(self.capacity * plan.featureCount); dFeat = alloc(self.capacity * plan.featureCount)
        for d in plan.denses {
            hid.append(alloc(self.capacity * d.outF)); dHid.append(alloc(self.capacity * d.outF))
        }
        // Per thread: im2col matrix and column gradient for a chunk of samples side by side
        // (`colRows × chunk·outPlane`), plus a `outC × chunk·outPlane` output/gradient tile.
        var chunks: [Int] = [], floats = 0
        for c in plan.convs {
            let chunk = max(1, min(self.capacity, ExitHeadNetwork.chunkFloats / max(1, c.colRows * c.outPlane)))
            chunks.append(chunk)
            floats = max(floats, chunk * c.outPlane * (2 * c.colRows + c.outC))
        }
        convChunks = chunks
        colFloats = floats
        cols = alloc(pool.threadCount * colFloats)
        convParamCount = plan.denses.first?.wOffset ?? 0
        convGrads = alloc(pool.threadCount * convParamCount)
        ownedBuffers = acts + dActs + [feat, dFeat] + hid + dHid + [cols, convGrads]
        owned = ownedBuffers
    }

    deinit { for p in owned { p.deallocate() } }

    /// Logits of the last `forward` (batch × classes).
    var logits: UnsafeMutablePointer<Float> { hid[hid.count - 1] }

    private func threadSlice(_ count: Int, _ t: Int) -> Range<Int> {
        let n = pool.threadCount
        return (count * t / n)..<(count * (t + 1) / n)
    }

    /// Pointer to the dense stack's input for the given stage input.
    private func features(_ x: UnsafePointer<Float>) -> UnsafePointer<Float> {
        if plan.convs.isEmpty { return x }
        if plan.architecture.flatten { return UnsafePointer(acts[acts.count - 1]) }
        return UnsafePointer(feat)
    }

    /// Runs the head on `batch ≤ capacity` samples; logits land in `logits`.
    func forward(_ x: UnsafePointer<Float>, batch: Int, params: UnsafePointer<Float>) {
        precondition(batch <= capacity)
        var input = x
        for (l, c) in plan.convs.enumerated() {
            let out = acts[l]
            let src = input
            let chunk = convChunks[l]
            pool.parallelFor(pool.threadCount) { t in
                let col = self.cols + t * self.colFloats
                let n = c.outPlane
                let r = self.threadSlice(batch, t)
                var s0 = r.lowerBound
                while s0 < r.upperBound {
                    let cs = min(chunk, r.upperBound - s0), ld = cs * n
                    let tile = col + 2 * c.colRows * ld
                    for j in 0..<cs { ExitOps.im2col(src + (s0 + j) * c.inSize, col + j * n, c, ld: ld) }
                    sx_sgemm(sx_gemm_default_isa(), 0, 0, Int32(c.outC), Int32(ld), Int32(c.colRows),
                             1, params + c.wOffset, c.colRows, col, ld, 0, tile, ld)
                    for j in 0..<cs {
                        let y = out + (s0 + j) * c.outSize
                        for o in 0..<c.outC {
                            let b = params[c.bOffset + o], srcRow = tile + o * ld + j * n, dst = y + o * n
                            for i in 0..<n { dst[i] = max(0, srcRow[i] + b) }
                        }
                    }
                    s0 += cs
                }
            }
            input = UnsafePointer(out)
        }
        if let last = plan.convs.last, !plan.architecture.flatten {
            let a = acts[acts.count - 1]
            for s in 0..<batch {
                ExitOps.globalAverage(a + s * last.outSize, feat + s * last.outC, channels: last.outC, plane: last.outPlane)
            }
        }
        var h = features(x)
        for (j, d) in plan.denses.enumerated() {
            let y = hid[j], src = h
            pool.parallelFor(pool.threadCount) { t in
                let r = self.threadSlice(batch, t)
                ExitOps.dense(src + r.lowerBound * d.inF, rows: r.count, d, params: params, y + r.lowerBound * d.outF)
            }
            h = UnsafePointer(y)
        }
    }

    /// KL(teacher ‖ softmax(logits)) summed over the batch (Double), and, if `dLogits` is given,
    /// its gradient divided by `normalizer` (so the mean over a dataset of `normalizer` samples).
    static func klLoss(logits: UnsafePointer<Float>, teacher: UnsafePointer<Float>, batch: Int, classes: Int,
                       dLogits: UnsafeMutablePointer<Float>?, normalizer: Int) -> Double {
        var total = 0.0
        let scale = 1 / Float(normalizer)
        for r in 0..<batch {
            let z = logits + r * classes, p = teacher + r * classes
            var m = -Float.infinity
            for j in 0..<classes { m = max(m, z[j]) }
            var s = 0.0
            for j in 0..<classes { s += exp(Double(z[j] - m)) }
            let logZ = Double(m) + log(s)
            for j in 0..<classes {
                let pj = Double(p[j])
                let logQ = Double(z[j]) - logZ
                if pj > 0 { total += pj * (log(pj) - logQ) }
                if let dLogits { dLogits[r * classes + j] = Float(exp(logQ) - pj) * scale }
            }
        }
        return total
    }

    /// Gradient of the loss w.r.t. every parameter, given `dLogits` for the last `forward` on `x`;
    /// written (not accumulated) into `grad` (`plan.parameterCount` floats).
    func backward(_ x: UnsafePointer<Float>, batch: Int, params: UnsafePointer<Float>, dLogits: UnsafePointer<Float>,
                  grad: UnsafeMutablePointer<Float>) {
        // Dense stack, last to first.
        var dY = dLogits
        for j in stride(from: plan.denses.count - 1, through: 0, by: -1) {
            let d = plan.denses[j]
            let xIn: UnsafePointer<Float> = j > 0 ? UnsafePointer(hid[j - 1]) : features(x)
            let gy = dY
            // dW = dYᵀ·X, split over output rows; db = column sums of dY.
            pool.parallelFor(pool.threadCount) { t in
                let r = self.threadSlice(d.outF, t)
                guard !r.isEmpty else { return }
                sx_sgemm(sx_gemm_default_isa(), 1, 0, Int32(r.count), Int32(d.inF), Int32(batch),
                         1, gy + r.lowerBound, d.outF, xIn, d.inF, 0,
                         grad + d.wOffset + r.lowerBound * d.inF, d.inF)
                for o in r {
                    var s: Float = 0
                    for b in 0..<batch { s += gy[b * d.outF + o] }
                    grad[d.bOffset + o] = s
                }
            }
            let needInputGrad = j > 0 || !plan.convs.isEmpty
            guard needInputGrad else { break }
            // dX = dY·W, masked by ReLU of X when X is a ReLU output (hidden layer, or flattened conv act).
            let dX: UnsafeMutablePointer<Float> = j > 0 ? dHid[j - 1] : (plan.architecture.flatten ? dActs[dActs.count - 1] : dFeat)
            let masked = j > 0 || plan.architecture.flatten
            pool.parallelFor(pool.threadCount) { t in
                let r = self.threadSlice(batch, t)
                guard !r.isEmpty else { return }
                sx_sgemm(sx_gemm_default_isa(), 0, 0, Int32(r.count), Int32(d.inF), Int32(d.outF),
                         1, gy + r.lowerBound * d.outF, d.outF, params + d.wOffset, d.inF, 0,
                         dX + r.lowerBound * d.inF, d.inF)
                if masked {
                    for i in (r.lowerBound * d.inF)..<(r.upperBound * d.inF) where xIn[i] <= 0 { dX[i] = 0 }
                }
            }
            dY = UnsafePointer(dX)
        }
        guard !plan.convs.isEmpty else { return }
        // GAP backward: broadcast dFeat / plane, masked by the last conv's ReLU.
        if !plan.architecture.flatten {
            let last = plan.convs[plan.convs.count - 1]
            let a = acts[acts.count - 1], da = dActs[dActs.count - 1]
            let inv = 1 / Float(last.outPlane)
            for s in 0..<batch {
                for c in 0..<last.outC {
                    let g = dFeat[s * last.outC + c] * inv
                    let base = s * last.outSize + c * last.outPlane
                    for i in 0..<last.outPlane { da[base + i] = a[base + i] > 0 ? g : 0 }
                }
            }
        }
        // Convolutions, last to first; per-thread weight gradients summed afterwards.
        let threads = pool.threadCount
        for l in stride(from: plan.convs.count - 1, through: 0, by: -1) {
            let c = plan.convs[l]
            let xIn: UnsafePointer<Float> = l > 0 ? UnsafePointer(acts[l - 1]) : x
            let dOut = UnsafePointer(dActs[l])
            let dIn: UnsafeMutablePointer<Float>? = l > 0 ? dActs[l - 1] : nil
            let wCount = c.outC * c.colRows
            let chunk = convChunks[l]
            pool.parallelFor(threads) { t in
                let gW = self.convGrads + t * self.convParamCount + c.wOffset
                let gB = self.convGrads + t * self.convParamCount + c.bOffset
                gW.update(repeating: 0, count: wCount); gB.update(repeating: 0, count: c.outC)
                let col = self.cols + t * self.colFloats
                let n = c.outPlane
                let r = self.threadSlice(batch, t)
                var s0 = r.lowerBound
                while s0 < r.upperBound {
                    let cs = min(chunk, r.upperBound - s0), ld = cs * n
                    let dcol = col + c.colRows * ld, tile = col + 2 * c.colRows * ld
                    for j in 0..<cs {
                        ExitOps.im2col(xIn + (s0 + j) * c.inSize, col + j * n, c, ld: ld)
                        let dy = dOut + (s0 + j) * c.outSize
                        for o in 0..<c.outC { (tile + o * ld + j * n).update(from: dy + o * n, count: n) }
                    }
                    sx_sgemm(sx_gemm_default_isa(), 0, 1, Int32(c.outC), Int32(c.colRows), Int32(ld),
                             1, tile, ld, col, ld, 1, gW, c.colRows)
                    for o in 0..<c.outC {
                        var sum: Float = 0
                        let row = tile + o * ld
                        for i in 0..<ld { sum += row[i] }
                        gB[o] += sum
                    }
                    if let dIn {
                        sx_sgemm(sx_gemm_default_isa(), 1, 0, Int32(c.colRows), Int32(ld), Int32(c.outC),
                                 1, params + c.wOffset, c.colRows, tile, ld, 0, dcol, ld)
                        for j in 0..<cs {
                            let s = s0 + j
                            let dx = dIn + s * c.inSize, xs = xIn + s * c.inSize
                            dx.update(repeating: 0, count: c.inSize)
                            ExitOps.col2im(dcol + j * n, dx, c, ld: ld)
                            for i in 0..<c.inSize where xs[i] <= 0 { dx[i] = 0 }
                        }
                    }
                    s0 += cs
                }
            }
            let total = wCount + c.outC
            let dst = grad + c.wOffset
            for i in 0..<total {
                var s: Float = 0
                for t in 0..<threads { s += convGrads[t * convParamCount + c.wOffset + i] }
                dst[i] = s
            }
        }
    }
}
