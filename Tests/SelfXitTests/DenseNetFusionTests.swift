import Foundation
import XCTest
@testable import SelfXit

/// DenseNet's pattern — Concat of earlier features → BatchNormalization → Relu, and a transition's
/// zero Pad → AveragePool 2×2 stride 2 — loaded from a crafted model: the Concat runs inside the
/// affine node (one pass, no concatenation written), the Pad shares its input's buffer, and the
/// results equal the formula computed here, at batch 1 and 3 on one and two threads.
final class DenseNetFusionTests: XCTestCase {
    // X: [batch, 2, 4, 4]. A = Relu(X) (2 channels) and X again, concatenated with X → 6 channels.
    private let channels = 6, h = 4, w = 4
    private let scale: [Float] = [0.5, -1, 2, 1.5, -0.25, 3]
    private let bias: [Float] = [0.1, -0.2, 0.3, 0, 0.5, -1]
    private let mean: [Float] = [0.2, -0.1, 0, 0.4, 1, -0.5]
    private let variance: [Float] = [1, 0.5, 2, 0.25, 4, 1]
    private let epsilon: Float = 1e-5

    private func model() -> [UInt8] {
        craftModel(input: [2, h, w], nodes: [
            CraftNode("Relu", ["X"], "A", name: "relu_a"),
            CraftNode("Concat", ["X", "A", "X"], "C", name: "concat0", [("axis", .int(1))]),
            CraftNode("BatchNormalization", ["C", "s", "b", "m", "v"], "B", name: "norm1",
                      [("epsilon", .float(epsilon))]),
            CraftNode("Relu", ["B"], "R", name: "relu1"),
            CraftNode("Pad", ["R", "pads"], "P", name: "pad0"),
            CraftNode("AveragePool", ["P"], "Q", name: "pool0",
                      [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))]),
            CraftNode("Flatten", ["Q"], "Y", name: "flatten0"),
        ], initializers: [
            .floats("s", dims: [6], scale), .floats("b", dims: [6], bias),
            .floats("m", dims: [6], mean), .floats("v", dims: [6], variance),
            .ints("pads", dims: [8], [0, 0, 0, 0, 0, 0, 0, 0]),
        ])
    }

    /// The model's output for one sample, computed straight from the ONNX definitions.
    private func reference(_ x: ArraySlice<Float>) -> [Float] {
        let plane = h * w
        let xs = Array(x)
        var concat = [Float]()
        concat += xs
        concat += xs.map { max($0, 0) }
        concat += xs
        var out = [Float]()
        for c in 0..<channels {
            let a = scale[c] / (variance[c] + epsilon).squareRoot()
            let b = bias[c] - mean[c] * a
            let y = (0..<plane).map { max(concat[c * plane + $0] * a + b, 0) }
            for oy in 0..<(h / 2) {
                for ox in 0..<(w / 2) {
                    let s = y[2 * oy * w + 2 * ox] + y[2 * oy * w + 2 * ox + 1] + y[(2 * oy + 1) * w + 2 * ox] + y[(2 * oy + 1) * w + 2 * ox + 1]
                    out.append(s / 4)
                }
            }
        }
        return out
    }

    func testConcatRunsInsideTheAffineNodeAndZeroPadIsAnAlias() throws {
        let engine = try Engine(modelBytes: model(), options: EngineOptions(threads: 1, maxBatch: 4, collectionBudgetBytes: 0))
        let kinds = engine.plan.graph.nodes.map(\.opType)
        XCTAssertFalse(kinds.contains("Concat"), "the Concat should be fused into the BatchNormalization: \(kinds)")
        XCTAssertFalse(kinds.contains("Relu") && kinds.filter { $0 == "Relu" }.count > 1, "Relu left unfused: \(kinds)")
        let affine = try XCTUnwrap(engine.plan.graph.nodes.first { $0.opType == "BatchNormalization" })
        XCTAssertEqual(affine.inputs.count, 3, "the affine node reads the Concat's three inputs")
        let pad = try XCTUnwrap(engine.plan.graph.nodes.first { $0.opType == "Pad" })
        guard case .alias = pad.operation else { return XCTFail("an all-zero Pad should share its input's buffer") }
    }

    func testResultsMatchTheFormula() throws {
        var random = SeededRandom(seed: 14)
        let x = (0..<(3 * 2 * h * w)).map { _ in Float(random.uniform() * 4 - 2) }
        for threads in [1, 2] {
            let engine = try Engine(modelBytes: model(), options: EngineOptions(threads: threads, maxBatch: 4, collectionBudgetBytes: 0))
            for batch in [1, 3] {
                let y = try engine.infer(Array(x[0..<(batch * 2 * h * w)]), batch: batch)
                XCTAssertEqual(y.count, batch * channels * (h / 2) * (w / 2))
                for n in 0..<batch {
                    let expected = reference(x[(n * 2 * h * w)..<((n + 1) * 2 * h * w)])
                    let got = y[(n * expected.count)..<((n + 1) * expected.count)]
                    for (e, g) in zip(expected, got) {
                        XCTAssertEqual(e, g, accuracy: 1e-5, "threads \(threads), batch \(batch), sample \(n)")
                    }
                }
            }
        }
    }

    /// Many channels and a plane over 16 floats: the vector loop, the split over two threads and
    /// the per-channel lookup of which input holds a channel.
    func testLargeConcatMatchesSeparateConcatAndAffine() throws {
        let pool = try ThreadPool(threads: 2)
        let plane = 37, parts = [5, 64, 3, 33]
        let total = parts.reduce(0, +)
        var random = SeededRandom(seed: 7)
        for batch in [1, 2] {
            let inputs = parts.map { c in (0..<(batch * c * plane)).map { _ in Float(random.uniform() * 2 - 1) } }
            let scale = (0..<total).map { _ in Float(random.uniform() * 2 - 1) }
            let shift = (0..<total).map { _ in Float(random.uniform() - 0.5) }
            for activation in [Activation.none, .relu, .clip(min: 0, max: 0.3)] {
                var fused = [Float](repeating: .nan, count: batch * total * plane)
                let pointers = inputs.map { $0.withUnsafeBufferPointer { $0.baseAddress! } }
                withExtendedLifetime(inputs) {
                    fused.withUnsafeMutableBufferPointer { out in
                        concatChannelAffine(inputs: zip(pointers, parts).map { ($0, $1) }, output: out.baseAddress!,
                                            scale: scale, shift: shift, batch: batch, plane: plane, activation: activation, pool: pool)
                    }
                }
                for n in 0..<batch {
                    var channel = 0
                    for (i, c) in parts.enumerated() {
                        for local in 0..<c {
                            for p in 0..<plane {
                                var v = inputs[i][(n * c + local) * plane + p] * scale[channel] + shift[channel]
                                switch activation {
                                case .relu: v = max(v, 0)
                                case let .clip(lo, hi): v = min(max(v, lo), hi)
                                default: break
                                }
                                XCTAssertEqual(fused[(n * total + channel) * plane + p], v, "batch \(batch) \(activation)")
                            }
                            channel += 1
                        }
                    }
                }
            }
        }
    }
}
