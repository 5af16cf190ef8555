import Foundation
import XCTest
@testable import SelfXit

/// Paper §3.1: candidates are tensors every input→output path passes through, at block
/// outputs, not inside the last two compute layers; found from the graph, not by model name.
final class ExitCandidateTests: XCTestCase {
    private func graph(_ file: String) throws -> Graph {
        var graph = try Graph(model: try ONNXModel(contentsOf: Fixtures.model(file)))
        graph.fuse()
        return graph
    }

    /// Brute force: a value is a cut point iff no node after its producer reads any value
    /// produced before it except itself (and aliases of it).
    private func isCut(_ graph: Graph, _ candidate: Graph.ExitCandidate) -> Bool {
        let memory = MemoryPlan(graph: graph)
        let producers = graph.producers()
        let root = memory.root[candidate.value]
        for node in graph.nodes[(candidate.afterNode + 1)...] {
            for input in node.inputs where memory.root[input] != root {
                let position = producers[input] ?? -1
                if position <= candidate.afterNode { return false }
            }
        }
        return true
    }

    func testResNetCandidatesAreBlockOutputsBeforeTheLastTwoLayers() throws {
        let graph = try graph("resnet18_w4.onnx")
        let candidates = graph.exitCandidates()
        // Stem + 8 BasicBlocks, the last block's output excluded (inside the last two layers).
        XCTAssertEqual(candidates.count, 8, candidates.map { graph.values[$0.value].name }.description)
        for candidate in candidates {
            XCTAssertTrue(isCut(graph, candidate), "\(graph.values[candidate.value].name) is not a cut point")
            XCTAssertEqual(candidate.shape.count, 3)
            XCTAssertEqual(candidate.flopsBefore + candidate.flopsAfter, graph.totalFLOPs)
        }
        XCTAssertEqual(candidates.map(\.afterNode), candidates.map(\.afterNode).sorted(), "candidates must be in depth order")
        // Every block output after the stem is a residual conv (Add+Relu fused into it).
        for candidate in candidates.dropFirst() {
            XCTAssertEqual(graph.nodes[candidate.afterNode].inputs.count, 2)
        }
        let computeLayers = graph.nodes.indices.filter { ["Conv", "Gemm"].contains(graph.nodes[$0].opType) }
        XCTAssertLessThan(candidates.last!.afterNode, computeLayers[computeLayers.count - 2])
    }

    func testMobileNetCandidatesAreCutPointsAtBlockBoundaries() throws {
        let graph = try graph("mobilenetv2_x0.25.onnx")
        let candidates = graph.exitCandidates()
        XCTAssertGreaterThanOrEqual(candidates.count, 5)
        let consumers = graph.consumers()
        for candidate in candidates {
            XCTAssertTrue(isCut(graph, candidate))
            // A block boundary: it forks into a residual block, or it is made by a merge.
            XCTAssertTrue(consumers[candidate.value].count >= 2 || graph.nodes[candidate.afterNode].inputs.count >= 2)
        }
    }

    func testBranchInteriorsAreNeverCandidates() throws {
        let graph = try graph("branchy_net.onnx")
        let candidates = graph.exitCandidates()
        XCTAssertFalse(candidates.isEmpty)
        guard let concat = graph.nodes.firstIndex(where: { $0.opType == "Concat" }) else { return XCTFail("no Concat in branchy_net") }
        // The fork feeding the branches and the Concat closing them bound the block.
        let branchInputs = Set(graph.nodes[concat].inputs)
        for candidate in candidates {
            XCTAssertTrue(isCut(graph, candidate))
            XCTAssertFalse(branchInputs.contains(candidate.value), "a branch output became a candidate")
        }
        // No candidate strictly between the fork and the Concat.
        let fork = graph.nodes.indices.filter { index in
            graph.consumers()[graph.nodes[index].output].count >= 3 && index < concat
        }.last ?? -1
        XCTAssertFalse(candidates.contains { $0.afterNode > fork && $0.afterNode < concat }, "a branch interior became a candidate")
        // Brute force agrees: every single-live-tensor point found is a true cut.
        for cut in graph.cutPoints() {
            XCTAssertTrue(isCut(graph, Graph.ExitCandidate(afterNode: cut.afterNode, value: cut.value, shape: [], flopsBefore: 0, flopsAfter: 0)))
        }
    }
}
