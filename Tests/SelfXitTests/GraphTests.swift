import Foundation
import XCTest
@testable import SelfXit

/// Load-time graph work: folding of shape sub-graphs, BatchNorm/activation/residual fusion,
/// and the memory plan.
final class GraphTests: XCTestCase {
    private func graph(_ file: String, inputShape: [Int]? = nil, fused: Bool = true) throws -> Graph {
        let model = try ONNXModel(contentsOf: Fixtures.model(file))
        var graph = try Graph(model: model, options: .init(inputShape: inputShape))
        if fused { graph.fuse() }
        return graph
    }

    func testResNetFoldsShapeChainsBatchNormsActivationsAndResidualAdds() throws {
        let raw = try graph("resnet18_w4.onnx", fused: false)
        XCTAssertFalse(raw.nodes.contains { ["Shape", "Gather", "Concat", "Unsqueeze", "Constant"].contains($0.opType) },
                       "shape sub-graph was not folded: \(raw.nodes.map(\.opType))")
        let fused = try graph("resnet18_w4.onnx")
        let kinds = fused.nodes.map(\.opType)
        XCTAssertEqual(kinds.filter { $0 == "Conv" }.count, 20)
        XCTAssertFalse(kinds.contains("BatchNormalization"), "BatchNorm left unfolded: \(kinds)")
        XCTAssertFalse(kinds.contains("Relu"), "Relu left unfused: \(kinds)")
        XCTAssertFalse(kinds.contains("Add"), "residual Add left unfused: \(kinds)")
        let residualConvs = fused.nodes.filter { $0.opType == "Conv" && $0.inputs.count == 2 }
        XCTAssertEqual(residualConvs.count, 8, "each BasicBlock's Add+Relu belongs in its last conv")
        for node in residualConvs {
            guard case .conv(_, _, _, let activation) = node.operation else { continue }
            XCTAssertEqual(activation, .relu)
        }
    }

    /// Each convolution's weight buffer by node name (addresses only: no reference outlives the call).
    private func weightAddresses(_ graph: Graph) -> [String: Int] {
        var addresses: [String: Int] = [:]
        for node in graph.nodes {
            guard case .conv(_, let weights, _, _) = node.operation else { continue }
            addresses[node.name] = weights.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) }
        }
        return addresses
    }

    /// Folding a BatchNormalization scales its convolution's weights where they are: a copy held
    /// every weight twice while a model loaded (ResNet-50 with unfolded BatchNormalizations peaked
    /// at 348 MB against 248 MB in `selfxit-bench`, VmHWM). Engine.init lets the parsed model go
    /// before `fuse` for the same reason.
    func testBatchNormFoldScalesWeightsInPlace() throws {
        var graph = try graph("resnet18_w4.onnx", fused: false)
        XCTAssertTrue(graph.nodes.contains { $0.opType == "BatchNormalization" }, "the fixture should have its BatchNormalizations")
        let before = weightAddresses(graph)
        graph.fuse()
        let after = weightAddresses(graph)
        XCTAssertEqual(after.count, 20)
        for (name, address) in after {
            XCTAssertEqual(address, before[name], "\(name): weights were copied by the fold")
        }
    }

    func testTFSamePaddingChainsFoldAway() throws {
        let raw = try graph("tf_same_net.onnx", inputShape: [3, 33, 33], fused: false)
        XCTAssertFalse(raw.nodes.contains { ["Shape", "Gather", "Slice", "ConstantOfShape", "Cast", "Range", "Where"].contains($0.opType) },
                       "TF-same padding arithmetic survived: \(raw.nodes.map(\.opType))")
        XCTAssertTrue(raw.nodes.contains { $0.opType == "Pad" })
    }

    func testMemoryPlanNeverOverlapsLiveBuffers() throws {
        for file in ["resnet18_w4.onnx", "resnet50_w4.onnx", "mobilenetv2_x0.25.onnx", "branchy_net.onnx", "mobilenet_v3ish.onnx"] {
            let graph = try graph(file)
            let plan = MemoryPlan(graph: graph)
            // Lifetimes by root buffer.
            var first = [Int: Int](), last = [Int: Int]()
            first[plan.root[graph.input]] = -1
            last[plan.root[graph.input]] = -1
            for (index, node) in graph.nodes.enumerated() {
                let r = plan.root[node.output]
                first[r] = min(first[r] ?? index, index)
                last[r] = max(last[r] ?? index, index)
                for input in node.inputs { last[plan.root[input]] = max(last[plan.root[input]] ?? index, index) }
            }
            for output in graph.outputs { last[plan.root[output]] = graph.nodes.count }
            let buffers = Array(first.keys)
            for a in buffers {
                XCTAssertLessThanOrEqual(plan.offset[a] + graph.values[a].elementsPerSample, plan.floatsPerSample)
                for b in buffers where a < b {
                    let liveTogether = !(last[a]! < first[b]! || last[b]! < first[a]!)
                    let overlap = plan.offset[a] < plan.offset[b] + graph.values[b].elementsPerSample
                        && plan.offset[b] < plan.offset[a] + graph.values[a].elementsPerSample
                    XCTAssertFalse(liveTogether && overlap, "\(file): buffers \(graph.values[a].name) and \(graph.values[b].name) overlap")
                }
            }
            // Reuse: the arena is much smaller than the sum of all activations.
            let total = buffers.map { graph.values[$0].elementsPerSample }.reduce(0, +)
            XCTAssertLessThan(plan.floatsPerSample, total / 2, "\(file): the arena does not reuse memory")
        }
    }

    /// A convolution's fused residual sum is written over the residual when nothing reads the
    /// residual afterwards (and never over the graph input).
    func testResidualSumsWrittenInPlaceOnlyOverDeadValues() throws {
        for file in ["resnet18_w4.onnx", "resnet50_w4.onnx", "mobilenetv2_x0.25.onnx"] {
            let graph = try graph(file)
            let plan = MemoryPlan(graph: graph)
            var producer = [Int](repeating: -1, count: graph.values.count)
            var lastRead = [Int](repeating: -1, count: graph.values.count)
            for (index, node) in graph.nodes.enumerated() {
                producer[node.output] = index
                for input in node.inputs { lastRead[input] = index }
            }
            for output in graph.outputs { lastRead[output] = graph.nodes.count }
            var inPlace = 0
            for (index, node) in graph.nodes.enumerated() where node.opType == "Conv" && node.inputs.count > 1 {
                let r = plan.root[node.output]
                guard r == plan.root[node.inputs[1]] else { continue }
                inPlace += 1
                XCTAssertNotEqual(r, plan.root[graph.input], "\(file): \(node.name) overwrites the input")
                XCTAssertNotEqual(r, plan.root[node.inputs[0]], "\(file): \(node.name) overwrites its own input")
                for value in graph.values.indices where plan.root[value] == r && producer[value] < index && value != graph.input {
                    XCTAssertLessThanOrEqual(lastRead[value], index, "\(file): \(node.name) overwrites \(graph.values[value].name), read later")
                }
            }
            XCTAssertGreaterThan(inPlace, 0, "\(file): no residual sum in place")
        }
    }

    func testArithmeticOnTheBatchSizeIsRefused() throws {
        // Adding to the batch size depends on the batch: refused, naming the node.
        let node = ONNXNode(name: "shift_batch", opType: "Add", inputs: ["s", "k"], outputs: ["y"])
        let shape = ConstantTensor(shape: [2], ints: [1, 10], batchSymbolic: [true, false])
        let factor = ConstantTensor(shape: [], ints: [2])
        XCTAssertThrowsError(try ConstantFolder.evaluate(node, [shape, factor], opset: 17)) { error in
            guard case SelfXitError.unsupportedOperator(_, let name, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "shift_batch")
        }
        // Scaling it (issue 13: `B * heads`, `B * windows // windows`) keeps the symbol.
        let mul = ONNXNode(name: "scale_batch", opType: "Mul", inputs: ["s", "k"], outputs: ["y"])
        let scaled = try ConstantFolder.evaluate(mul, [shape, factor], opset: 17)
        XCTAssertEqual(scaled.ints, [2, 20])
        XCTAssertEqual(scaled.batchSymbolic, [true, false])
        let div = ONNXNode(name: "unscale_batch", opType: "Div", inputs: ["y", "k"], outputs: ["z"])
        XCTAssertEqual(try ConstantFolder.evaluate(div, [scaled, factor], opset: 17).ints, [1, 10])
        // A division that does not leave a whole multiple of the batch is refused.
        XCTAssertThrowsError(try ConstantFolder.evaluate(div, [shape, factor], opset: 17))
    }

    func testShapeGatherConcatKeepsTheBatchSymbol() throws {
        let shape = ConstantTensor(shape: [4], ints: [1, 8, 7, 7], batchSymbolic: [true, false, false, false])
        let gather = ONNXNode(opType: "Gather", inputs: ["s", "i"], outputs: ["g"], attributes: ["axis": .int(0)])
        let first = try ConstantFolder.evaluate(gather, [shape, ConstantTensor(shape: [1], ints: [0])], opset: 17)
        XCTAssertTrue(first.isBatch(0))
        let concat = ONNXNode(opType: "Concat", inputs: ["g", "m"], outputs: ["c"], attributes: ["axis": .int(0)])
        let target = try ConstantFolder.evaluate(concat, [first, ConstantTensor(shape: [1], ints: [-1])], opset: 17)
        XCTAssertEqual(target.shape, [2])
        XCTAssertEqual(target.ints[1], -1)
        XCTAssertTrue(target.isBatch(0) && !target.isBatch(1))
    }
}
