import Foundation
import XCTest
@testable import SelfXit
import SelfXitDatasets

/// The whole method on the bundled Fashion-MNIST model: collect unlabeled traffic, build exits,
/// serve with batch shrinking (Algorithm 1), save/load bundles; bad builds keep old exits.
final class ExitEndToEndTests: XCTestCase {
    static let modelURL = Fixtures.repositoryRoot.appendingPathComponent("models/fmnist-resnet18-w16.onnx")
    static let data = try? FashionMNIST(split: "t10k")

    /// An engine that has seen `count` test images with exits off (so it collected them).
    private func collectingEngine(_ count: Int) throws -> (Engine, FashionMNIST) {
        let data = try XCTUnwrap(Self.data, "Fashion-MNIST is missing (tools/bootstrap.sh installs dataset-fashion-mnist)")
        let engine = try Engine(contentsOf: Self.modelURL, options: EngineOptions(threads: 2, seed: 1))
        engine.setExitsEnabled(false)
        for first in stride(from: 0, to: count, by: 100) {
            try engine.submit(Array(data.batch(first..<(first + 100))), batch: 100) { _ in }
        }
        return (engine, data)
    }

    private static let fastBuild = ExitBuildOptions(tolerance: 0.02, searchBudget: 2, seed: 3, epochs: 6)

    func testBuildServeAndShrink() throws {
        let (engine, data) = try collectingEngine(1500)
        XCTAssertEqual(engine.collectedSampleCount, 1500)
        let report = try engine.updateExits(Self.fastBuild)
        XCTAssertFalse(report.exits.isEmpty)
        XCTAssertEqual(report.trainSamples + report.validationSamples + report.testSamples, 1500)
        XCTAssertGreaterThan(report.testAgreement, 0.95, "held-out agreement with the backbone")
        let configuration = try XCTUnwrap(engine.exitConfiguration)
        XCTAssertFalse(configuration.active.isEmpty, "no exit was selected: \(report)")

        // Algorithm 1: every sample answered exactly once, with its own index; early answers
        // agree with the backbone as promised on validation.
        engine.setExitsEnabled(true)
        let batch = 64
        let input = Array(data.batch(2000..<(2000 + batch)))
        let reference = try engine.infer(input, batch: batch)
        var seen = [Int](repeating: 0, count: batch), early = 0, agree = 0
        try engine.submit(input, batch: batch) { result in
            seen[result.sampleIndex] += 1
            let logits = reference[(result.sampleIndex * 10)..<((result.sampleIndex + 1) * 10)]
            let backboneClass = logits.indices.max { logits[$0] < logits[$1] }! - result.sampleIndex * 10
            if result.exitIndex >= 0 { early += 1 }
            if result.classIndex == backboneClass { agree += 1 }
            if result.exitIndex < 0 { XCTAssertEqual(result.classIndex, backboneClass, "the backbone's own answer changed") }
            XCTAssertEqual(result.probabilities.count, 10)
            XCTAssertLessThan(result.flops, engine.backboneFLOPs * 2)
        }
        XCTAssertEqual(seen, Array(repeating: 1, count: batch))
        XCTAssertGreaterThan(early, 0, "no sample left early")
        XCTAssertGreaterThanOrEqual(Double(agree) / Double(batch), 0.9)

        // Every sample leaves at the first exit (threshold 0), or none does (threshold ∞).
        for threshold: Float in [0, .infinity] {
            let forced = configuration.active.map { ExitConfiguration.Exit(candidateIndex: $0.candidateIndex, candidate: $0.candidate, head: $0.head, threshold: threshold) }
            engine.install(ExitConfiguration(trained: configuration.trained, active: forced, report: configuration.report))
            var order: [Int] = [], exits = Set<Int>()
            try engine.submit(input, batch: batch) { result in
                order.append(result.sampleIndex)
                exits.insert(result.exitIndex)
            }
            XCTAssertEqual(order.sorted(), Array(0..<batch), "threshold \(threshold)")
            XCTAssertEqual(exits, threshold == 0 ? [forced[0].candidateIndex] : [-1], "threshold \(threshold)")
        }
        engine.install(configuration)

        // Statistics count every answer.
        let stats = engine.stats()
        XCTAssertEqual(stats.samples, 1500 + 3 * batch)
        XCTAssertEqual(stats.exitCounts.reduce(0, +) + stats.backboneCount, stats.samples)
        XCTAssertGreaterThan(stats.latencyP99, 0)
        XCTAssertTrue(engine.statsJSON().contains("\"last_build\""))

        // All-exits analysis reports every trained exit per sample.
        let analysis = try input.withUnsafeBufferPointer { try engine.analyze($0, batch: batch) }
        XCTAssertEqual(analysis.count, batch)
        XCTAssertTrue(analysis.allSatisfy { $0.exits.count == configuration.trained.count })

        // Bundles: round trip; damaged or foreign bundles are refused and the exits stay.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("selfxit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bundle = directory.appendingPathComponent("exits.sxx")
        try engine.saveExits(to: bundle)
        let fresh = try Engine(contentsOf: Self.modelURL, options: EngineOptions(threads: 2))
        try fresh.loadExits(from: bundle)
        var freshAnswers: [Int: Int] = [:], answers: [Int: Int] = [:]
        try fresh.submit(input, batch: batch) { freshAnswers[$0.sampleIndex] = $0.classIndex * 100 + $0.exitIndex }
        try engine.submit(input, batch: batch) { answers[$0.sampleIndex] = $0.classIndex * 100 + $0.exitIndex }
        XCTAssertEqual(freshAnswers, answers, "a loaded bundle must answer exactly as the engine that saved it")

        var damaged = try Data(contentsOf: bundle)
        damaged[damaged.count / 2] ^= 0x5A
        let damagedURL = directory.appendingPathComponent("damaged.sxx")
        try damaged.write(to: damagedURL)
        XCTAssertThrowsError(try fresh.loadExits(from: damagedURL)) { XCTAssertEqual(($0 as? SelfXitError).map { "\($0)" }?.contains("damaged"), true, "\($0)") }
        let foreign = try Engine(contentsOf: Fixtures.model("resnet18_w4.onnx"), options: EngineOptions(threads: 1))
        XCTAssertThrowsError(try foreign.loadExits(from: bundle)) { XCTAssertEqual(($0 as? SelfXitError).map { "\($0)" }?.contains("another model"), true, "\($0)") }
        XCTAssertEqual(fresh.activeExitCount, configuration.active.count, "a refused bundle must leave the exits as they were")
    }

    func testBadBuildsAreRefusedAndKeepTheServingExits() throws {
        let (engine, _) = try collectingEngine(300)
        XCTAssertThrowsError(try engine.updateExits(ExitBuildOptions(tolerance: 0))) { error in
            guard case SelfXitError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("tolerance"))
        }
        XCTAssertThrowsError(try engine.updateExits(ExitBuildOptions(tolerance: 1)))
        XCTAssertThrowsError(try engine.updateExits(ExitBuildOptions(tolerance: .nan)))
        XCTAssertThrowsError(try engine.updateExits(ExitBuildOptions(searchBudget: 0)))
        XCTAssertThrowsError(try engine.updateExits(ExitBuildOptions(memoryBudgetBytes: 0)))
        XCTAssertThrowsError(try engine.updateExits(ExitBuildOptions(minimumSamples: 1000))) { error in
            guard case SelfXitError.wrongState(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("300"), message)
        }
        XCTAssertNil(engine.exitConfiguration)
        // A good build, then a bad one: the good exits keep serving.
        try engine.updateExits(ExitBuildOptions(tolerance: 0.05, searchBudget: 1, seed: 1, minimumSamples: 100, epochs: 3))
        let before = try XCTUnwrap(engine.exitConfiguration)
        XCTAssertThrowsError(try engine.updateExits(ExitBuildOptions(tolerance: -0.5)))
        XCTAssertTrue(engine.exitConfiguration === before)
        var count = 0
        try engine.submit([Float](repeating: 0.1, count: 3 * engine.inputCount), batch: 3) { _ in count += 1 }
        XCTAssertEqual(count, 3)
    }
}
