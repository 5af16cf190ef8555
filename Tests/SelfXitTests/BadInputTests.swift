import Foundation
import XCTest
@testable import SelfXit

/// Acceptance: bad input gives a clear error and the process — and a loaded engine — go on.
final class BadInputTests: XCTestCase {
    private func modelBytes(_ file: String = "resnet18_w4.onnx") throws -> [UInt8] {
        [UInt8](try Data(contentsOf: Fixtures.model(file)))
    }

    private func loadError(_ bytes: [UInt8]) -> SelfXitError? {
        do {
            _ = try Engine(modelBytes: bytes, options: EngineOptions(threads: 1))
            return nil
        } catch let error as SelfXitError {
            return error
        } catch {
            XCTFail("unexpected error type \(error)")
            return nil
        }
    }

    func testTruncatedFilesAreRefused() throws {
        let bytes = try modelBytes()
        for length in [0, 1, 7, 100, bytes.count / 3, bytes.count / 2, bytes.count - 1] {
            let error = loadError(Array(bytes[0..<length]))
            XCTAssertNotNil(error, "a model truncated to \(length) bytes was accepted")
            if case .invalidModel(let message)? = error { XCTAssertFalse(message.isEmpty) } else {
                XCTFail("truncated to \(length): expected invalidModel, got \(String(describing: error))")
            }
        }
    }

    func testRandomBytesAreRefused() {
        var generator = SeededRandom(seed: 7)
        for trial in 0..<200 {
            let bytes = (0..<(1 + trial * 13)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            XCTAssertNotNil(loadError(bytes), "random bytes (trial \(trial)) were accepted as a model")
        }
    }

    func testUnsupportedOperatorIsNamedWithItsNode() throws {
        let error = loadError(try modelBytes("resnet18_w4_unsupported_op.onnx"))
        guard case .unsupportedOperator(let op, let node, _)? = error else {
            return XCTFail("expected unsupportedOperator, got \(String(describing: error))")
        }
        XCTAssertFalse(op.isEmpty)
        XCTAssertFalse(node.isEmpty)
        XCTAssertTrue(error!.description.contains(op) && error!.description.contains(node), error!.description)
    }

    func testMissingFileIsAnIOError() {
        XCTAssertThrowsError(try Engine(contentsOf: URL(fileURLWithPath: "/nonexistent/model.onnx"))) { error in
            guard case SelfXitError.io = error else { return XCTFail("expected io, got \(error)") }
        }
    }

    func testBadCallsAreRefusedAndTheEngineStaysUsable() throws {
        let engine = try Engine(modelBytes: try modelBytes(), options: EngineOptions(threads: 2, maxBatch: 64))
        let sample = [Float](repeating: 0.5, count: engine.inputCount)
        let before = try engine.infer(sample, batch: 1)

        XCTAssertThrowsError(try engine.infer([], batch: 0)) { error in
            guard case SelfXitError.invalidArgument = error else { return XCTFail("empty batch: \(error)") }
        }
        XCTAssertThrowsError(try engine.infer(Array(sample.dropLast()), batch: 1)) { error in
            guard case SelfXitError.shapeMismatch(let message) = error else { return XCTFail("wrong shape: \(error)") }
            XCTAssertTrue(message.contains("\(engine.inputCount)"), message)
        }
        XCTAssertThrowsError(try engine.infer(sample + sample, batch: 1))
        XCTAssertThrowsError(try engine.infer(sample, batch: -3))
        XCTAssertThrowsError(try engine.infer([Float](repeating: 0, count: 65 * engine.inputCount), batch: 65)) { error in
            guard case SelfXitError.invalidArgument = error else { return XCTFail("oversized batch: \(error)") }
        }
        XCTAssertEqual(try engine.infer(sample, batch: 1), before, "the engine changed after refused calls")
    }

    func testResultCallbacksMaySubmitAgain() throws {
        let engine = try Engine(modelBytes: try modelBytes(), options: EngineOptions(threads: 2))
        let input = [Float](repeating: 0.3, count: 3 * engine.inputCount)
        var outer = 0, inner = 0
        try engine.submit(input, batch: 3) { _ in
            outer += 1
            try? engine.submit(Array(input.prefix(engine.inputCount)), batch: 1) { _ in inner += 1 }
        }
        XCTAssertEqual(outer, 3)
        XCTAssertEqual(inner, 3)
    }

    func testBadOptionsAreRefused() throws {
        let bytes = try modelBytes()
        XCTAssertThrowsError(try Engine(modelBytes: bytes, options: EngineOptions(threads: 0)))
        XCTAssertThrowsError(try Engine(modelBytes: bytes, options: EngineOptions(maxBatch: 0)))
        XCTAssertThrowsError(try Engine(modelBytes: bytes, options: EngineOptions(inputShape: [1, 28]))) { error in
            guard case SelfXitError.shapeMismatch = error else { return XCTFail("bad input shape: \(error)") }
        }
    }
}

