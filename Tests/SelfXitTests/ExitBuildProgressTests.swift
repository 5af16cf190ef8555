import Foundation
import XCTest
@testable import SelfXit
import SelfXitDatasets

/// `ExitBuildOptions.onProgress`: monotone progress through named stages to 1.0, and a cancel
/// that ends the build quickly with `.cancelled`, leaving the exits the engine had.
final class ExitBuildProgressTests: XCTestCase {
    static let modelURL = Fixtures.repositoryRoot.appendingPathComponent("models/fmnist-resnet18-w16.onnx")
    static let data = try? FashionMNIST(split: "t10k")

    /// Records the reports (the handler is @Sendable; the build calls it on its own thread).
    final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [(progress: ExitBuildProgress, time: UInt64)] = []
        var reports: [ExitBuildProgress] { lock.lock(); defer { lock.unlock() }; return items.map(\.progress) }
        var times: [UInt64] { lock.lock(); defer { lock.unlock() }; return items.map(\.time) }
        func add(_ p: ExitBuildProgress) { lock.lock(); items.append((p, DispatchTime.now().uptimeNanoseconds)); lock.unlock() }
    }

    private func collectingEngine(_ count: Int) throws -> Engine {
        let data = try XCTUnwrap(Self.data, "Fashion-MNIST is missing (tools/bootstrap.sh installs dataset-fashion-mnist)")
        let engine = try Engine(contentsOf: Self.modelURL, options: EngineOptions(threads: 2, seed: 1))
        engine.setExitsEnabled(false)
        for first in stride(from: 0, to: count, by: 100) {
            try engine.submit(Array(data.batch(first..<(first + 100))), batch: 100) { _ in }
        }
        return engine
    }

    private static func options(_ handler: (@Sendable (ExitBuildProgress) -> ExitBuildDecision)?) -> ExitBuildOptions {
        ExitBuildOptions(tolerance: 0.05, searchBudget: 2, seed: 3, epochs: 4, onProgress: handler)
    }

    func testProgressThenCancelKeepsPreviousExits() throws {
        let engine = try collectingEngine(600)

        // A complete build: monotone fractions, every stage named, 1.0 once at the end with .done.
        let recorder = Recorder()
        try engine.updateExits(Self.options { recorder.add($0); return .proceed })
        let reports = recorder.reports
        XCTAssertGreaterThan(reports.count, 6)
        for (a, b) in zip(reports, reports.dropFirst()) {
            XCTAssertLessThanOrEqual(a.fraction, b.fraction, "progress went back: \(a) then \(b)")
        }
        XCTAssertEqual(reports.first?.stage, .prepare)
        XCTAssertEqual(reports.first?.fraction, 0)
        XCTAssertEqual(reports.last?.stage, .done)
        XCTAssertEqual(reports.last?.fraction, 1)
        XCTAssertEqual(reports.filter { $0.fraction == 1 }.count, 1, "1.0 only for the final report")
        XCTAssertEqual(Set(reports.map(\.stage)), Set(ExitBuildProgress.Stage.allCases))
        XCTAssertTrue(reports.allSatisfy { !$0.message.isEmpty })
        let built = try XCTUnwrap(engine.exitConfiguration)

        // Cancel during the first full training: .cancelled soon after, the previous exits stay.
        let cancelling = Recorder()
        let start = DispatchTime.now().uptimeNanoseconds
        XCTAssertThrowsError(try engine.updateExits(Self.options { p in
            cancelling.add(p)
            return p.stage == .train ? .cancel : .proceed
        })) { error in
            guard case .cancelled(let message)? = error as? SelfXitError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("train"), message)
        }
        let end = DispatchTime.now().uptimeNanoseconds
        let cancelledAt = try XCTUnwrap(zip(cancelling.reports, cancelling.times).first { $0.0.stage == .train }?.1)
        XCTAssertLessThan(Double(end - cancelledAt) / 1e9, 1.0, "the build went on after the cancel")
        XCTAssertEqual(cancelling.reports.last?.stage, .train, "the handler was called after it cancelled")
        XCTAssertLessThan(Double(end - start) / 1e9, 120)
        let kept = try XCTUnwrap(engine.exitConfiguration)
        XCTAssertTrue(kept === built, "a cancelled build replaced the exits")

        // Cancel at the very first report: nothing changes either.
        XCTAssertThrowsError(try engine.updateExits(Self.options { _ in .cancel })) { error in
            guard case .cancelled? = error as? SelfXitError else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(try XCTUnwrap(engine.exitConfiguration) === built)
    }
}
