import Foundation
import XCTest
@testable import SelfXit

/// Hardening, "defined behaviour for every float": NaN, ±inf, ±FLT_MAX, denormals and huge
/// finite inputs never trap (a trap is a crash of the host process); the kernels give what
/// ONNX Runtime gives; a non-finite input is refused by default, naming sample and element,
/// or — with `NonFiniteInputs.propagate` — runs and comes back flagged, never answered early,
/// never collected for exit building.
final class HardeningFloatTests: XCTestCase {
    static let specials: [Float] = [.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                    1e-40, -1e-40, 0, -0.0, 100, -100, 1e38, -1e38, 20, -20, 0.5]

    /// ONNX Runtime 1.32 (CPUExecutionProvider) on `specials` (see tools/export_silu_net.py's
    /// venv; probed with one-node graphs). nil = NaN. Values compared exactly except where
    /// `close` lists a tolerance (mid-range values of smooth functions).
    static func expected(_ a: Activation, _ x: Float) -> Float? {
        if x.isNaN { return nil }
        switch a {
        case .none: return x
        case .relu: return x < 0 ? 0 : x
        case let .clip(lo, hi): return min(max(x, lo), hi)
        case .sigmoid:
            if x == .infinity || x >= 100 { return 1 }
            if x == -.infinity || x <= -100 { return 0 }
            return Float(1 / (1 + Foundation.exp(-Double(x))))
        case .silu:
            if x == -.infinity { return nil }                     // −inf · 0, as ORT
            if x == .infinity || x >= 100 { return x }
            if x <= -100 { return -0.0 }
            return Float(Double(x) / (1 + Foundation.exp(-Double(x))))
        case let .hardSigmoid(alpha, beta): return min(1, max(0, alpha * x + beta))
        case .hardSwish:
            if x == -.infinity { return nil }                     // −inf · 0, as ORT
            return x * min(1, max(0, x / 6 + 0.5))
        case .tanh:
            if abs(x) < 1e-30 { return x }
            return Float(Foundation.tanh(Double(x)))
        }
    }

    private func check(_ a: Activation, _ x: [Float], _ y: [Float], _ label: String) {
        for (xi, yi) in zip(x, y) {
            guard let e = Self.expected(a, xi) else {
                XCTAssertTrue(yi.isNaN, "\(a)(\(xi)) = \(yi), expected NaN (\(label))")
                continue
            }
            if e.isInfinite || e == 0 || abs(e) == 1 || abs(e) == .greatestFiniteMagnitude || !xi.isFinite {
                XCTAssertEqual(yi, e, "\(a)(\(xi)) (\(label))")
                if e == 0 && xi != 0 { XCTAssertEqual(yi.sign, e.sign, "\(a)(\(xi)) sign of zero (\(label))") }
            } else if abs(e) < 1e-37 {
                XCTAssertLessThanOrEqual(abs(yi - e), 1e-44, "\(a)(\(xi)) = \(yi), expected \(e) (\(label))")
            } else {
                XCTAssertLessThanOrEqual(abs(yi - e), 2e-6 * max(1, abs(e)), "\(a)(\(xi)) = \(yi), expected \(e) (\(label))")
            }
        }
    }

    /// Every activation kernel on every special value, through the vector path (16 at once)
    /// and the scalar tail (one at a time).
    func testActivationsOnSpecialValues() {
        for a in allActivations {
            var y = Self.specials
            y.withUnsafeMutableBufferPointer { applyActivation(a, $0.baseAddress!, count: $0.count) }
            check(a, Self.specials, y, "vector")
            for x in Self.specials {
                var one = [x]
                one.withUnsafeMutableBufferPointer { applyActivation(a, $0.baseAddress!, count: 1) }
                check(a, [x], one, "tail")
            }
            // The standalone op, split over a pool (large count), on a repeated pattern.
            let big = (0..<40_000).map { Self.specials[$0 % Self.specials.count] }
            var out = [Float](repeating: 7, count: big.count)
            big.withUnsafeBufferPointer { i in
                out.withUnsafeMutableBufferPointer { runActivation(a, input: i.baseAddress!, output: $0.baseAddress!, count: big.count,
                                                                   pool: ThreadPool(threadCount: 2)) }
            }
            check(a, big, out, "runActivation")
        }
    }

    func testExpIsTotal() {
        func exp(_ values: [Float]) -> [Float] {
            var out: [Float] = []
            for chunk in stride(from: 0, to: values.count, by: 16) {
                var v = SIMD16<Float>(repeating: 0)
                let n = min(16, values.count - chunk)
                for j in 0..<n { v[j] = values[chunk + j] }
                let e = exp16(v)
                for j in 0..<n { out.append(e[j]) }
            }
            return out
        }
        let y = exp([.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e-40, -1e-40, 0, -0.0,
                     100, -100, 88.8, -87.4, 1e38, -1e38, -.nan])
        XCTAssertTrue(y[0].isNaN, "exp(NaN)")
        XCTAssertEqual(Array(y[1...14]), [.infinity, 0, .infinity, 0, 1, 1, 1, 1, .infinity, 0, .infinity, 0, .infinity, 0])
        XCTAssertTrue(y[15].isNaN, "exp(-NaN)")
        // Accuracy over the whole finite range, against Double exp (relative, ~2 ulp).
        var worst = 0.0
        var xs: [Float] = []
        var x: Float = -87.3
        while x <= 88.3 { xs.append(x); x += 0.0173 }
        for (x, e) in zip(xs, exp(xs)) {
            let reference = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(e) - reference) / reference)
        }
        XCTAssertLessThan(worst, 5e-7, "exp16 relative error")
    }

    /// Softmax rows as ONNX Runtime gives them.
    func testSoftmaxNonFiniteRows() {
        func softmaxRow(_ row: [Float]) -> [Float] {
            var out = [Float](repeating: 7, count: row.count)
            row.withUnsafeBufferPointer { i in
                out.withUnsafeMutableBufferPointer { softmax(input: i.baseAddress!, output: $0.baseAddress!, rows: 1, n: row.count,
                                                             pool: ThreadPool(threadCount: 1)) }
            }
            return out
        }
        // Each row both short (tail path) and padded past 16 with -inf (vector path: those get 0).
        for pad in [0, 20] {
            let tail = [Float](repeating: -.infinity, count: pad)
            for row: [Float] in [[1, 2, .infinity, 3], [1, .nan, 3], [-.infinity, -.infinity], [.infinity, .infinity]] {
                let y = softmaxRow(row + tail)
                XCTAssertTrue(y.allSatisfy(\.isNaN), "softmax(\(row)) pad \(pad) = \(y), expected all NaN")
            }
            var y = softmaxRow([1, -.infinity, 3] + tail)
            XCTAssertEqual(y[1], 0)
            XCTAssertEqual(y[0], 0.11920291, accuracy: 1e-6)
            XCTAssertEqual(y[2], 0.880797, accuracy: 1e-6)
            XCTAssertTrue(y[3...].allSatisfy { $0 == 0 })
            y = softmaxRow([.greatestFiniteMagnitude, -.greatestFiniteMagnitude, 0] + tail)
            XCTAssertEqual(Array(y[0..<3]), [1, 0, 0])
            y = softmaxRow([1e37, 2e37, -1e37] + tail)
            XCTAssertEqual(Array(y[0..<3]), [0, 1, 0])
            y = softmaxRow([1e-40, -1e-40] + tail)
            XCTAssertEqual(Array(y[0..<2]), [0.5, 0.5])
        }
    }

    /// Throughput of exp16 (as sigmoid/SiLU/tanh use it), SiLU and the non-finite input scan,
    /// against the old exp16 (a checked SIMD16<Int32>(_:rounding:) conversion, kept below for
    /// the comparison). Printed, not asserted — the machine is shared — except that the new
    /// ones must not be slower.
    func testActivationThroughput() {
        let count = 1 << 20
        var rng = SeededRandom(7)
        let source = UnsafeMutablePointer<Float>.allocate(capacity: count)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { source.deallocate(); out.deallocate() }
        for i in 0..<count { source[i] = Float(rng.uniform() * 40 - 20) }
        func seconds(_ body: () -> Void) -> Double {
            body()
            var best = Double.infinity
            for _ in 0..<7 {
                let start = DispatchTime.now().uptimeNanoseconds
                body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return best
        }
        /// out[i] = f(source[i]), 16 at a time (no copies: source stays intact).
        func map(_ f: (SIMD16<Float>) -> SIMD16<Float>) {
            let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(out)
            for i in stride(from: 0, to: count * 4, by: 64) {
                to.storeBytes(of: f(from.loadUnaligned(fromByteOffset: i, as: SIMD16<Float>.self)), toByteOffset: i, as: SIMD16<Float>.self)
            }
        }
        let newExp = seconds { map(exp16) }
        let oldExp = seconds { map(legacyExp16) }
        let newSiLU = seconds { map { $0 * sigmoid16($0) } }
        let oldSiLU = seconds { map { $0 / (1 + legacyExp16(-$0)) } }
        let kernelSiLU = seconds {
            out.update(from: source, count: count)
            applyActivation(.silu, out, count: count)
        }
        let copy = seconds { out.update(from: source, count: count) }
        let scan = seconds { _ = firstNonFinite(source, count: count) }
        func line(_ name: String, _ s: Double) -> String {
            "  " + name.padding(toLength: 36, withPad: " ", startingAt: 0)
                + String(format: "%8.3f ms  %6.0f Mfloat/s", s * 1e3, Double(count) / s / 1e6)
        }
        print(["[HardeningFloatTests] 2^20 floats in [-20, 20], best of 7:",
               line("exp16 (total, bit-trick 2^n)", newExp), line("exp16 before (checked Int32(n))", oldExp),
               line("SiLU x·sigmoid(x)", newSiLU), line("SiLU before", oldSiLU),
               line("applyActivation(.silu) incl. copy", kernelSiLU), line("copy alone", copy),
               line("finite scan (refuse check)", scan)].joined(separator: "\n"))
        XCTAssertLessThan(newExp, oldExp * 1.5, "the total exp16 must not be slower than the checked one")
        XCTAssertLessThan(newSiLU, oldSiLU * 1.5, "SiLU must not be slower than before")
    }

    // MARK: - Models

    struct FixtureModel {
        let name: String
        let url: URL
        let shape: [Int]
        let batch: Int
        let input: [Float]
        let output: [Float]
        let scale: Float
    }

    /// Every loadable fixture model of the manifest (silu_se_net included) with its batch-8 reference.
    static func fixtureModels() throws -> [FixtureModel] {
        try Fixtures.manifest().models.sorted(by: { $0.key < $1.key }).compactMap { name, entry in
            guard entry.unsupported_node == nil, let shape = entry.input_shape["8"], let reference = entry.references["8"] else { return nil }
            return FixtureModel(name: name, url: Fixtures.model(entry.file), shape: Array(shape.dropFirst()), batch: 8,
                                input: try Fixtures.floats(reference.input), output: try Fixtures.floats(reference.output),
                                scale: max(1, entry.max_abs_output["8"] ?? 1))
        }
    }

    private func engine(_ model: FixtureModel, _ mode: NonFiniteInputs, collect: Bool = false) throws -> Engine {
        try Engine(contentsOf: model.url, options: EngineOptions(threads: 2, inputShape: model.shape, maxBatch: 16,
                                                                  collectionBudgetBytes: collect ? 64 << 20 : 0, nonFiniteInputs: mode))
    }

    private func assertMatchesReference(_ engine: Engine, _ model: FixtureModel, _ label: String,
                                        file: StaticString = #filePath, line: UInt = #line) throws {
        let output = try engine.infer(model.input, batch: model.batch)
        let worst = zip(output, model.output).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst / model.scale, 1e-4, "\(model.name) \(label): max |ours − ORT| = \(worst)", file: file, line: line)
    }

    func testEveryFixtureModelRefusesNonFiniteInputsByDefault() throws {
        let models = try Self.fixtureModels()
        XCTAssertTrue(models.contains { $0.name == "silu_se_net" }, "the SiLU/SE fixture is missing from the manifest")
        XCTAssertGreaterThanOrEqual(models.count, 9)
        for model in models {
            let engine = try engine(model, .refuse)
            let n = model.input.count / model.batch
            for (sample, element, value, word) in [(3, 127, Float.nan, "NaN"), (0, 0, .infinity, "+inf"), (7, n - 1, -.infinity, "-inf")] {
                var bad = model.input
                bad[sample * n + element] = value
                let message = "input sample \(sample), element \(element) is \(word)"
                for call in ["submit", "infer", "analyze"] {
                    var delivered = 0
                    XCTAssertThrowsError(try {
                        switch call {
                        case "submit": try engine.submit(bad, batch: model.batch) { _ in delivered += 1 }
                        case "infer": _ = try engine.infer(bad, batch: model.batch)
                        default: _ = try bad.withUnsafeBufferPointer { try engine.analyze($0, batch: model.batch) }
                        }
                    }(), "\(model.name) \(call)") { error in
                        guard case .invalidArgument(let text)? = error as? SelfXitError else {
                            return XCTFail("\(model.name) \(call): \(error) is not invalidArgument")
                        }
                        if call != "analyze" {  // analyze checks for exits after the input
                            XCTAssertTrue(text.hasPrefix(message), "\(model.name) \(call): '\(text)' should start with '\(message)'")
                        }
                    }
                    XCTAssertEqual(delivered, 0, "\(model.name): a refused batch delivered results")
                }
            }
            // Refusing left the engine usable: the good batch gives ORT's answer.
            try assertMatchesReference(engine, model, "after refusals")
            XCTAssertEqual(engine.stats().samples, 0, "\(model.name): refused batches were counted")
        }
    }

    func testEveryFixtureModelPropagatesAndFlagsWhenAsked() throws {
        for model in try Self.fixtureModels() {
            let engine = try engine(model, .propagate, collect: true)
            let n = model.input.count / model.batch
            let classes = model.output.count / model.batch
            var input = model.input
            input[3 * n + 127 % n] = .nan
            input[5 * n] = .infinity
            input[6 * n + n / 2] = -.infinity
            input[1 * n + 1] = .greatestFiniteMagnitude        // finite: a result or a flag, never a trap
            for k in 0..<n where k % 3 == 0 { input[2 * n + k] = 1e-40 }  // denormals are ordinary finite values
            let flaggedInputs: Set<Int> = [3, 5, 6]
            var results: [Int: ExitResult] = [:]
            var probabilities: [Int: [Float]] = [:]
            try engine.submit(input, batch: model.batch) { r in
                XCTAssertNil(results[r.sampleIndex], "\(model.name): sample \(r.sampleIndex) answered twice")
                results[r.sampleIndex] = r
                probabilities[r.sampleIndex] = Array(r.probabilities)
            }
            XCTAssertEqual(results.count, model.batch, model.name)
            for (sample, r) in results {
                if flaggedInputs.contains(sample) {
                    XCTAssertTrue(r.nonFinite, "\(model.name) sample \(sample): not flagged")
                }
                if r.nonFinite {
                    XCTAssertEqual(r.classIndex, -1, "\(model.name) sample \(sample)")
                    XCTAssertEqual(r.confidence, 0, "\(model.name) sample \(sample)")
                    XCTAssertEqual(r.exitIndex, -1, "\(model.name) sample \(sample)")
                } else {
                    XCTAssertTrue(r.classIndex >= 0 && r.classIndex < classes, "\(model.name) sample \(sample)")
                    XCTAssertTrue(probabilities[sample]!.allSatisfy(\.isFinite), "\(model.name) sample \(sample): unflagged non-finite output")
                }
                XCTAssertGreaterThan(r.flops, 0)
                XCTAssertTrue(r.latency.isFinite && r.latency >= 0)
            }
            // A NaN in the input gives NaN out, as in ONNX Runtime (every model here mixes all
            // pixels into every output).
            XCTAssertTrue(probabilities[3]!.allSatisfy(\.isNaN), "\(model.name): NaN input gave \(probabilities[3]!)")
            // Batch-mates are untouched: samples 0, 4, 7 give the reference answer.
            let output = try engine.infer(input, batch: model.batch)
            for sample in [0, 4, 7] {
                let row = Array(output[(sample * classes)..<((sample + 1) * classes)])
                let reference = Array(model.output[(sample * classes)..<((sample + 1) * classes)])
                let worst = zip(row, reference).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(worst / model.scale, 1e-4, "\(model.name) sample \(sample) next to NaN: \(worst)")
            }
            // Nothing non-finite was collected; the others were; statistics stay finite.
            let unflagged = results.values.filter { !$0.nonFinite }.count
            XCTAssertEqual(engine.collectedSampleCount, unflagged, model.name)
            let stats = engine.stats()
            XCTAssertEqual(stats.samples, model.batch)
            XCTAssertTrue(stats.meanFLOPs.isFinite && stats.latencyP99.isFinite, model.name)
            XCTAssertFalse(engine.statsJSON().isEmpty)
            // Still a working engine.
            try assertMatchesReference(engine, model, "after non-finite batch")
        }
    }

    /// Finite inputs of any magnitude: a result (maybe flagged non-finite) or a clear error,
    /// never a trap. Scaled ×1e35…×1e38 (at ×1e38 values above ~3.4 overflow to inf in the
    /// caller's own multiplication and are then refused as such).
    func testHugeFiniteInputsNeverTrap() throws {
        for model in try Self.fixtureModels() {
            let engine = try engine(model, .refuse)
            for factor: Float in [1e35, 1e36, 1e37, 1e38] {
                let input = model.input.map { $0 * factor }
                var results = 0
                do {
                    try engine.submit(input, batch: model.batch) { r in
                        results += 1
                        if r.nonFinite {
                            XCTAssertEqual(r.classIndex, -1)
                        } else {
                            XCTAssertTrue(r.probabilities.allSatisfy(\.isFinite), "\(model.name) ×\(factor): unflagged non-finite output")
                            XCTAssertGreaterThanOrEqual(r.classIndex, 0)
                        }
                    }
                    XCTAssertEqual(results, model.batch)
                } catch let error as SelfXitError {
                    XCTAssertTrue(input.contains { !$0.isFinite }, "\(model.name) ×\(factor): refused finite input: \(error)")
                    XCTAssertTrue(error.description.contains("is +inf") || error.description.contains("is -inf"), "\(error)")
                }
                _ = try engine.infer(input.map { $0.isFinite ? $0 : 0 }, batch: model.batch)
            }
            try assertMatchesReference(engine, model, "after huge inputs")
        }
    }

    /// A non-finite sample is never answered by an early exit, even by an exit that answers
    /// everything (threshold 0), and is never collected.
    func testNonFiniteSamplesNeverLeaveEarly() throws {
        let model = try XCTUnwrap(Self.fixtureModels().first { $0.name == "resnet18_w4" })
        let engine = try Engine(contentsOf: model.url, options: EngineOptions(threads: 2, maxBatch: 64, seed: 1, nonFiniteInputs: .propagate))
        engine.setExitsEnabled(false)
        var rng = SeededRandom(11)
        let n = model.input.count / model.batch
        for _ in 0..<4 { try engine.submit(rng.array(64 * n).map { $0 * 2 }, batch: 64) { _ in } }
        XCTAssertEqual(engine.collectedSampleCount, 256)
        _ = try engine.updateExits(ExitBuildOptions(tolerance: 0.2, searchBudget: 1, seed: 3, minimumSamples: 100, epochs: 2))
        let configuration = try XCTUnwrap(engine.exitConfiguration)
        let trained = try XCTUnwrap(configuration.trained.first, "no exit head was trained")
        let forced = ExitConfiguration.Exit(candidateIndex: trained.candidateIndex, candidate: trained.candidate, head: trained.head, threshold: 0)
        engine.install(ExitConfiguration(trained: configuration.trained, active: [forced], report: configuration.report))
        engine.setExitsEnabled(true)

        var input = model.input
        input[2 * n + 5] = .nan
        input[4 * n + 9] = -.infinity
        var exitOf: [Int: Int] = [:], flagged: Set<Int> = []
        let collectedBefore = engine.collectedSampleCount
        try engine.submit(input, batch: model.batch) { r in
            exitOf[r.sampleIndex] = r.exitIndex
            if r.nonFinite { flagged.insert(r.sampleIndex) }
        }
        XCTAssertEqual(exitOf.count, model.batch)
        XCTAssertTrue(flagged.isSuperset(of: [2, 4]), "flagged \(flagged)")
        XCTAssertEqual(exitOf[2], -1, "a NaN sample left early")
        XCTAssertEqual(exitOf[4], -1, "a -inf sample left early")
        for sample in Set(0..<model.batch).subtracting(flagged) {
            XCTAssertEqual(exitOf[sample], forced.candidateIndex, "sample \(sample) should take the threshold-0 exit")
        }
        XCTAssertEqual(engine.collectedSampleCount, collectedBefore, "non-finite samples were collected")

        // The all-exits analysis agrees: no class, never `wouldExit`.
        let analysis = try input.withUnsafeBufferPointer { try engine.analyze($0, batch: model.batch) }
        XCTAssertEqual(analysis[2].backboneClass, -1)
        XCTAssertTrue(analysis[2].exits.allSatisfy { !$0.wouldExit && $0.classIndex == -1 })
        XCTAssertTrue(analysis[0].exits.allSatisfy { $0.classIndex >= 0 }, "a finite sample lost its class")
    }

    /// The cost of the refuse-by-default scan against one batch's inference (printed).
    func testFiniteScanCostAgainstInference() throws {
        for name in ["resnet18_w4", "silu_se_net", "mobilenetv2_x0.25"] {
            let model = try XCTUnwrap(Self.fixtureModels().first { $0.name == name })
            let engine = try engine(model, .refuse)
            func best(_ body: () throws -> Void) rethrows -> Double {
                try body()
                var b = Double.infinity
                for _ in 0..<10 {
                    let start = DispatchTime.now().uptimeNanoseconds
                    try body()
                    b = min(b, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                return b
            }
            let infer = try best { _ = try engine.infer(model.input, batch: model.batch) }
            let scan = best { _ = model.input.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: $0.count) } }
            print(String(format: "[HardeningFloatTests] %@ batch 8 (%d floats): finite scan %.2f µs, inference %.3f ms (%.3f%%)",
                         name, model.input.count, scan * 1e6, infer * 1e3, 100 * scan / infer))
            XCTAssertLessThan(scan, infer * 0.05, "\(name): the finite scan costs more than 5% of inference")
        }
    }

    func testScanFindsEveryPositionAndKind() {
        for count in [0, 1, 15, 16, 63, 64, 65, 200] {
            var x = [Float](repeating: 1, count: count)
            XCTAssertNil(x.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: count) })
            x = x.map { _ in .greatestFiniteMagnitude }
            XCTAssertNil(x.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: count) })
            for position in Set([0, count / 2, count - 1]) where position >= 0 && position < count {
                for value: Float in [.nan, .infinity, -.infinity, .signalingNaN] {
                    var y = [Float](repeating: 1e-40, count: count)
                    y[position] = value
                    if position + 1 < count { y[count - 1] = .nan }
                    XCTAssertEqual(y.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: count) }, position, "\(count) \(position) \(value)")
                }
            }
        }
    }
    // Range/Pow folding with non-finite or overflowing values: HardeningImportTests.
}

/// exp16 as it was before the hardening (checked conversion: traps on NaN), for the timing
/// comparison only. Never call it with non-finite input.
@inline(__always)
private func legacyExp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let x = clamp16(x, SIMD16(repeating: -87.3), SIMD16(repeating: 88.3))
    let n = (x * 1.44269504088896341).rounded(.toNearestOrEven)
    var r = x - n * 0.693359375
    r = r + n * 2.12194440e-4
    var p = SIMD16<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    let bits = (SIMD16<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: SIMD16<Float>.self)
}
