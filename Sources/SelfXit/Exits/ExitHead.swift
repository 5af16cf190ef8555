/// A trained exit head: parameters, input standardisation, calibrated temperature, and the
/// inference forward pass (Conv2DKernel with fused bias+ReLU for convolutions, sgemm for dense).
///
/// Immutable after init except `temperature`; `probabilities` keeps no state between calls, so
/// concurrent callers are safe (each passes its own scratch, or lets the call allocate one).
final class ExitHead: Codable {
    let architecture: ExitHeadArchitecture
    let inputShape: [Int]
    let classes: Int
    /// Calibrated temperature (§3.3): probabilities = softmax(logits / T).
    var temperature: Float
    /// Flat parameter vector, layout as in `ExitHeadPlan`.
    let parameters: [Float]
    /// Per-channel standardisation of the stage input (after the input pool; after GAP for heads
    /// without convolutions): `(x − mean) · invStd`.
    let inputMean: [Float]
    let inputInvStd: [Float]

    let plan: ExitHeadPlan
    private let kernels: [Conv2DKernel]
    private let params: UnsafeMutablePointer<Float>

    init(architecture: ExitHeadArchitecture, inputShape: [Int], classes: Int, parameters: [Float],
         inputMean: [Float], inputInvStd: [Float], temperature: Float = 1) throws {
        let plan = try ExitHeadPlan(architecture, inputShape: inputShape, classes: classes)
        guard parameters.count == plan.parameterCount else {
            throw SelfXitError.invalidArgument("exit head \(architecture): \(parameters.count) parameters given, \(plan.parameterCount) expected")
        }
        guard inputMean.count == plan.pooledC, inputInvStd.count == plan.pooledC else {
            throw SelfXitError.invalidArgument("exit head \(architecture): standardisation needs \(plan.pooledC) channels")
        }
        guard temperature.isFinite, temperature > 0 else {
            throw SelfXitError.invalidArgument("exit head temperature must be finite and > 0, got \(temperature)")
        }
        guard parameters.allSatisfy({ $0.isFinite }), inputMean.allSatisfy({ $0.isFinite }), inputInvStd.allSatisfy({ $0.isFinite }) else {
            throw SelfXitError.invalidArgument("exit head \(architecture): non-finite parameters")
        }
        self.architecture = architecture; self.inputShape = inputShape; self.classes = classes
        self.parameters = parameters; self.inputMean = inputMean; self.inputInvStd = inputInvStd
        self.temperature = temperature
        self.plan = plan
        params = allocateFloats(parameters.count)
        params.initialize(from: parameters, count: parameters.count)
        kernels = plan.convs.map { c in
            let g = Conv2DGeometry(inChannels: c.inC, inHeight: c.inH, inWidth: c.inW, outChannels: c.outC,
                                   outHeight: c.outH, outWidth: c.outW, kernelHeight: c.kernel, kernelWidth: c.kernel,
                                   strideH: c.stride, strideW: c.stride, padTop: c.pad, padLeft: c.pad)
            return Conv2DKernel(geometry: g, weights: Array(parameters[c.wOffset..<c.bOffset]),
                                bias: Array(parameters[c.bOffset..<(c.bOffset + c.outC)]), activation: .relu)
        }
    }

    deinit { params.deallocate() }

    private enum CodingKeys: String, CodingKey { case architecture, inputShape, classes, temperature, parameters, inputMean, inputInvStd }

    convenience init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(architecture: c.decode(ExitHeadArchitecture.self, forKey: .architecture),
                      inputShape: c.decode([Int].self, forKey: .inputShape), classes: c.decode(Int.self, forKey: .classes),
                      parameters: c.decode([Float].self, forKey: .parameters), inputMean: c.decode([Float].self, forKey: .inputMean),
                      inputInvStd: c.decode([Float].self, forKey: .inputInvStd), temperature: c.decode(Float.self, forKey: .temperature))
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(architecture, forKey: .architecture); try c.encode(inputShape, forKey: .inputShape)
        try c.encode(classes, forKey: .classes); try c.encode(temperature, forKey: .temperature)
        try c.encode(parameters, forKey: .parameters); try c.encode(inputMean, forKey: .inputMean)
        try c.encode(inputInvStd, forKey: .inputInvStd)
    }

    /// Per-sample FLOPs (see `ExitHeadArchitecture.flops`).
    var flops: Int { plan.flops }
    /// Bytes of stored parameters (weights, biases, standardisation).
    var byteCount: Int { 4 * (plan.parameterCount + 2 * plan.pooledC) }
    /// Floats per sample of input (`C·H·W`).
    var inputSize: Int { inputShape.reduce(1, *) }

    // MARK: Inference

    private var convScratchPerThread: Int { kernels.map(\.scratchFloatsPerThread).max() ?? 0 }
    private var maxDenseWidth: Int { plan.denses.map(\.outF).max() ?? classes }

    /// Floats of scratch `probabilities(_:rows:output:scratch:pool:)` needs for `rows` samples on a
    /// pool of `threads` threads.
    func scratchFloats(rows: Int, threads: Int) -> Int {
        let r = max(1, rows)
        var n = r * plan.stageInputSize
        n += plan.convs.reduce(0) { $0 + r * $1.outSize }
        n += max(1, threads) * convScratchPerThread
        n += r * plan.featureCount + 2 * r * maxDenseWidth + 64
        return n
    }

    /// Calibrated class probabilities, `softmax(logits / temperature)`, for `rows` contiguous
    /// samples (`rows × C·H·W` in, `rows × classes` out). Allocates its scratch per call; use the
    /// `scratch:` variant on a hot path. Preconditions (not checked: hot path): buffers of those sizes.
    func probabilities(_ input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        guard rows > 0 else { return }
        let n = scratchFloats(rows: rows, threads: pool.threadCount)
        let scratch = allocateFloats(n)
        defer { scratch.deallocate() }
        probabilities(input, rows: rows, output: output, scratch: scratch, pool: pool)
    }

    /// As above with caller-provided scratch of `scratchFloats(rows:threads: pool.threadCount)` floats.
    func probabilities(_ input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>,
                       scratch: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        guard rows > 0 else { return }
        logits(input, rows: rows, output: output, scratch: scratch, pool: pool)
        ExitOps.softmax(output, rows: rows, classes: classes, temperature: temperature, output)
    }

    /// Checked wrapper for callers outside the hot path (tests, tools): validates sizes and returns
    /// `rows × classes` probabilities.
    func probabilities(_ input: [Float], rows: Int, pool: ThreadPool) throws -> [Float] {
        guard rows > 0 else { throw SelfXitError.invalidArgument("exit head: rows must be > 0, got \(rows)") }
        guard input.count == rows * inputSize else {
            throw SelfXitError.invalidArgument("exit head: input has \(input.count) floats, expected \(rows) × \(inputSize)")
        }
        var out = [Float](repeating: 0, count: rows * classes)
        input.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { o in probabilities(x.baseAddress!, rows: rows, output: o.baseAddress!, pool: pool) }
        }
        return out
    }

    /// Uncalibrated logits (`rows × classes`).
    func logits(_ input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>,
                scratch: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let stage = scratch
        var cursor = scratch + rows * plan.stageInputSize
        let inSize = inputSize, stageSize = plan.stageInputSize
        let chunks = rows * inSize >= 1 << 15 ? min(rows, pool.threadCount) : 1
        inputMean.withUnsafeBufferPointer { mean in
            inputInvStd.withUnsafeBufferPointer { inv in
                pool.parallelFor(chunks) { t in
                    for r in (rows * t / chunks)..<(rows * (t + 1) / chunks) {
                        ExitStage.prepare(input + r * inSize, stage + r * stageSize, plan: plan,
                                          mean: mean.baseAddress!, invStd: inv.baseAddress!)
                    }
                }
            }
        }
        var x = UnsafePointer(stage)
        var outs: [UnsafeMutablePointer<Float>] = []
        for c in plan.convs { outs.append(cursor); cursor += rows * c.outSize }
        let convScratch = cursor
        cursor += pool.threadCount * convScratchPerThread
        for (l, k) in kernels.enumerated() {
            k.run(input: x, residual: nil, output: outs[l], batch: rows, scratch: convScratch, pool: pool)
            x = UnsafePointer(outs[l])
        }
        if let last = plan.convs.last, !architecture.flatten {
            let feat = cursor
            cursor += rows * plan.featureCount
            for r in 0..<rows {
                ExitOps.globalAverage(x + r * last.outSize, feat + r * last.outC, channels: last.outC, plane: last.outPlane)
            }
            x = UnsafePointer(feat)
        }
        let bufA = cursor, bufB = cursor + rows * maxDenseWidth
        for (j, d) in plan.denses.enumerated() {
            let y = j == plan.denses.count - 1 ? output : (j % 2 == 0 ? bufA : bufB)
            ExitOps.dense(x, rows: rows, d, params: params, y)
            x = UnsafePointer(y)
        }
    }
}

/// The parameter-free prefix of a head: input pool, (GAP when the head has no convolutions),
/// per-channel standardisation.
enum ExitStage {
    /// Writes the unstandardised stage input of one sample (`plan.stageInputSize` floats).
    static func raw(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, plan: ExitHeadPlan) {
        let (c, h, w) = (plan.inputShape[0], plan.inputShape[1], plan.inputShape[2])
        let p = plan.architecture.inputPool
        if plan.gapFirst {
            // GAP of the pooled map = mean over the region the pool covers.
            let hh = plan.pooledH * p, ww = plan.pooledW * p
            let scale = 1 / Float(hh * ww)
            for ch in 0..<c {
                let src = x + ch * h * w
                var s: Float = 0
                for yy in 0..<hh { let row = src + yy * w; for xx in 0..<ww { s += row[xx] } }
                y[ch] = s * scale
            }
        } else {
            ExitOps.avgPool(x, y, channels: c, height: h, width: w, window: p)
        }
    }

    static func prepare(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, plan: ExitHeadPlan,
                        mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>) {
        raw(x, y, plan: plan)
        ExitOps.standardize(y, channels: plan.pooledC, plane: plan.stageInputSize / plan.pooledC, mean: mean, invStd: invStd)
    }
}
