import XCTest
@testable import SelfXit

/// Acceptance: every committed test model, at batch 1 and 8, matches ONNX Runtime's output
/// within 1e-4 (relative to the output's largest magnitude when that exceeds 1).
final class ParityTests: XCTestCase {
    func testEveryFixtureModelMatchesONNXRuntime() throws {
        try checkEveryFixture(threadCounts: [1, 2], label: "default kernels")
    }

    /// The same fixtures on every kernel configuration this machine runs (forced as a test
    /// forces an ISA: every Conv, depthwise, pooling, dense and activation kernel created while
    /// it is set), 2 threads; the log names the configurations that ran and those skipped.
    func testEveryFixtureOnEveryKernelConfig() throws {
        for isa in PackedGEMM.allISAs {
            guard let cfg = PackedGEMM.config(isa) else {
                print("parity: kernel config \(isaName(isa)) skipped — not available on this CPU")
                continue
            }
            PackedGEMM.isaOverride = .some(isa)
            defer { PackedGEMM.isaOverride = nil }
            try checkEveryFixture(threadCounts: [2], label: "config \(String(cString: cfg.pointee.name))")
            print("parity: kernel config \(String(cString: cfg.pointee.name)) ran on every fixture")
        }
    }

    private func checkEveryFixture(threadCounts: [Int], label: String) throws {
        let manifest = try Fixtures.manifest()
        XCTAssertGreaterThanOrEqual(manifest.models.count, 8, "fixture manifest lists too few models")
        for (name, entry) in manifest.models.sorted(by: { $0.key < $1.key }) {
            guard let shape1 = entry.input_shape["1"] else { XCTFail("\(name): no batch-1 shape"); continue }
            if let unsupported = entry.unsupported_node {
                // Made to be refused: the error must name the operator and the node.
                XCTAssertThrowsError(try Engine(contentsOf: Fixtures.model(entry.file))) { error in
                    XCTAssertEqual(error as? SelfXitError, .unsupportedOperator(op: unsupported.op_type, node: unsupported.name,
                                                                               detail: "operator is not implemented"))
                }
                continue
            }
            for threads in threadCounts {
                let engine: Engine
                do {
                    engine = try Engine(contentsOf: Fixtures.model(entry.file),
                                        options: EngineOptions(threads: threads, inputShape: Array(shape1.dropFirst())))
                } catch {
                    XCTFail("\(name): failed to load: \(error)")
                    continue
                }
                for (batchKey, reference) in entry.references.sorted(by: { $0.key < $1.key }) {
                    let batch = try XCTUnwrap(Int(batchKey))
                    let input = try Fixtures.floats(reference.input)
                    let expected = try Fixtures.floats(reference.output)
                    let output = try engine.infer(input, batch: batch)
                    XCTAssertEqual(output.count, expected.count, "\(name) b\(batch): output length")
                    guard output.count == expected.count else { continue }
                    let scale = max(1, entry.max_abs_output[batchKey] ?? 1)
                    let worst = zip(output, expected).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst / scale, 1e-4, "\(name) batch \(batch) threads \(threads) (\(label)): max |ours − ORT| = \(worst)")
                    XCTAssertFalse(output.contains { !$0.isFinite }, "\(name): non-finite output")
                }
            }
        }
    }
}
