#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct ExitTrainingConfig {
    var epochs = 30
    var batchSize = 64
    /// Adam step size.
    var learningRate: Float = 1e-3
    /// Decoupled (AdamW-style) weight decay on all parameters.
    var weightDecay: Float = 0
    /// Stop after this many epochs without a validation-KL improvement.
    var patience = 4
    var seed: UInt64 = 0
    var threads = 2
    /// Called on the training thread after every mini-batch with the share of the epochs done
    /// (0…1); throwing stops the training with that error (an exit build's cancel).
    var checkpoint: ((Double) throws -> Void)?
}

/// Recorded backbone activations and the backbone's output distribution for the same samples.
struct DistillationData {
    /// `count × C·H·W` activations.
    let features: [Float]
    /// `count × classes` teacher probabilities.
    let teacher: [Float]
    let count: Int

    init(features: [Float], teacher: [Float], count: Int) {
        self.features = features; self.teacher = teacher; self.count = count
    }

    func validate(_ name: String, inputSize: Int, classes: Int) throws {
        guard count > 0 else { throw SelfXitError.invalidArgument("\(name) data is empty") }
        guard features.count == count * inputSize else {
            throw SelfXitError.invalidArgument("\(name) data: \(features.count) feature floats for \(count) samples of \(inputSize)")
        }
        guard teacher.count == count * classes else {
            throw SelfXitError.invalidArgument("\(name) data: \(teacher.count) teacher floats for \(count) samples of \(classes) classes")
        }
        guard teacher.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw SelfXitError.invalidArgument("\(name) data: teacher probabilities must be finite and ≥ 0")
        }
    }

    /// The first `n` samples.
    func prefix(_ n: Int, inputSize: Int, classes: Int) -> DistillationData {
        let n = min(n, count)
        if n == count { return self }
        return DistillationData(features: Array(features[0..<(n * inputSize)]), teacher: Array(teacher[0..<(n * classes)]), count: n)
    }

    /// Argmax of each sample's teacher distribution.
    func teacherLabels(classes: Int) -> [Int] {
        (0..<count).map { r in argmax(teacher, r * classes, classes) }
    }
}

@inline(__always)
func argmax(_ a: UnsafePointer<Float>, _ n: Int) -> Int {
    var best = 0
    for j in 1..<n where a[j] > a[best] { best = j }
    return best
}

func argmax(_ a: [Float], _ offset: Int, _ n: Int) -> Int {
    var best = 0
    for j in 1..<n where a[offset + j] > a[offset + best] { best = j }
    return best
}

enum ExitHeadTrainer {
    struct EpochRecord { let trainKL: Double; let validationKL: Double; let validationAgreement: Double }
    struct Result {
        let head: ExitHead
        let epochs: [EpochRecord]
        /// Validation KL / agreement of the returned (best) weights.
        let validationKL: Double
        let validationAgreement: Double
    }

    /// Trains a head of `architecture` on `train` (Adam, shuffled minibatches, seeded), early-stops
    /// on validation KL and returns the best-on-validation weights (temperature 1).
    static func train(_ architecture: ExitHeadArchitecture, inputShape: [Int], classes: Int, train: DistillationData,
                      validation: DistillationData, config: ExitTrainingConfig) throws -> ExitHead {
        try trainDetailed(architecture, inputShape: inputShape, classes: classes, train: train, validation: validation, config: config).head
    }

    static func validate(_ config: ExitTrainingConfig) throws {
        guard config.epochs >= 1 else { throw SelfXitError.invalidArgument("training epochs must be ≥ 1, got \(config.epochs)") }
        guard config.batchSize >= 1 else { throw SelfXitError.invalidArgument("batch size must be ≥ 1, got \(config.batchSize)") }
        guard config.learningRate.isFinite, config.learningRate > 0 else {
            throw SelfXitError.invalidArgument("learning rate must be finite and > 0, got \(config.learningRate)")
        }
        guard config.weightDecay.isFinite, config.weightDecay >= 0 else {
            throw SelfXitError.invalidArgument("weight decay must be finite and ≥ 0, got \(config.weightDecay)")
        }
        guard config.patience >= 0 else { throw SelfXitError.invalidArgument("patience must be ≥ 0, got \(config.patience)") }
        guard (1...256).contains(config.threads) else { throw SelfXitError.invalidArgument("threads must be in 1...256, got \(config.threads)") }
    }

    static func trainDetailed(_ architecture: ExitHeadArchitecture, inputShape: [Int], classes: Int, train: DistillationData,
                              validation: DistillationData, config: ExitTrainingConfig) throws -> Result {
        let plan = try ExitHeadPlan(architecture, inputShape: inputShape, classes: classes)
        try validate(config)
        let inSize = inputShape.reduce(1, *)
        try train.validate("training", inputSize: inSize, classes: classes)
        try validation.validate("validation", inputSize: inSize, classes: classes)
        let pool = try ThreadPool(threads: config.threads)
        let batch = min(config.batchSize, train.count)

        // Parameter-free prefix, precomputed once for both sets.
        let trainStage = StageData(train, plan: plan, pool: pool)
        let (mean, invStd) = trainStage.standardization()
        trainStage.standardize(mean: mean, invStd: invStd)
        let valStage = StageData(validation, plan: plan, pool: pool)
        valStage.standardize(mean: mean, invStd: invStd)

        var rng = SeededRandom(seed: config.seed)
        var params = initialParameters(plan, rng: &rng)
        var best = params
        let net = ExitHeadNetwork(plan: plan, capacity: batch, pool: pool)
        var grad = [Float](repeating: 0, count: plan.parameterCount)
        var m = grad, v = grad
        let xBatch = allocateFloats(batch * plan.stageInputSize), tBatch = allocateFloats(batch * classes)
        let dLogits = allocateFloats(batch * classes)
        defer { xBatch.deallocate(); tBatch.deallocate(); dLogits.deallocate() }

        var (bestKL, bestAgreement) = evaluate(net, valStage, params: params, classes: classes)
        var records: [EpochRecord] = []
        var bad = 0
        var step = 0
        var order = Array(0..<train.count)
        let (b1, b2): (Float, Float) = (0.9, 0.999)
        for epoch in 0..<config.epochs {
            rng.shuffle(&order)
            var epochLoss = 0.0
            var start = 0
            while start < train.count {
                let n = min(batch, train.count - start)
                let sz = plan.stageInputSize
                train.teacher.withUnsafeBufferPointer { t in
                    for i in 0..<n {
                        let s = order[start + i]
                        (xBatch + i * sz).update(from: trainStage.data + s * sz, count: sz)
                        (tBatch + i * classes).update(from: t.baseAddress! + s * classes, count: classes)
                    }
                }
                params.withUnsafeBufferPointer { p in
                    net.forward(xBatch, batch: n, params: p.baseAddress!)
                    epochLoss += ExitHeadNetwork.klLoss(logits: net.logits, teacher: tBatch, batch: n, classes: classes,
                                                        dLogits: dLogits, normalizer: n)
                    grad.withUnsafeMutableBufferPointer { g in
                        net.backward(xBatch, batch: n, params: p.baseAddress!, dLogits: dLogits, grad: g.baseAddress!)
                    }
                }
                // Adam (bias-corrected), decoupled weight decay.
                step += 1
                let c1 = 1 - powf(b1, Float(step)), c2 = 1 - powf(b2, Float(step))
                let lr = config.learningRate, decay = 1 - config.learningRate * config.weightDecay
                let alpha = lr / c1
                for i in 0..<params.count {
                    let g = grad[i]
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    params[i] = params[i] * decay - alpha * m[i] / ((v[i] / c2).squareRoot() + 1e-8)
                }
                start += n
                try config.checkpoint?((Double(epoch) + Double(start) / Double(train.count)) / Double(config.epochs))
            }
            let (kl, agreement) = evaluate(net, valStage, params: params, classes: classes)
            records.append(EpochRecord(trainKL: epochLoss / Double(train.count), validationKL: kl, validationAgreement: agreement))
            if kl < bestKL - 1e-6 || !bestKL.isFinite {
                bestKL = kl; bestAgreement = agreement; best = params; bad = 0
            } else {
                bad += 1
                if bad > config.patience { break }
            }
        }
        guard best.allSatisfy({ $0.isFinite }) else { throw SelfXitError.internalError("exit head training diverged (non-finite weights)") }
        let head = try ExitHead(architecture: architecture, inputShape: inputShape, classes: classes, parameters: best,
                                inputMean: mean, inputInvStd: invStd)
        return Result(head: head, epochs: records, validationKL: bestKL, validationAgreement: bestAgreement)
    }

    /// He-normal weights (std √(2/fanIn)) for ReLU layers, √(1/fanIn) for the logit layer; zero biases.
    static func initialParameters(_ plan: ExitHeadPlan, rng: inout SeededRandom) -> [Float] {
        var p = [Float](repeating: 0, count: plan.parameterCount)
        for c in plan.convs {
            let s = (2 / Float(c.colRows)).squareRoot()
            for i in c.wOffset..<c.bOffset { p[i] = rng.normal() * s }
        }
        for d in plan.denses {
            let s = ((d.relu ? 2 : 1) / Float(d.inF)).squareRoot()
            for i in d.wOffset..<d.bOffset { p[i] = rng.normal() * s }
        }
        return p
    }

    /// Mean validation KL and agreement (argmax head == argmax teacher).
    static func evaluate(_ net: ExitHeadNetwork, _ data: StageData, params: [Float], classes: Int) -> (Double, Double) {
        var kl = 0.0, agree = 0
        let sz = data.plan.stageInputSize
        params.withUnsafeBufferPointer { p in
            data.teacher.withUnsafeBufferPointer { t in
                var start = 0
                while start < data.count {
                    let n = min(net.capacity, data.count - start)
                    net.forward(data.data + start * sz, batch: n, params: p.baseAddress!)
                    let tp = t.baseAddress! + start * classes
                    kl += ExitHeadNetwork.klLoss(logits: net.logits, teacher: tp, batch: n, classes: classes, dLogits: nil, normalizer: 1)
                    for r in 0..<n where argmax(net.logits + r * classes, classes) == argmax(tp + r * classes, classes) { agree += 1 }
                    start += n
                }
            }
        }
        return (kl / Double(data.count), Double(agree) / Double(data.count))
    }

    /// Temperature scaling (Guo et al. 2017): the T minimising the NLL of the teacher's argmax under
    /// softmax(logits / T) on `validation`, by golden-section search over log T in [0.05, 20].
    /// Does not modify `head`. Returns 1 when `validation` does not fit the head (empty, wrong sizes).
    static func calibrate(_ head: ExitHead, on validation: DistillationData) -> Float {
        guard (try? validation.validate("validation", inputSize: head.inputSize, classes: head.classes)) != nil else { return 1 }
        let classes = head.classes, rows = validation.count
        // Two threads if the OS gives them, else inline: calibration cannot report a failure.
        let pool = (try? ThreadPool(threads: 2)) ?? ThreadPool.serial()
        var logits = [Float](repeating: 0, count: rows * classes)
        let chunk = 256
        let scratch = allocateFloats(head.scratchFloats(rows: chunk, threads: pool.threadCount))
        defer { scratch.deallocate() }
        validation.features.withUnsafeBufferPointer { x in
            logits.withUnsafeMutableBufferPointer { z in
                var start = 0
                while start < rows {
                    let n = min(chunk, rows - start)
                    head.logits(x.baseAddress! + start * head.inputSize, rows: n, output: z.baseAddress! + start * classes,
                                scratch: scratch, pool: pool)
                    start += n
                }
            }
        }
        let labels = validation.teacherLabels(classes: classes)
        return fitTemperature(logits: logits, labels: labels, classes: classes)
    }

    /// Mean NLL of `labels` under softmax(logits / T).
    static func nll(logits: [Float], labels: [Int], classes: Int, temperature t: Double) -> Double {
        var total = 0.0
        for (r, y) in labels.enumerated() {
            var m = -Double.infinity
            for j in 0..<classes { m = max(m, Double(logits[r * classes + j]) / t) }
            var s = 0.0
            for j in 0..<classes { s += exp(Double(logits[r * classes + j]) / t - m) }
            total += m + log(s) - Double(logits[r * classes + y]) / t
        }
        return total / Double(max(1, labels.count))
    }

    static func fitTemperature(logits: [Float], labels: [Int], classes: Int) -> Float {
        guard !labels.isEmpty else { return 1 }
        var lo = log(0.05), hi = log(20.0)
        let phi = (5.0.squareRoot() - 1) / 2
        var a = hi - phi * (hi - lo), b = lo + phi * (hi - lo)
        var fa = nll(logits: logits, labels: labels, classes: classes, temperature: exp(a))
        var fb = nll(logits: logits, labels: labels, classes: classes, temperature: exp(b))
        for _ in 0..<40 {
            if fa < fb { hi = b; b = a; fb = fa; a = hi - phi * (hi - lo); fa = nll(logits: logits, labels: labels, classes: classes, temperature: exp(a)) }
            else { lo = a; a = b; fa = fb; b = lo + phi * (hi - lo); fb = nll(logits: logits, labels: labels, classes: classes, temperature: exp(b)) }
        }
        return Float(exp((lo + hi) / 2))
    }
}

/// A data set run through a head's parameter-free prefix (pool [+ GAP]), optionally standardised.
final class StageData {
    let plan: ExitHeadPlan
    let count: Int
    let data: UnsafeMutablePointer<Float>
    let teacher: [Float]

    init(_ d: DistillationData, plan: ExitHeadPlan, pool: ThreadPool) {
        self.plan = plan; count = d.count; teacher = d.teacher
        let sz = plan.stageInputSize, inSize = plan.inputShape.reduce(1, *)
        data = allocateFloats(d.count * sz)
        let out = data, n = d.count
        d.features.withUnsafeBufferPointer { x in
            let base = x.baseAddress!
            pool.parallelFor(pool.threadCount) { t in
                for s in (n * t / pool.threadCount)..<(n * (t + 1) / pool.threadCount) {
                    ExitStage.raw(base + s * inSize, out + s * sz, plan: plan)
                }
            }
        }
    }

    deinit { data.deallocate() }

    /// Per-channel mean and 1/std over samples and positions (std floored at 1e-3 of the largest).
    func standardization() -> ([Float], [Float]) {
        let c = plan.pooledC, plane = plan.stageInputSize / c
        var sum = [Double](repeating: 0, count: c), sq = sum
        for s in 0..<count {
            for ch in 0..<c {
                let p = data + s * plan.stageInputSize + ch * plane
                var a = 0.0, b = 0.0
                for i in 0..<plane { let v = Double(p[i]); a += v; b += v * v }
                sum[ch] += a; sq[ch] += b
            }
        }
        let n = Double(count * plane)
        let mean = sum.map { $0 / n }
        let std = zip(sq, mean).map { max(0, $0 / n - $1 * $1).squareRoot() }
        let floor = max(1e-6, (std.max() ?? 0) * 1e-3)
        return (mean.map { Float($0) }, std.map { Float(1 / max($0, floor)) })
    }

    func standardize(mean: [Float], invStd: [Float]) {
        let c = plan.pooledC, plane = plan.stageInputSize / c
        mean.withUnsafeBufferPointer { m in
            invStd.withUnsafeBufferPointer { s in
                for i in 0..<count {
                    ExitOps.standardize(data + i * plan.stageInputSize, channels: c, plane: plane, mean: m.baseAddress!, invStd: s.baseAddress!)
                }
            }
        }
    }
}
