import XCTest
import Foundation
@testable import SelfXit

private typealias Conv = ExitHeadArchitecture.ConvLayer

/// Deterministic Gaussian-ish data for exit-head tests.
private struct ExitTestRandom {
    var rng: SeededRandom
    init(_ seed: UInt64) { rng = SeededRandom(seed: seed) }
    mutating func normal() -> Float { rng.normal() }
    mutating func normals(_ n: Int) -> [Float] { (0..<n).map { _ in rng.normal() } }
}

private func softmaxRow(_ z: [Double]) -> [Float] {
    let m = z.max()!
    let e = z.map { exp($0 - m) }
    let s = e.reduce(0, +)
    return e.map { Float($0 / s) }
}

/// Features `count × C·H·W` (Gaussian) and teacher = softmax(scale · A · GAP(features)).
private func linearTeacherData(count: Int, shape: [Int], classes: Int, seed: UInt64, matrix: [Float], scale: Double) -> DistillationData {
    var r = ExitTestRandom(seed)
    let (c, plane) = (shape[0], shape[1] * shape[2])
    var features: [Float] = [], teacher: [Float] = []
    for _ in 0..<count {
        var x = r.normals(c * plane)
        // Per-sample channel offsets carry the signal (GAP recovers them).
        let offsets = r.normals(c)
        for ch in 0..<c { for i in 0..<plane { x[ch * plane + i] = x[ch * plane + i] * 0.5 + offsets[ch] } }
        features += x
        var z = [Double](repeating: 0, count: classes)
        for k in 0..<classes {
            var s = 0.0
            for ch in 0..<c {
                var g = 0.0
                for i in 0..<plane { g += Double(x[ch * plane + i]) }
                s += Double(matrix[k * c + ch]) * g / Double(plane)
            }
            z[k] = scale * s
        }
        teacher += softmaxRow(z)
    }
    return DistillationData(features: features, teacher: teacher, count: count)
}

private func noiseData(count: Int, shape: [Int], classes: Int, seed: UInt64) -> DistillationData {
    var r = ExitTestRandom(seed)
    let features = r.normals(count * shape.reduce(1, *))
    var teacher: [Float] = []
    for _ in 0..<count { teacher += softmaxRow(r.normals(classes).map { Double($0) * 3 }) }
    return DistillationData(features: features, teacher: teacher, count: count)
}

final class ExitHeadTests: XCTestCase {

    // MARK: Gradient check

    func testGradientsMatchFiniteDifferences() throws {
        let cases: [(ExitHeadArchitecture, [Int])] = [
            (ExitHeadArchitecture(convs: [Conv(kernel: 3, stride: 2, channels: 4)], hidden: [6]), [3, 6, 6]),
            (ExitHeadArchitecture(convs: [Conv(kernel: 1, stride: 2, channels: 5), Conv(kernel: 3, stride: 1, channels: 4)],
                                  flatten: true, hidden: []), [3, 6, 5]),
            (ExitHeadArchitecture(inputPool: 2, convs: [Conv(kernel: 1, stride: 1, channels: 4), Conv(kernel: 3, stride: 2, channels: 3)],
                                  hidden: [5, 4]), [3, 8, 8]),
            (ExitHeadArchitecture(hidden: [8, 6]), [5, 3, 3]),
            (ExitHeadArchitecture(inputPool: 2, flatten: true, hidden: [7]), [2, 4, 4]),
        ]
        let classes = 4, batch = 3
        for (arch, shape) in cases {
            let plan = try ExitHeadPlan(arch, inputShape: shape, classes: classes)
            var r = ExitTestRandom(42)
            var rng = SeededRandom(seed: 7)
            var params = ExitHeadTrainer.initialParameters(plan, rng: &rng)
            for i in params.indices { params[i] += 0.05 * r.normal() }  // non-zero biases
            let x = r.normals(batch * plan.stageInputSize)
            var teacher: [Float] = []
            for _ in 0..<batch { teacher += softmaxRow(r.normals(classes).map { Double($0) }) }
            let net = ExitHeadNetwork(plan: plan, capacity: batch, pool: ThreadPool(threadCount: 2))
            func loss(_ p: [Float]) -> Double {
                x.withUnsafeBufferPointer { xp in p.withUnsafeBufferPointer { pp in teacher.withUnsafeBufferPointer { t in
                    net.forward(xp.baseAddress!, batch: batch, params: pp.baseAddress!)
                    return ExitHeadNetwork.klLoss(logits: net.logits, teacher: t.baseAddress!, batch: batch, classes: classes,
                                                  dLogits: nil, normalizer: 1) / Double(batch)
                } } }
            }
            var grad = [Float](repeating: 0, count: plan.parameterCount)
            var dLogits = [Float](repeating: 0, count: batch * classes)
            x.withUnsafeBufferPointer { xp in params.withUnsafeBufferPointer { pp in teacher.withUnsafeBufferPointer { t in
                net.forward(xp.baseAddress!, batch: batch, params: pp.baseAddress!)
                dLogits.withUnsafeMutableBufferPointer { d in
                    _ = ExitHeadNetwork.klLoss(logits: net.logits, teacher: t.baseAddress!, batch: batch, classes: classes,
                                               dLogits: d.baseAddress!, normalizer: batch)
                    grad.withUnsafeMutableBufferPointer { g in
                        net.backward(xp.baseAddress!, batch: batch, params: pp.baseAddress!, dLogits: d.baseAddress!, grad: g.baseAddress!)
                    }
                }
            } } }
            var tensors: [(String, Range<Int>)] = []
            for (i, c) in plan.convs.enumerated() {
                tensors.append(("conv\(i).W", c.wOffset..<c.bOffset)); tensors.append(("conv\(i).b", c.bOffset..<(c.bOffset + c.outC)))
            }
            for (i, d) in plan.denses.enumerated() {
                tensors.append(("dense\(i).W", d.wOffset..<d.bOffset)); tensors.append(("dense\(i).b", d.bOffset..<(d.bOffset + d.outF)))
            }
            let eps: Float = 1e-3
            for (name, range) in tensors {
                let picks = range.count <= 12 ? Array(range) : (0..<12).map { range.lowerBound + ($0 * 7919) % range.count }
                var diff = 0.0, norm = 0.0
                for i in picks {
                    var p = params
                    p[i] = params[i] + eps; let up = loss(p)
                    p[i] = params[i] - eps; let down = loss(p)
                    let numeric = (up - down) / (2 * Double(eps))
                    let analytic = Double(grad[i])
                    diff += (numeric - analytic) * (numeric - analytic)
                    norm += max(numeric * numeric, analytic * analytic)
                    XCTAssertLessThanOrEqual(abs(numeric - analytic), 1e-2 * max(abs(numeric), abs(analytic)) + 2e-4,
                                             "\(arch) \(name)[\(i - range.lowerBound)]: numeric \(numeric) analytic \(analytic)")
                }
                XCTAssertGreaterThan(norm, 0, "\(arch) \(name): zero gradient")
                XCTAssertLessThanOrEqual((diff / max(norm, 1e-30)).squareRoot(), 1e-2, "\(arch) \(name)")
            }
        }
    }

    // MARK: Training

    func testTrainingLearnsLinearTeacher() throws {
        let shape = [8, 4, 4], classes = 10
        var r = ExitTestRandom(3)
        let a = r.normals(classes * shape[0])
        let train = linearTeacherData(count: 2000, shape: shape, classes: classes, seed: 10, matrix: a, scale: 3)
        let val = linearTeacherData(count: 500, shape: shape, classes: classes, seed: 11, matrix: a, scale: 3)
        var config = ExitTrainingConfig()
        config.epochs = 30; config.learningRate = 3e-3
        let result = try ExitHeadTrainer.trainDetailed(ExitHeadArchitecture(), inputShape: shape, classes: classes,
                                                       train: train, validation: val, config: config)
        XCTAssertGreaterThan(result.validationAgreement, 0.9)
        XCTAssertGreaterThan(result.epochs.first!.trainKL, result.epochs.last!.trainKL)
        XCTAssertLessThan(result.validationKL, result.epochs.first!.validationKL)

        // A conv head learns the same teacher too (fewer epochs: smoke + loss decrease).
        config.epochs = 6
        let conv = try ExitHeadTrainer.trainDetailed(
            ExitHeadArchitecture(convs: [Conv(kernel: 3, stride: 2, channels: 16)], hidden: [32]),
            inputShape: shape, classes: classes, train: train, validation: val, config: config)
        XCTAssertGreaterThan(conv.epochs.first!.trainKL, conv.epochs.last!.trainKL)
        XCTAssertGreaterThan(conv.validationAgreement, 0.6)
    }

    // MARK: Calibration

    func testCalibrationRecoversTemperature() throws {
        let c = 6, classes = 5, n = 6000
        var r = ExitTestRandom(5)
        let a = r.normals(classes * c)
        var features: [Float] = [], teacher: [Float] = []
        var rng = SeededRandom(seed: 99)
        for _ in 0..<n {
            let x = r.normals(c)
            features += x
            var z = [Double](repeating: 0, count: classes)
            for k in 0..<classes { for j in 0..<c { z[k] += Double(a[k * c + j] * x[j]) } }
            // Label drawn from softmax(z): calibrated at T = 1 for logits z.
            let p = softmaxRow(z)
            var u = Float(rng.uniform()), label = classes - 1
            for k in 0..<classes { u -= p[k]; if u < 0 { label = k; break } }
            var onehot = [Float](repeating: 0, count: classes); onehot[label] = 1
            teacher += onehot
        }
        // Head logits = 5 · z  →  T ≈ 5.
        var params = [Float](repeating: 0, count: classes * c + classes)
        for i in 0..<(classes * c) { params[i] = 5 * a[i] }
        let head = try ExitHead(architecture: ExitHeadArchitecture(), inputShape: [c, 1, 1], classes: classes, parameters: params,
                                inputMean: [Float](repeating: 0, count: c), inputInvStd: [Float](repeating: 1, count: c))
        let t = ExitHeadTrainer.calibrate(head, on: DistillationData(features: features, teacher: teacher, count: n))
        XCTAssertEqual(t, 5, accuracy: 0.5)
        XCTAssertEqual(head.temperature, 1)  // calibrate does not modify the head
    }

    // MARK: Search

    func testSearchIsReproducibleRespectsBudgetAndDiscardsNoise() throws {
        let shape = [8, 8, 8], classes = 10
        var r = ExitTestRandom(4)
        let a = r.normals(classes * shape[0])
        let train = linearTeacherData(count: 600, shape: shape, classes: classes, seed: 20, matrix: a, scale: 3)
        let val = linearTeacherData(count: 300, shape: shape, classes: classes, seed: 21, matrix: a, scale: 3)
        var config = ExitTrainingConfig()
        config.epochs = 8; config.seed = 17
        let first = try ExitHeadSearch.search(inputShape: shape, classes: classes, train: train, validation: val,
                                              backboneFLOPsAfter: 50_000_000, budget: 3, config: config, progress: nil)
        let second = try ExitHeadSearch.search(inputShape: shape, classes: classes, train: train, validation: val,
                                               backboneFLOPsAfter: 50_000_000, budget: 3, config: config, progress: nil)
        XCTAssertEqual(first.trials.count, 3)
        XCTAssertEqual(first.trials.map(\.architecture), second.trials.map(\.architecture))
        XCTAssertEqual(first.trials.map(\.validationAgreement), second.trials.map(\.validationAgreement))
        let head = try XCTUnwrap(first.head)
        XCTAssertEqual(head.architecture, second.head?.architecture)
        XCTAssertGreaterThan(head.temperature, 0)
        XCTAssertGreaterThan(first.trials.map(\.validationAgreement).max()!, 0.5)

        let noiseTrain = noiseData(count: 600, shape: shape, classes: classes, seed: 30)
        let noiseVal = noiseData(count: 300, shape: shape, classes: classes, seed: 31)
        let noise = try ExitHeadSearch.search(inputShape: shape, classes: classes, train: noiseTrain, validation: noiseVal,
                                              backboneFLOPsAfter: 50_000_000, budget: 3, config: config, progress: nil)
        XCTAssertNil(noise.head)
        XCTAssertEqual(noise.trials.count, 3)

        XCTAssertThrowsError(try ExitHeadSearch.search(inputShape: shape, classes: classes, train: train, validation: val,
                                                       backboneFLOPsAfter: 1000, budget: 0, config: config, progress: nil))
    }

    func testCandidateListIsSortedAndFits() {
        for shape in [[64, 28, 28], [128, 14, 14], [256, 7, 7], [512, 4, 4], [3, 2, 2]] {
            let list = ExitHeadSearch.candidates(inputShape: shape, classes: 10)
            XCTAssertGreaterThanOrEqual(list.count, 5, "\(shape)")
            let flops = list.map { $0.flops(input: shape, classes: 10) }
            XCTAssertEqual(flops, flops.sorted())
            XCTAssertTrue(flops.allSatisfy { $0 > 0 })
        }
    }

    // MARK: Inference path

    func testProbabilitiesMatchTrainingForward() throws {
        let classes = 7
        let cases: [(ExitHeadArchitecture, [Int])] = [
            (ExitHeadArchitecture(inputPool: 2, convs: [Conv(kernel: 3, stride: 2, channels: 6), Conv(kernel: 1, stride: 1, channels: 5)],
                                  hidden: [9]), [4, 9, 8]),
            (ExitHeadArchitecture(convs: [Conv(kernel: 1, stride: 2, channels: 4)], flatten: true, hidden: [8, 6]), [3, 5, 5]),
            (ExitHeadArchitecture(inputPool: 2, hidden: [16]), [5, 6, 6]),
            (ExitHeadArchitecture(convs: [Conv(kernel: 3, stride: 1, channels: 8)], hidden: []), [3, 4, 4]),
        ]
        let pool = ThreadPool(threadCount: 2)
        for (arch, shape) in cases {
            let plan = try ExitHeadPlan(arch, inputShape: shape, classes: classes)
            var rng = SeededRandom(seed: 1)
            var r = ExitTestRandom(2)
            let params = ExitHeadTrainer.initialParameters(plan, rng: &rng).map { $0 + 0.05 * r.normal() }
            let mean = r.normals(shape[0]).map { $0 * 0.1 }, invStd = r.normals(shape[0]).map { 1 + 0.2 * abs($0) }
            let head = try ExitHead(architecture: arch, inputShape: shape, classes: classes, parameters: params,
                                    inputMean: mean, inputInvStd: invStd, temperature: 1.7)
            for rows in [1, 7] {
                let x = r.normals(rows * shape.reduce(1, *))
                let got = try head.probabilities(x, rows: rows, pool: pool)
                // Reference: the training path.
                let stage = StageData(DistillationData(features: x, teacher: [Float](repeating: 0, count: rows * classes), count: rows),
                                      plan: plan, pool: pool)
                stage.standardize(mean: mean, invStd: invStd)
                let net = ExitHeadNetwork(plan: plan, capacity: rows, pool: pool)
                var expected = [Float](repeating: 0, count: rows * classes)
                params.withUnsafeBufferPointer { p in net.forward(stage.data, batch: rows, params: p.baseAddress!) }
                expected.withUnsafeMutableBufferPointer { e in
                    ExitOps.softmax(net.logits, rows: rows, classes: classes, temperature: 1.7, e.baseAddress!)
                }
                for i in 0..<expected.count {
                    XCTAssertEqual(got[i], expected[i], accuracy: 1e-5, "\(arch) rows \(rows) [\(i)]")
                }
                for row in 0..<rows { XCTAssertEqual(got[(row * classes)..<((row + 1) * classes)].reduce(0, +), 1, accuracy: 1e-5) }
            }
            // Codable round trip keeps the outputs.
            let data = try JSONEncoder().encode(head)
            let back = try JSONDecoder().decode(ExitHead.self, from: data)
            let x = r.normals(2 * shape.reduce(1, *))
            XCTAssertEqual(try back.probabilities(x, rows: 2, pool: pool), try head.probabilities(x, rows: 2, pool: pool))
            XCTAssertEqual(back.temperature, 1.7)
            XCTAssertThrowsError(try head.probabilities(x, rows: 3, pool: pool))
            XCTAssertThrowsError(try head.probabilities([], rows: 0, pool: pool))
        }
    }

    // MARK: Invalid arguments

    func testInvalidArgumentsThrow() {
        let shape = [4, 4, 4], classes = 3
        let good = DistillationData(features: [Float](repeating: 0.5, count: 2 * 64), teacher: [0.2, 0.3, 0.5, 0.1, 0.8, 0.1], count: 2)
        let arch = ExitHeadArchitecture(hidden: [8])
        func expectInvalid(_ what: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), what) { error in
                guard case SelfXitError.invalidArgument = error else { return XCTFail("\(what): \(error)") }
            }
        }
        let config = ExitTrainingConfig()
        expectInvalid("kernel 5") { _ = try ExitHeadTrainer.train(ExitHeadArchitecture(convs: [Conv(kernel: 5, stride: 1, channels: 8)]),
                                                                  inputShape: shape, classes: classes, train: good, validation: good, config: config) }
        expectInvalid("3 convs") { _ = try ExitHeadTrainer.train(ExitHeadArchitecture(convs: Array(repeating: Conv(kernel: 1, stride: 1, channels: 8), count: 3)),
                                                                 inputShape: shape, classes: classes, train: good, validation: good, config: config) }
        expectInvalid("pool too big") { _ = try ExitHeadTrainer.train(ExitHeadArchitecture(inputPool: 8), inputShape: shape, classes: classes,
                                                                      train: good, validation: good, config: config) }
        expectInvalid("bad shape") { _ = try ExitHeadTrainer.train(arch, inputShape: [4, 4], classes: classes, train: good, validation: good, config: config) }
        expectInvalid("empty") { _ = try ExitHeadTrainer.train(arch, inputShape: shape, classes: classes,
                                                               train: DistillationData(features: [], teacher: [], count: 0), validation: good, config: config) }
        expectInvalid("feature count") { _ = try ExitHeadTrainer.train(arch, inputShape: shape, classes: classes,
                                                                       train: DistillationData(features: [1, 2], teacher: good.teacher, count: 2),
                                                                       validation: good, config: config) }
        expectInvalid("teacher count") { _ = try ExitHeadTrainer.train(arch, inputShape: shape, classes: 4, train: good, validation: good, config: config) }
        var bad = config; bad.batchSize = 0
        expectInvalid("batch size") { _ = try ExitHeadTrainer.train(arch, inputShape: shape, classes: classes, train: good, validation: good, config: bad) }
        expectInvalid("params") { _ = try ExitHead(architecture: arch, inputShape: shape, classes: classes, parameters: [1],
                                                   inputMean: [0, 0, 0, 0], inputInvStd: [1, 1, 1, 1]) }
        XCTAssertEqual(arch.flops(input: [4, 4], classes: 3), 0)
        XCTAssertEqual(arch.parameterCount(input: shape, classes: classes), 4 * 8 + 8 + 8 * 3 + 3)
        XCTAssertNoThrow(try ExitHeadTrainer.train(arch, inputShape: shape, classes: classes, train: good, validation: good, config: config))
    }
}
