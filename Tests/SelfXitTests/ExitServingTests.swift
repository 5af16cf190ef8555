import Foundation
import XCTest
@testable import SelfXit
import SelfXitDatasets

/// Audited serving, the live guard and background builds (issue 16) on the bundled
/// Fashion-MNIST model with real exits.
final class ExitServingTests: XCTestCase {
    static let modelURL = Fixtures.repositoryRoot.appendingPathComponent("models/fmnist-resnet18-w16.onnx")
    static let data = try? FashionMNIST(split: "t10k")
    static let fastBuild = ExitBuildOptions(tolerance: 0.02, searchBudget: 2, seed: 3, epochs: 6)

    /// Exits built once from test frames 0..<1500 (with exits off), saved as a bundle.
    static let bundle: Result<URL, Error> = Result {
        guard let data else { throw SelfXitError.io("Fashion-MNIST is missing (tools/bootstrap.sh installs dataset-fashion-mnist)") }
        let engine = try Engine(contentsOf: modelURL, options: EngineOptions(threads: 2, seed: 1))
        engine.setExitsEnabled(false)
        for first in stride(from: 0, to: 1500, by: 100) { try engine.submit(Array(data.batch(first..<(first + 100))), batch: 100) { _ in } }
        try engine.updateExits(fastBuild)
        try engine.saveExits(to: bundleURL)
        return bundleURL
    }
    static let bundleURL = FileManager.default.temporaryDirectory.appendingPathComponent("selfxit-serving-\(getpid()).sxb")

    /// The shared bundle is a temporary file: removed once the suite's tests have run.
    override class func tearDown() {
        // By its path, so a run that never built the bundle does not build it here.
        try? FileManager.default.removeItem(at: bundleURL)
        super.tearDown()
    }

    /// A fresh engine with the shared exits in service, having collected `collect` frames first.
    private func engine(collect: Int = 0) throws -> (Engine, FashionMNIST) {
        let data = try XCTUnwrap(Self.data, "Fashion-MNIST is missing")
        let engine = try Engine(contentsOf: Self.modelURL, options: EngineOptions(threads: 2, seed: 1))
        engine.setExitsEnabled(false)
        for first in stride(from: 0, to: collect, by: 100) { try engine.submit(Array(data.batch(first..<(first + 100))), batch: 100) { _ in } }
        try engine.loadExits(from: try Self.bundle.get())
        engine.setExitsEnabled(true)
        XCTAssertGreaterThan(engine.activeExitCount, 0)
        return (engine, data)
    }

    /// Inverted contrast: pixel p → 255 − p, in the normalised units of the dataset.
    private func inverted(_ frames: ArraySlice<Float>) -> [Float] {
        let offset = (1 - 2 * FashionMNIST.mean) / FashionMNIST.std
        return frames.map { offset - $0 }
    }

    func testShiftedStreamTripsTheGuard() throws {
        let (engine, data) = try engine()
        let events = LockedBox<[ExitServingEvent]>([])
        try engine.configureServing(ExitServingOptions(auditRate: 1, seed: 5, guardEnabled: true, onEvent: { event in events.mutate { $0.append(event) } }))
        var answered = 0
        for first in stride(from: 2000, to: 3000, by: 50) {
            try engine.submit(inverted(data.batch(first..<(first + 50))), batch: 50) { _ in answered += 1 }
            if engine.servingStats().guardTrips > 0 { break }
        }
        let stats = engine.servingStats()
        print("guard on the shifted stream: \(stats.guardTrips) trips after \(stats.frames) frames; exits \(stats.exits)")
        XCTAssertGreaterThan(stats.guardTrips, 0, "inverted-contrast frames must trip the guard")
        XCTAssertTrue(stats.rebuildRequested)
        let tripped = stats.exits.filter { $0.state == "out_of_service" }
        XCTAssertEqual(tripped.count, stats.guardTrips)
        for exit in tripped { XCTAssertGreaterThan(exit.disagreementBound, exit.budget) }
        XCTAssertEqual(events.value.filter { $0.kind == .guardTripped }.map(\.exitIndex), tripped.map(\.exitIndex))
        XCTAssertTrue(engine.servingStatsJSON().contains("\"out_of_service\""))
        // A tripped exit answers nothing any more; every frame is still answered once.
        var seen = [Int](repeating: 0, count: 50)
        try engine.submit(inverted(data.batch(3000..<3050)), batch: 50) { result in
            seen[result.sampleIndex] += 1
            XCTAssertFalse(tripped.contains { $0.exitIndex == result.exitIndex }, "an exit out of service answered")
        }
        XCTAssertEqual(seen, Array(repeating: 1, count: 50))
        // New exits restart the guard: all in service again.
        try engine.loadExits(from: try Self.bundle.get())
        XCTAssertTrue(engine.servingStats().exits.allSatisfy { $0.state == "serving" && $0.audited == 0 })
    }

    func testBadInputLeavesTheEngineAsItWas() throws {
        let (engine, _) = try engine()
        let before = engine.servingOptions
        for rate in [-0.1, 1.5, .nan] {
            XCTAssertThrowsError(try engine.configureServing(ExitServingOptions(auditRate: rate))) { error in
                guard case SelfXitError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains("audit rate"), message)
            }
        }
        for delta in [0.0, 1.0, -1, .nan] {
            XCTAssertThrowsError(try engine.configureServing(ExitServingOptions(guardDelta: delta))) { error in
                guard case SelfXitError.invalidArgument = error else { return XCTFail("\(error)") }
            }
            XCTAssertThrowsError(try engine.startExitBuild(Self.fastBuild.with { $0.thresholdRule = .guaranteed(delta: delta) })) { error in
                guard case SelfXitError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains("delta"), message)
            }
        }
        XCTAssertEqual(engine.servingOptions.auditRate, before.auditRate)
        XCTAssertFalse(engine.exitBuildRunning)
        XCTAssertThrowsError(try engine.cancelExitBuild()) { error in
            guard case SelfXitError.wrongState = error else { return XCTFail("\(error)") }
        }
        XCTAssertGreaterThan(engine.activeExitCount, 0)
    }

    /// 4 threads submit while a background build runs, is cancelled, runs again and swaps: every
    /// frame answered exactly once, statistics add up, the second start while one runs is BUSY.
    func testCancelAndSwapWhileFourThreadsSubmit() throws {
        let (engine, data) = try engine(collect: 600)
        let original = try XCTUnwrap(engine.exitConfiguration)
        engine.resetStats()
        let stop = LockedBox(false)
        let submitted = LockedBox(0), answered = LockedBox(0), failures = LockedBox<[String]>([])
        let group = DispatchGroup()
        for thread in 0..<4 {
            DispatchQueue.global().async(group: group) {
                var first = 1500 + thread * 500
                while !stop.value {
                    let batch = 16
                    var seen = [Int](repeating: 0, count: batch)
                    do {
                        try engine.submit(Array(data.batch(first..<(first + batch))), batch: batch) { seen[$0.sampleIndex] += 1 }
                    } catch { failures.mutate { $0.append("\(error)") } }
                    if seen != Array(repeating: 1, count: batch) { failures.mutate { $0.append("answers per sample \(seen)") } }
                    submitted.mutate { $0 += batch }
                    answered.mutate { $0 += seen.reduce(0, +) }
                    first = first + batch >= 1500 + thread * 500 + 480 ? 1500 + thread * 500 : first + batch
                }
            }
        }
        let progress = LockedBox<[ExitBuildProgress]>([])
        let options = ExitBuildOptions(tolerance: 0.02, searchBudget: 1, seed: 9, minimumSamples: 200, epochs: 2,
                                       onProgress: { p in progress.mutate { $0.append(p) }; return .proceed })
        try engine.startExitBuild(options)
        XCTAssertThrowsError(try engine.startExitBuild(options)) { error in
            guard case SelfXitError.busy = error else { return XCTFail("\(error)") }
        }
        // Cancel once it is under way.
        let deadline = Date().addingTimeInterval(120)
        while progress.value.count < 3 && Date() < deadline { usleep(20_000) }
        try engine.cancelExitBuild()
        XCTAssertTrue(engine.waitForExitBuild(timeoutSeconds: 60))
        guard case SelfXitError.cancelled? = engine.lastExitBuildError else { return XCTFail("\(String(describing: engine.lastExitBuildError))") }
        XCTAssertTrue(engine.exitConfiguration === original, "a cancelled build changed the exits")
        // Again, to the end (selecting on measured costs): the new exits are swapped in.
        try engine.startExitBuild(options.with { $0.costModel = .measured })
        XCTAssertTrue(engine.waitForExitBuild(timeoutSeconds: 300))
        XCTAssertNil(engine.lastExitBuildError)
        XCTAssertFalse(engine.exitConfiguration === original, "the finished build did not swap its exits in")
        XCTAssertEqual(progress.value.last?.stage, .done)
        let report = try XCTUnwrap(engine.stats().lastBuild)
        XCTAssertEqual(report.costModel, "measured")
        XCTAssertGreaterThan(report.backboneSeconds ?? 0, 0)
        XCTAssertGreaterThan(report.testTimeRatio ?? 0, 0)
        for exit in report.exits where exit.architecture != nil {
            XCTAssertGreaterThan(exit.headSeconds ?? 0, 0, "head \(exit.candidateIndex) was not timed")
            XCTAssertGreaterThan(exit.segmentSeconds ?? 0, 0)
            XCTAssertLessThanOrEqual(exit.segmentSeconds ?? .infinity, report.backboneSeconds ?? 0)
        }
        usleep(200_000)
        stop.mutate { $0 = true }
        group.wait()
        XCTAssertEqual(failures.value, [])
        let stats = engine.stats(), serving = engine.servingStats()
        XCTAssertEqual(answered.value, submitted.value)
        XCTAssertEqual(stats.samples, submitted.value, "statistics count every answer once")
        XCTAssertEqual(stats.exitCounts.reduce(0, +) + stats.backboneCount, stats.samples)
        XCTAssertEqual(serving.buildsStarted, 2)
        XCTAssertEqual(serving.buildsCancelled, 1)
        XCTAssertEqual(serving.buildsSucceeded, 1)
        print("concurrency: \(submitted.value) frames answered during a cancelled and a completed background build")
    }

    /// With exits on and audits, the collection's class mix is the traffic's (within 2 points per
    /// class, against the backbone's answers on all frames); without audits it is biased.
    func testCollectionStaysRepresentative() throws {
        let frames = 6000, first = 2000
        var mixes: [Double: [Double]] = [:]
        var traffic = [Double](repeating: 0, count: 10)
        for rate in [0.0, 0.3] {
            let (engine, data) = try engine()
            engine.collector.removeAll()
            try engine.configureServing(ExitServingOptions(auditRate: rate, seed: 11, guardEnabled: false))
            var early = 0
            for start in stride(from: first, to: first + frames, by: 100) {
                try engine.submit(Array(data.batch(start..<(start + 100))), batch: 100) { if $0.exitIndex >= 0 { early += 1 } }
            }
            XCTAssertGreaterThan(early, frames / 5, "too few frames left early for the check to mean anything")
            if rate > 0 {
                for start in stride(from: first, to: first + frames, by: 100) {
                    let logits = try engine.infer(Array(data.batch(start..<(start + 100))), batch: 100)
                    for row in 0..<100 {
                        let slice = logits[(row * 10)..<((row + 1) * 10)]
                        traffic[slice.indices.max { slice[$0] < slice[$1] }! - row * 10] += 1.0 / Double(frames)
                    }
                }
            }
            let snapshot = engine.collector.snapshot()
            var mix = [Double](repeating: 0, count: 10)
            for row in 0..<snapshot.count {
                let slice = snapshot.teacher[(row * 10)..<((row + 1) * 10)]
                mix[slice.indices.max { slice[$0] < slice[$1] }! - row * 10] += 1.0 / Double(snapshot.count)
            }
            mixes[rate] = mix
            print("audit rate \(rate): \(snapshot.count) collected of \(frames), \(early) answered early")
        }
        let audited = try XCTUnwrap(mixes[0.3]), biased = try XCTUnwrap(mixes[0.0])
        let auditedGap = zip(audited, traffic).map { abs($0 - $1) }.max()!, biasedGap = zip(biased, traffic).map { abs($0 - $1) }.max()!
        print("class mix gap to traffic: \(auditedGap) with audits, \(biasedGap) without")
        XCTAssertLessThanOrEqual(auditedGap, 0.02, "collected class mix \(audited) vs traffic \(traffic)")
        XCTAssertGreaterThan(biasedGap, auditedGap)
    }
}

/// A value shared between test threads.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    func mutate(_ body: (inout Value) -> Void) { lock.lock(); body(&stored); lock.unlock() }
}
