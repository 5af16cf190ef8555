import Foundation
import XCTest
@testable import SelfXit

/// Running the plan in segments, sample-parallel or node by node, gives the same outputs.
final class ExecutionPlanTests: XCTestCase {
    /// Every cut point, batches with and without rows left over for the node-by-node run, against
    /// one thread in one piece. The model reuses buffers across widths (its input's buffer later
    /// holds a wider activation) and writes residual sums in place, so a sample-parallel segment
    /// that wrote its outputs back early would clobber inputs other threads have not read yet.
    func testSegmentsMatchOnePassOnOneThread() throws {
        let url = Fixtures.repositoryRoot.appendingPathComponent("models/fmnist-resnet18-w16.onnx")
        let parallel = try Engine(contentsOf: url, options: EngineOptions(threads: 2, seed: 1))
        let serial = try Engine(contentsOf: url, options: EngineOptions(threads: 1, seed: 1))
        let plan = parallel.plan
        let n = plan.graph.nodes.count
        for batch in [1, 2, 5, 8] {
            var rng = SeededRandom(UInt64(batch))
            let input = rng.array(batch * parallel.inputCount)
            // Same kernels per sample, but the threads may split a layer's sums differently.
            let expected = try serial.infer(input, batch: batch).map(Double.init)
            assertClose(try parallel.infer(input, batch: batch), expected, tol: 1e-5, "batch \(batch), one segment")
            for cuts in [[n / 3], [1, n / 2, n - 2], Array(1..<n)] {
                let workspace = plan.makeWorkspace(capacity: batch)
                input.withUnsafeBufferPointer { plan.pointer(plan.graph.input, in: workspace).update(from: $0.baseAddress!, count: input.count) }
                var start = 0
                for end in cuts + [n] {
                    plan.run(start..<end, rows: batch, in: workspace)
                    start = end
                }
                let output = Array(UnsafeBufferPointer(start: plan.pointer(plan.graph.outputs[0], in: workspace), count: batch * parallel.outputCount))
                assertClose(output, expected, tol: 1e-5, "batch \(batch), cuts \(cuts.count)")
            }
        }
    }
}
