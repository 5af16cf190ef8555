import Foundation
import XCTest
@testable import SelfXit
import SelfXitDatasets

/// Exit bundles keep the safety rule of watched classes (issue 12): format 2 records the
/// teacher, the watched classes and every guarded exit's guard (safe threshold, warn
/// thresholds), so a host that saves its exits and reloads them — into an engine created with
/// or without the watched classes — warns and refuses exactly as before. Format 1 bundles
/// still load, with what they lack stated; one built with watched classes is refused by an
/// engine that watches none.
final class WatchedBundleTests: XCTestCase {
    static let modelURL = Fixtures.repositoryRoot.appendingPathComponent("models/fmnist-resnet18-w16.onnx")
    static let data = try? FashionMNIST(split: "t10k")
    /// Class 0 (T-shirt/top) watched: a miss budget loose enough for ~30 validation frames of
    /// it to certify some exits, and a warning budget so warning exits are chosen on their own.
    static let watched = [WatchedClass(classIndex: 0, missBudget: 0.2, warningBudget: 0.1)]
    static let build = ExitBuildOptions(tolerance: 0.02, searchBudget: 2, seed: 3, epochs: 6)
    static let served = 1500..<2500

    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("selfxit-watched-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func engine(watched: [WatchedClass] = [], teacher: Teacher = .classifier) throws -> Engine {
        var options = EngineOptions(threads: 2, seed: 1)
        options.watched = watched
        options.teacher = teacher
        return try Engine(contentsOf: Self.modelURL, options: options)
    }

    /// Every callback of the served frames, in order: (sample, kind, exit, class).
    private func results(_ engine: Engine, _ data: FashionMNIST) throws -> [String] {
        engine.setExitsEnabled(true)
        var out: [String] = []
        for first in stride(from: Self.served.lowerBound, to: Self.served.upperBound, by: 100) {
            try engine.submit(Array(data.batch(first..<(first + 100))), batch: 100) { r in
                out.append("\(first + r.sampleIndex) \(r.kind) \(r.exitIndex) \(r.classIndex)")
            }
        }
        return out
    }

    private func wrap(_ json: [UInt8], version: UInt32, fingerprint: UInt64) -> Data {
        var bytes = Engine.bundleMagic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        append(version)
        append(fingerprint)
        append(UInt64(json.count))
        bytes.append(contentsOf: json)
        append(fnv1a64(json))
        return Data(bytes)
    }

    private func expectRefused(_ engine: Engine, _ data: Data, naming expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = directory.appendingPathComponent("refused.sxe")
        try data.write(to: url)
        let before = engine.exitConfiguration
        XCTAssertThrowsError(try engine.loadExits(from: url), file: file, line: line) { error in
            guard case SelfXitError.invalidData(let message) = error else { return XCTFail("expected invalidData, got \(error)", file: file, line: line) }
            XCTAssertTrue(message.contains(expected), "message should name '\(expected)': \(message)", file: file, line: line)
        }
        XCTAssertTrue(engine.exitConfiguration === before, "a refused bundle must leave the exits as they were", file: file, line: line)
    }

    func testSavedExitsKeepTheirWatchedClassesGuardsAndWarnings() throws {
        let data = try XCTUnwrap(Self.data, "Fashion-MNIST is missing (tools/bootstrap.sh installs dataset-fashion-mnist)")
        let built = try engine(watched: Self.watched)
        built.setExitsEnabled(false)
        for first in stride(from: 0, to: 1500, by: 100) { try built.submit(Array(data.batch(first..<(first + 100))), batch: 100) { _ in } }
        let report = try built.updateExits(Self.build)
        let guards = try XCTUnwrap(report.watch)
        XCTAssertFalse(guards.isEmpty)
        let reference = try results(built, data)
        XCTAssertTrue(reference.contains { $0.contains(" warning ") }, "the build warns of class 0 on some frames")
        XCTAssertTrue(reference.contains { $0.contains(" confirmation ") })
        let url = directory.appendingPathComponent("watched.sxe")
        try built.saveExits(to: url)
        let saved = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(saved[8..<12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }, 2, "bundle format 2")

        // A fresh engine that watches nothing takes the bundle's watched classes and guards.
        let bare = try engine()
        try bare.loadExits(from: url)
        XCTAssertEqual(bare.watchedClasses, Self.watched)
        XCTAssertEqual(bare.exitConfiguration?.report.watch, guards)
        XCTAssertEqual(bare.exitConfiguration?.report.bundleFormat, 2)
        XCTAssertEqual(try results(bare, data), reference, "same warnings, confirmations, early answers and refusals as before saving")
        XCTAssertEqual(bare.stats().lastBuild?.bundleNote?.contains("taken from the exit bundle"), true)
        // Saved again, the bundle still carries them.
        let again = directory.appendingPathComponent("again.sxe")
        try bare.saveExits(to: again)
        let third = try engine()
        try third.loadExits(from: again)
        XCTAssertEqual(try results(third, data), reference)

        // A fresh engine with the same watched classes: the same.
        let same = try engine(watched: Self.watched)
        try same.loadExits(from: url)
        XCTAssertEqual(try results(same, data), reference)
        XCTAssertNil(same.exitConfiguration?.report.bundleNote)

        // What the bug did: the same exits without their guards, in an engine that watches
        // nothing, answer differently (no warnings; "not class 0" answers the rule refused).
        let configuration = try XCTUnwrap(built.exitConfiguration)
        let unguarded = try engine()
        unguarded.install(ExitConfiguration(trained: configuration.trained, active: configuration.active, report: configuration.report))
        let withoutRule = try results(unguarded, data)
        XCTAssertNotEqual(withoutRule, reference)
        XCTAssertFalse(withoutRule.contains { $0.contains(" warning ") })

        // Other watched classes or another teacher: refused, naming what differs.
        let stricter = try engine(watched: [WatchedClass(classIndex: 0, missBudget: 0.01, warningBudget: 0.1)])
        try expectRefused(stricter, Data(saved), naming: "watched: the exits' guards were chosen for class 0 (miss budget 0.2")
        let host = try engine(teacher: .hostLabels(classes: 10))
        try expectRefused(host, Data(saved), naming: "teacher: the exits learned from classifier")

        // Forged guards and watched classes: refused naming the field.
        let json = Array(saved[28..<(saved.count - 8)])
        let object = try JSONSerialization.jsonObject(with: Data(json)) as! [String: Any]
        func forged(_ edit: (inout [String: Any]) -> Void) throws -> Data {
            var copy = object
            edit(&copy)
            return wrap([UInt8](try JSONSerialization.data(withJSONObject: copy)), version: 2, fingerprint: bare.modelFingerprint)
        }
        func editGuard(_ key: String, _ value: Any) -> (inout [String: Any]) -> Void {
            { payload in
                var list = payload["guards"] as! [[String: Any]]
                list[0][key] = value
                payload["guards"] = list
            }
        }
        let fresh = try engine()
        try expectRefused(fresh, forged(editGuard("safeThreshold", 5)), naming: "guards[0].safeThreshold is 5")
        try expectRefused(fresh, forged(editGuard("warnThresholds", [0.5, 0.5])), naming: "guards[0].warnThresholds has 2 values")
        try expectRefused(fresh, forged(editGuard("candidateIndex", 99)), naming: "guards[0].candidateIndex is 99")
        try expectRefused(fresh, forged(editGuard("hiddenRate", [2])), naming: "guards[0].hiddenRate[0] is 2")
        try expectRefused(fresh, forged { $0["watched"] = [["classIndex": 12, "missBudget": 0.2]] },
                          naming: "watched: watched class 12 (entry 0) is out of range")
        try expectRefused(fresh, forged { $0["watched"] = [["classIndex": 0, "missBudget": 1.5]] },
                          naming: "miss budget of watched class 0 must lie in (0, 1)")
        try expectRefused(fresh, forged { $0["watched"] = [] as [Any] }, naming: "guards for no watched class")
        try expectRefused(fresh, forged { $0.removeValue(forKey: "teacher") }, naming: "teacher: missing field")
        try expectRefused(fresh, forged { payload in
            var teacher = payload["teacher"] as! [String: Any]
            teacher["output"] = "elsewhere"
            payload["teacher"] = teacher
        }, naming: "teacher: the exits learned from classifier('elsewhere'")
        try expectRefused(fresh, forged { payload in
            // An active exit's guard removed.
            let active = Set((payload["exits"] as! [[String: Any]]).filter { $0["active"] as! Bool }.map { $0["candidateIndex"] as! Int })
            payload["guards"] = (payload["guards"] as! [[String: Any]]).filter { !active.contains($0["candidateIndex"] as! Int) }
        }, naming: "has no guard")
        XCTAssertNil(fresh.exitConfiguration, "every forgery refused, nothing installed")

        // Format 1 (the same exits without teacher, watched classes and guards).
        var v1 = object
        for key in ["teacher", "watched", "guards"] { v1.removeValue(forKey: key) }
        let v1Data = wrap([UInt8](try JSONSerialization.data(withJSONObject: v1)), version: 1, fingerprint: bare.modelFingerprint)
        try expectRefused(try engine(), v1Data, naming: "format-1 bundle was built with watched classes but does not record them")
        let watching = try engine(watched: Self.watched)
        let v1URL = directory.appendingPathComponent("v1.sxe")
        try v1Data.write(to: v1URL)
        try watching.loadExits(from: v1URL)
        XCTAssertEqual(watching.exitConfiguration?.report.bundleFormat, 1)
        XCTAssertNil(watching.exitConfiguration?.report.watch, "a format-1 bundle's guards are not in force")
        XCTAssertEqual(watching.exitConfiguration?.report.bundleNote?.contains("format-1 exit bundle: it records no teacher"), true)
        let active = Set(configuration.active.map(\.candidateIndex))
        for line in try results(watching, data) {
            let parts = line.split(separator: " ")
            // No early "not watched" answer without a guard; warnings only from active exits.
            if parts[1] == "answer" { XCTAssertEqual(parts[2], "-1", line) }
            if parts[1] == "warning" { XCTAssertTrue(active.contains(Int(parts[2])!), line) }
        }
        // Re-saved from there (format 2), the options' watched classes are kept without guards:
        // an engine that watches nothing still refuses "not watched" answers.
        let resaved = directory.appendingPathComponent("resaved.sxe")
        try watching.saveExits(to: resaved)
        let adopting = try engine()
        try adopting.loadExits(from: resaved)
        XCTAssertEqual(adopting.watchedClasses, Self.watched)
        XCTAssertEqual(try results(adopting, data), try results(watching, data))
    }

    /// A format-1 bundle of a plain classifier (the fuzzer's old seed) still loads and serves.
    func testFormatOneBundleStillLoads() throws {
        let url = Fixtures.repositoryRoot.appendingPathComponent("Tests/Fuzz/seeds/bundle/resnet18_w4_v1.sxe")
        let bytes = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(bytes[8..<12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }, 1)
        let engine = try Engine(contentsOf: Fixtures.model("resnet18_w4.onnx"), options: EngineOptions(threads: 2))
        try engine.loadExits(from: url)
        XCTAssertEqual(engine.exitConfiguration?.report.bundleFormat, 1)
        XCTAssertEqual(engine.exitConfiguration?.report.bundleNote?.contains("format-1 exit bundle"), true)
        XCTAssertGreaterThan(engine.exitConfiguration?.trained.count ?? 0, 0)
        var answers = 0
        try engine.submit([Float](repeating: 0.1, count: 2 * engine.inputCount), batch: 2) { if $0.isFinal { answers += 1 } }
        XCTAssertEqual(answers, 2)
    }
}
