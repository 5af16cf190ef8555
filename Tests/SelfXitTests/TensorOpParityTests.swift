import Foundation
import XCTest
@testable import SelfXit

/// Issue 13: the tensor operators of transformer and mobile exports, each in a tiny model with
/// odd sizes (tools/make_tensorop_fixtures.py), against ONNX Runtime at batch 1 and 3 — every
/// graph output, read through `inferOutputs`.
final class TensorOpParityTests: XCTestCase {
    static let directory = Fixtures.directory.appendingPathComponent("tensorops")

    struct OutputRef: Decodable { let file: String; let shape: [Int]; let max_abs: Float }
    struct BatchRef: Decodable { let input: String; let outputs: [OutputRef] }
    struct Entry: Decodable { let file: String; let input_shape: [Int]; let outputs: [String]; let batches: [String: BatchRef] }
    struct Refused: Decodable { let file: String; let op_type: String; let node: String }
    struct Manifest: Decodable { let models: [String: Entry]; let refused: [String: Refused] }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("manifest.json")))
    }

    static func floats(_ file: String) throws -> [Float] {
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }

    func testEveryTensorOpFixtureMatchesONNXRuntime() throws {
        let manifest = try Self.manifest()
        XCTAssertGreaterThanOrEqual(manifest.models.count, 13, "fixture manifest lists too few models")
        for (name, entry) in manifest.models.sorted(by: { $0.key < $1.key }) {
            for threads in [1, 2] {
                let engine: Engine
                do {
                    engine = try Engine(contentsOf: Self.directory.appendingPathComponent(entry.file), options: EngineOptions(threads: threads))
                } catch {
                    XCTFail("\(name): failed to load: \(error)")
                    continue
                }
                XCTAssertEqual(engine.outputInfos.map(\.name), entry.outputs, "\(name): output names")
                for (batchKey, reference) in entry.batches.sorted(by: { $0.key < $1.key }) {
                    let batch = try XCTUnwrap(Int(batchKey))
                    let outputs = try engine.inferOutputs(try Self.floats(reference.input), batch: batch)
                    XCTAssertEqual(outputs.count, reference.outputs.count, "\(name): number of outputs")
                    for (output, expectedRef) in zip(outputs, reference.outputs) {
                        let expected = try Self.floats(expectedRef.file)
                        XCTAssertEqual(output.values.count, expected.count, "\(name) b\(batch) \(output.info.name): length")
                        guard output.values.count == expected.count else { continue }
                        let worst = zip(output.values, expected).map { abs($0 - $1) }.max() ?? 0
                        XCTAssertLessThanOrEqual(worst / max(1, expectedRef.max_abs), 1e-4,
                                                 "\(name) b\(batch) threads \(threads) \(output.info.name): max |ours − ORT| = \(worst)")
                    }
                }
            }
        }
    }

    /// The opset-13 LayerNorm decomposition and torch's erf GELU become one kernel each.
    func testLayerNormDecompositionAndGELUAreFused() throws {
        let engine = try Engine(contentsOf: Self.directory.appendingPathComponent("layernorm13_gelu.onnx"))
        let operations = engine.plan.graph.nodes.map(\.operation)
        XCTAssertEqual(operations.count, 2, "expected LayerNorm + GELU, got \(engine.plan.graph.nodes.map(\.opType))")
        XCTAssertTrue(operations.contains { if case .layerNorm(let n) = $0 { return n.scale != nil && n.bias != nil } else { return false } })
        XCTAssertTrue(operations.contains { if case .unary(.gelu) = $0 { return true } else { return false } })
    }

    /// What cannot run is refused at load, naming the operator and the node.
    func testUnsupportedConstructsNameTheNode() throws {
        for (name, refused) in try Self.manifest().refused {
            XCTAssertThrowsError(try Engine(contentsOf: Self.directory.appendingPathComponent(refused.file)), name) { error in
                guard case .unsupportedOperator(let op, let node, _)? = error as? SelfXitError else {
                    return XCTFail("\(name): \(error)")
                }
                XCTAssertEqual(op, refused.op_type)
                XCTAssertEqual(node, refused.node)
            }
        }
    }
}
