import Foundation
import XCTest
@testable import SelfXit

/// Running the plan in segments, sample-parallel or node by node, gives the same outputs.
final class ExecutionPlanTests: XCTestCase {
    /// Every cut point, batches with and without rows left over for the node-by-node run, against
    /// one thread in one piece (one thread a sample at a time checked against it too). The model
    /// reuses buffers across widths (its input's buffer later holds a wider activation) and writes
    /// residual sums in place, so a sample-parallel segment that wrote its outputs back early
    /// would clobber inputs other threads have not read yet.
    func testSegmentsMatchOnePassOnOneThread() throws {
        let url = Fixtures.repositoryRoot.appendingPathComponent("models/fmnist-resnet18-w16.onnx")
        let parallel = try Engine(contentsOf: url, options: EngineOptions(threads: 2, seed: 1))
        let serial = try Engine(contentsOf: url, options: EngineOptions(threads: 1, seed: 1))
        let plan = parallel.plan
        let n = plan.graph.nodes.count
        XCTAssertFalse(serial.plan.oneThreadSampleWise, "28×28 images: one thread runs a batch node by node")
        var graph = try Graph(model: ONNXModel(contentsOf: url))
        graph.fuse()
        let sampleWise = try ExecutionPlan(graph: graph, pool: ThreadPool(threads: 1), oneThreadSampleWiseFrom: 0)
        XCTAssertTrue(sampleWise.oneThreadSampleWise)
        for batch in [1, 2, 5, 8] {
            var rng = SeededRandom(UInt64(batch))
            let input = rng.array(batch * parallel.inputCount)
            // Same kernels per sample, but the threads may split a layer's sums differently.
            let expected = try serial.infer(input, batch: batch).map(Double.init)
            // One thread takes a batch a sample at a time where a sample's activations are large
            // (`ExecutionPlan.oneThreadSampleWise`; not this model's): forced here, the same
            // outputs as one thread node by node, over the same cut points.
            for cuts in [[Int](), [n / 3], [1, n / 2, n - 2]] {
                assertClose(try runInSegments(sampleWise, input, batch: batch, cuts: cuts), expected, tol: 1e-5,
                            "batch \(batch), one thread a sample at a time, cuts \(cuts.count)")
            }
            assertClose(try parallel.infer(input, batch: batch), expected, tol: 1e-5, "batch \(batch), one segment")
            for cuts in [[n / 3], [1, n / 2, n - 2], Array(1..<n)] {
                assertClose(try runInSegments(plan, input, batch: batch, cuts: cuts), expected, tol: 1e-5, "batch \(batch), cuts \(cuts.count)")
            }
        }
    }

    /// `plan` run on `input` (`batch` rows) in segments ending at each of `cuts` and at the last
    /// node; the first graph output's rows.
    private func runInSegments(_ plan: ExecutionPlan, _ input: [Float], batch: Int, cuts: [Int]) throws -> [Float] {
        let workspace = try plan.makeWorkspace(capacity: batch)
        input.withUnsafeBufferPointer { plan.pointer(plan.graph.input, in: workspace).update(from: $0.baseAddress!, count: input.count) }
        var start = 0
        for end in cuts + [plan.graph.nodes.count] {
            plan.run(start..<end, rows: batch, in: workspace)
            start = end
        }
        let output = plan.graph.outputs[0]
        return Array(UnsafeBufferPointer(start: plan.pointer(output, in: workspace), count: batch * plan.graph.values[output].elementsPerSample))
    }

    /// A dense layer with large weights runs once on the whole batch between two sample-parallel
    /// stretches (`Step.prefersWholeBatch`); the outputs match one thread in one piece.
    func testWholeBatchStepBetweenSampleParallelStretches() throws {
        // 64 → 64 → 4096 (262 144 weights: whole batch) → 10, Relu between.
        let layers: [(k: Int, n: Int)] = [(64, 64), (64, 4096), (4096, 10)]
        var rng = SeededRandom(11)
        let bytes = denseChainModel(layers) { rng.array($0).map { $0 * 0.2 } }
        let parallel = try Engine(modelBytes: bytes, options: EngineOptions(threads: 2, seed: 1))
        let serial = try Engine(modelBytes: bytes, options: EngineOptions(threads: 1, seed: 1))
        let plan = parallel.plan
        XCTAssertEqual(plan.graph.nodes.count, 3)
        XCTAssertEqual((0..<3).map { plan.prefersWholeBatch($0) }, [false, true, false])
        // 307 K weights against ~4 K floats of activations a sample: the sample-parallel
        // stretches take two samples per thread at a time where each share is even (batches 5
        // and 8 here), one at a time otherwise (6: three per thread).
        XCTAssertEqual(plan.samplesPerThreadRun, 2)
        for batch in [1, 2, 5, 6, 8] {
            let input = rng.array(batch * 64)
            let expected = try serial.infer(input, batch: batch).map(Double.init)
            assertClose(try parallel.infer(input, batch: batch), expected, tol: 1e-5, "batch \(batch)")
        }
    }

    /// An ONNX model of Gemm layers (`transB = 1`, bias) with Relu between them, input `[batch, k0]`.
    private func denseChainModel(_ layers: [(k: Int, n: Int)], weights: (Int) -> [Float]) -> [UInt8] {
        var m = PBWriter()
        m.int(1, 9)
        m.message(8) { o in o.string(1, ""); o.int(2, 18) }
        m.message(7) { g in
            var value = "X"
            for (i, layer) in layers.enumerated() {
                let gemmOut = "g\(i)", out = i + 1 < layers.count ? "r\(i)" : "Y"
                g.message(1) { n in
                    n.string(1, value); n.string(1, "W\(i)"); n.string(1, "B\(i)")
                    n.string(2, i + 1 < layers.count ? gemmOut : out)
                    n.string(3, "gemm\(i)"); n.string(4, "Gemm")
                    n.message(5) { a in a.string(1, "transB"); a.int(3, 1); a.int(20, 2) }
                }
                if i + 1 < layers.count {
                    g.message(1) { n in n.string(1, gemmOut); n.string(2, out); n.string(3, "relu\(i)"); n.string(4, "Relu") }
                }
                value = out
            }
            g.string(2, "dense-chain")
            for (i, layer) in layers.enumerated() {
                let w = weights(layer.n * layer.k), b = weights(layer.n)
                g.message(5, tensorProto("W\(i)", .float, dims: [Int64(layer.n), Int64(layer.k)]) { $0.data(9, rawBytes(w)) })
                g.message(5, tensorProto("B\(i)", .float, dims: [Int64(layer.n)]) { $0.data(9, rawBytes(b)) })
            }
            g.message(11, valueInfo("X", .float, ["batch", layers[0].k]))
            g.message(12, valueInfo("Y", .float, ["batch", layers[layers.count - 1].n]))
        }
        return m.bytes
    }
}
