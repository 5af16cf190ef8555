import Foundation
import XCTest
@testable import SelfXit

/// Exit bundles are files anyone can write: a forged bundle (fields edited, checksum
/// recomputed) must be refused with `invalidData` naming the field, never trap, and leave the
/// engine's exits as they were. Paths that are not regular files are refused without blocking.
final class HardeningBundleTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("selfxit-bundle-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// An engine on the small ResNet fixture with two hand-made exits (GAP + dense heads with
    /// seeded weights) installed, the first active: no build needed, seconds to make.
    private func engineWithExits() throws -> Engine {
        let engine = try Engine(contentsOf: Fixtures.model("resnet18_w4.onnx"), options: EngineOptions(threads: 2))
        XCTAssertGreaterThanOrEqual(engine.candidates.count, 2)
        var random = SeededRandom(seed: 7)
        var exits: [ExitConfiguration.Exit] = [], reports: [ExitBuildReport.Exit] = []
        for (position, index) in [0, 1].enumerated() {
            let candidate = engine.candidates[index]
            let architecture = ExitHeadArchitecture(hidden: [8])
            let plan = try ExitHeadPlan(architecture, inputShape: candidate.shape, classes: engine.outputCount)
            let head = try ExitHead(architecture: architecture, inputShape: candidate.shape, classes: engine.outputCount,
                                    parameters: (0..<plan.parameterCount).map { _ in Float(random.uniform() - 0.5) },
                                    inputMean: [Float](repeating: 0.1, count: plan.pooledC),
                                    inputInvStd: [Float](repeating: 2, count: plan.pooledC), temperature: 1.5)
            let threshold: Float = position == 0 ? 0.2 : .infinity
            exits.append(.init(candidateIndex: index, candidate: candidate, head: head, threshold: threshold))
            reports.append(.init(candidateIndex: index, tensor: engine.plan.graph.values[candidate.value].name, shape: candidate.shape,
                                 architecture: architecture.description, headFLOPs: head.flops, headBytes: head.byteCount,
                                 savedFLOPs: candidate.flopsAfter, threshold: threshold, temperature: 1.5, active: position == 0,
                                 validationAgreement: 0.5, testHitRate: 0.25, testAgreement: 0.75))
        }
        let report = ExitBuildReport(exits: reports, samples: 100, trainSamples: 50, validationSamples: 20, testSamples: 30,
                                     testAgreement: 0.9, testFLOPsRatio: 0.6, seconds: 1.5)
        engine.install(ExitConfiguration(trained: exits, active: [exits[0]], report: report))
        return engine
    }

    /// (sample index, exit index, class) of every answer to a fixed random batch.
    private func answers(_ engine: Engine) throws -> [[Int]] {
        var random = SeededRandom(seed: 3)
        let batch = 16
        let input = (0..<(batch * engine.inputCount)).map { _ in Float(random.uniform() * 2 - 1) }
        var result: [[Int]] = []
        try engine.submit(input, batch: batch) { result.append([$0.sampleIndex, $0.exitIndex, $0.classIndex]) }
        return result.sorted { $0[0] < $1[0] }
    }

    /// A bundle file around `json`: magic, version, fingerprint, length, payload, checksum —
    /// what a forger with the format description writes.
    private func bundle(json: [UInt8], fingerprint: UInt64, version: UInt32 = Engine.bundleVersion, length: UInt64? = nil) -> Data {
        var bytes = Engine.bundleMagic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        append(version)
        append(fingerprint)
        append(length ?? UInt64(json.count))
        bytes.append(contentsOf: json)
        append(fnv1a64(json))
        return Data(bytes)
    }

    /// The payload JSON of a saved bundle.
    private func payload(of url: URL) throws -> [UInt8] {
        let bytes = [UInt8](try Data(contentsOf: url))
        return Array(bytes[28..<(bytes.count - 8)])
    }

    /// Edits the parsed payload at a key path ("exits", 0, "head", "temperature"); `nil`
    /// removes the key.
    private func edited(_ object: Any, _ path: ArraySlice<Any>, _ value: Any?) -> Any {
        guard let key = path.first else { return value as Any }
        if let index = key as? Int, var array = object as? [Any] {
            array[index] = edited(array[index], path.dropFirst(), value)
            return array
        }
        var dictionary = object as! [String: Any]
        let name = key as! String
        if path.count == 1, value == nil {
            dictionary.removeValue(forKey: name)
        } else {
            dictionary[name] = edited(dictionary[name] as Any, path.dropFirst(), value)
        }
        return dictionary
    }

    private func expectRefused(_ engine: Engine, _ data: Data, naming expected: String, _ label: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let url = directory.appendingPathComponent("forged.sxx")
        try data.write(to: url)
        let before = engine.exitConfiguration
        XCTAssertThrowsError(try engine.loadExits(from: url), label, file: file, line: line) { error in
            guard case SelfXitError.invalidData(let message) = error else {
                return XCTFail("\(label): expected invalidData, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(message.contains(expected), "\(label): message should name '\(expected)': \(message)", file: file, line: line)
        }
        XCTAssertTrue(engine.exitConfiguration === before, "\(label): a refused bundle must leave the exits as they were", file: file, line: line)
    }

    func testForgedBundlesAreRefusedNamingTheFieldAndKeepTheExits() throws {
        let engine = try engineWithExits()
        let reference = try answers(engine)
        XCTAssertTrue(reference.contains { $0[1] >= 0 } || reference.allSatisfy { $0[1] == -1 })
        let saved = directory.appendingPathComponent("exits.sxx")
        try engine.saveExits(to: saved)

        // The untouched bundle, re-wrapped by the forger's code, loads: the test's framing is right.
        let original = try payload(of: saved)
        let fresh = try Engine(contentsOf: Fixtures.model("resnet18_w4.onnx"), options: EngineOptions(threads: 2))
        let rewrapped = directory.appendingPathComponent("rewrapped.sxx")
        try bundle(json: original, fingerprint: engine.modelFingerprint).write(to: rewrapped)
        try fresh.loadExits(from: rewrapped)
        XCTAssertEqual(try answers(fresh), reference, "a loaded bundle answers as the engine that saved it")

        let root = try JSONSerialization.jsonObject(with: Data(original))
        let candidates = engine.candidates.count
        let cases: [(path: [Any], value: Any?, names: String)] = [
            // indices
            (["exits", 0, "candidateIndex"], candidates + 5, "exits[0].candidateIndex"),
            (["exits", 0, "candidateIndex"], -1, "exits[0].candidateIndex"),
            (["exits", 0, "candidateIndex"], Int64.max, "exits[0].candidateIndex"),
            (["exits", 1, "candidateIndex"], 0, "exits[1].candidateIndex"),
            (["exits", 0, "candidateIndex"], "zero", "exits[0].candidateIndex"),
            (["exits", 0, "tensor"], "not-a-tensor", "exits[0].tensor"),
            (["exits", 0, "tensor"], String(repeating: "x", count: 1 << 20), "exits[0].tensor"),
            // thresholds
            (["exits", 0, "threshold"], "nan", "exits[0].threshold"),
            (["exits", 0, "threshold"], "-inf", "exits[0].threshold"),
            (["exits", 0, "threshold"], -0.5, "exits[0].threshold"),
            (["exits", 0, "threshold"], 7, "exits[0].threshold"),
            (["exits", 0, "threshold"], 1e300, "exits[0].threshold"),
            // shapes and counts
            (["exits", 0, "head", "inputShape"], [Int64.max, 1, 1], "exits[0].head.inputShape"),
            (["exits", 0, "head", "inputShape"], [Int64.max, Int64.max, Int64.max], "exits[0].head.inputShape"),
            (["exits", 0, "head", "inputShape"], [-3, 8, 8], "exits[0].head.inputShape"),
            (["exits", 0, "head", "inputShape"], [4], "exits[0].head.inputShape"),
            (["exits", 0, "head", "classes"], 3, "exits[0].head.classes"),
            (["exits", 0, "head", "classes"], Int64.max, "exits[0].head.classes"),
            (["exits", 0, "head", "classes"], -10, "exits[0].head.classes"),
            // temperatures
            (["exits", 0, "head", "temperature"], 0, "exits[0].head.temperature"),
            (["exits", 0, "head", "temperature"], -1, "exits[0].head.temperature"),
            (["exits", 0, "head", "temperature"], "nan", "exits[0].head.temperature"),
            (["exits", 0, "head", "temperature"], "inf", "exits[0].head.temperature"),
            (["exits", 0, "head", "temperature"], 1e30, "exits[0].head.temperature"),
            (["exits", 0, "head", "temperature"], 1e300, "temperature"),
            // architecture (does not fit, absurd sizes, wrong types)
            (["exits", 0, "head", "architecture", "inputPool"], 0, "exits[0].head.architecture"),
            (["exits", 0, "head", "architecture", "inputPool"], Int64.max, "exits[0].head.architecture"),
            (["exits", 0, "head", "architecture", "hidden"], [Int64.max], "exits[0].head.architecture"),
            (["exits", 0, "head", "architecture", "hidden"], [-1], "exits[0].head.architecture"),
            (["exits", 0, "head", "architecture", "hidden"], [8, 8, 8], "exits[0].head.architecture"),
            (["exits", 0, "head", "architecture", "convs"], [["kernel": 5, "stride": 1, "channels": 4]], "exits[0].head.architecture"),
            (["exits", 0, "head", "architecture", "convs"], [["kernel": 3, "stride": 1, "channels": Int64.max]], "exits[0].head.architecture"),
            (["exits", 0, "head", "architecture", "convs"], [["kernel": 3, "stride": Int64.min, "channels": 4]], "exits[0].head.architecture"),
            (["exits", 0, "head", "architecture", "flatten"], "yes", "flatten"),
            // weights: element counts, non-finite and absurd values
            (["exits", 0, "head", "parameters"], [1, 2, 3], "exits[0].head.parameters"),
            (["exits", 0, "head", "parameters"], [Any](), "exits[0].head.parameters"),
            (["exits", 0, "head", "inputMean"], [0.5], "exits[0].head.inputMean"),
            (["exits", 0, "head", "inputInvStd"], [Any](), "exits[0].head.inputInvStd"),
            (["exits", 0, "head", "parameters"], "many", "parameters"),
            // whole structure
            (["exits"], "none", "exits"),
            (["exits", 0, "head"], nil, "exits[0].head"),
            (["report"], nil, "report"),
            // the build report
            (["report", "samples"], -5, "report.samples"),
            (["report", "trainSamples"], Int64.max, "report"),
            (["report", "testAgreement"], "nan", "report.testAgreement"),
            (["report", "testFLOPsRatio"], "inf", "report.testFLOPsRatio"),
            (["report", "seconds"], -1, "report.seconds"),
            (["report", "exits"], [Any](), "report.exits"),
            (["report", "exits", 0, "candidateIndex"], 1, "report.exits[0]"),
            (["report", "exits", 0, "testHitRate"], "nan", "report.exits[0].testHitRate"),
            (["report", "exits", 0, "validationAgreement"], 2, "report.exits[0].validationAgreement"),
            (["report", "exits", 0, "headFLOPs"], -1, "report.exits[0].headFLOPs"),
            (["report", "exits", 0, "shape"], [Int64.max], "report.exits[0].shape"),
            (["report", "exits", 0, "temperature"], "nan", "report.exits[0].temperature"),
        ]
        for forgery in cases {
            let object = edited(root, ArraySlice(forgery.path), forgery.value)
            let json = [UInt8](try JSONSerialization.data(withJSONObject: object))
            try expectRefused(engine, bundle(json: json, fingerprint: engine.modelFingerprint), naming: forgery.names,
                              "\(forgery.path) = \(String(describing: forgery.value).prefix(60))")
        }

        // Element values inside the weight arrays.
        let head = (((root as! [String: Any])["exits"] as! [Any])[0] as! [String: Any])["head"] as! [String: Any]
        for (key, bad) in [("parameters", "nan"), ("parameters", "inf"), ("inputMean", "-inf"), ("inputInvStd", "nan")] as [(String, Any)] {
            var values = head[key] as! [Any]
            values[values.count - 1] = bad
            let json = [UInt8](try JSONSerialization.data(withJSONObject: edited(root, ["exits", 0, "head", key], values)))
            try expectRefused(engine, bundle(json: json, fingerprint: engine.modelFingerprint),
                              naming: "exits[0].head.\(key)[\(values.count - 1)]", "\(key)[last] = \(bad)")
        }
        for (key, bad) in [("parameters", 1e20), ("inputInvStd", 0), ("inputInvStd", -2)] as [(String, Double)] {
            var values = head[key] as! [Any]
            values[0] = bad
            let json = [UInt8](try JSONSerialization.data(withJSONObject: edited(root, ["exits", 0, "head", key], values)))
            try expectRefused(engine, bundle(json: json, fingerprint: engine.modelFingerprint),
                              naming: "exits[0].head.\(key)[0]", "\(key)[0] = \(bad)")
        }
        // More exits than the model has candidates.
        let exits = (root as! [String: Any])["exits"] as! [Any]
        let many = [UInt8](try JSONSerialization.data(withJSONObject: edited(root, ["exits"], Array(repeating: exits[0], count: candidates + 1))))
        try expectRefused(engine, bundle(json: many, fingerprint: engine.modelFingerprint), naming: "exits", "too many exits")

        // Raw text forgeries: deep nesting, not an object, not UTF-8, not JSON.
        let deep = Array("{\"exits\":".utf8) + [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
            + [UInt8](repeating: UInt8(ascii: "]"), count: 100_000) + Array(",\"report\":{}}".utf8)
        try expectRefused(engine, bundle(json: deep, fingerprint: engine.modelFingerprint), naming: "exit bundle", "100 000 nested arrays")
        try expectRefused(engine, bundle(json: Array("[1, 2]".utf8), fingerprint: engine.modelFingerprint), naming: "exit bundle", "a JSON array")
        try expectRefused(engine, bundle(json: [0xFF, 0xFE, 0x00, 0x7B], fingerprint: engine.modelFingerprint), naming: "exit bundle", "not UTF-8")
        try expectRefused(engine, bundle(json: [], fingerprint: engine.modelFingerprint), naming: "exit bundle", "empty payload")

        // The frame: magic, version, fingerprint, length field, checksum.
        try expectRefused(engine, bundle(json: original, fingerprint: engine.modelFingerprint, version: 99), naming: "format 99", "version 99")
        try expectRefused(engine, bundle(json: original, fingerprint: engine.modelFingerprint ^ 1), naming: "another model", "fingerprint")
        try expectRefused(engine, bundle(json: original, fingerprint: engine.modelFingerprint, length: .max), naming: "truncated or padded", "length 2^64-1")
        var damaged = bundle(json: original, fingerprint: engine.modelFingerprint)
        damaged[damaged.count - 1] ^= 1
        try expectRefused(engine, damaged, naming: "checksum", "checksum")
        var magic = bundle(json: original, fingerprint: engine.modelFingerprint)
        magic[0] = UInt8(ascii: "X")
        try expectRefused(engine, magic, naming: "not a SelfXit exit bundle", "magic")
        try expectRefused(engine, Data([1, 2, 3]), naming: "not a SelfXit exit bundle", "3 bytes")

        XCTAssertEqual(try answers(engine), reference, "after every refused bundle the engine answers as before")
        // And the saved bundle still loads into it.
        try engine.loadExits(from: saved)
        XCTAssertEqual(try answers(engine), reference)
    }

    /// Every leaf and container of a parsed JSON value, as key paths.
    private func paths(_ object: Any, _ prefix: [Any] = []) -> [[Any]] {
        var result: [[Any]] = [prefix]
        if let dictionary = object as? [String: Any] {
            for key in dictionary.keys.sorted() { result += paths(dictionary[key]!, prefix + [key]) }
        } else if let array = object as? [Any] {
            // A few elements of long arrays (parameters) are enough.
            for index in Set([0, 1, array.count / 2, array.count - 1]).sorted() where array.indices.contains(index) {
                result += paths(array[index], prefix + [index])
            }
        }
        return result
    }

    /// The testers' campaign, seeded: 1 500 bundles with one field replaced by a hostile value
    /// (and the checksum recomputed). Each load either succeeds (the value happened to be
    /// valid) and the engine keeps answering, or is refused with invalidData — never a trap.
    func testRandomForgeriesNeverTrap() throws {
        let engine = try engineWithExits()
        let saved = directory.appendingPathComponent("exits.sxx")
        try engine.saveExits(to: saved)
        let root = try JSONSerialization.jsonObject(with: Data(try payload(of: saved)))
        let targets = paths(root).filter { !$0.isEmpty }
        let hostile: [Any] = [Int64.max, Int64.min, -1, 0, 1, 2, 7, 4097, 65_536, 1 << 40, 0.5, -0.5, 1e-40, 1e38, 1e300, -1e300,
                              "nan", "inf", "-inf", "", "x", true, false, NSNull(), [Any](), [0], [Int64.max, 1, 1], [-1, -1, -1],
                              [String: Any](), ["kernel": 3], String(repeating: "[", count: 10)]
        var random = SeededRandom(seed: 2026)
        var accepted = 0, refused = 0
        for round in 0..<1500 {
            let path = targets[random.below(targets.count)]
            let value = hostile[random.below(hostile.count)]
            let object = edited(root, ArraySlice(path), random.below(12) == 0 ? nil : value)
            let json = [UInt8](try JSONSerialization.data(withJSONObject: object))
            let url = directory.appendingPathComponent("random.sxx")
            try bundle(json: json, fingerprint: engine.modelFingerprint).write(to: url)
            do {
                try engine.loadExits(from: url)
                accepted += 1
                XCTAssertEqual(try answers(engine).count, 16, "round \(round): \(path) = \(value)")
            } catch SelfXitError.invalidData {
                refused += 1
            } catch {
                XCTFail("round \(round): \(path) = \(value): expected invalidData, got \(error)")
            }
        }
        XCTAssertGreaterThan(refused, 1000, "accepted \(accepted)")
        // The untouched bundle still loads after all that.
        try engine.loadExits(from: saved)
    }

    func testNonRegularPathsAreRefusedWithoutBlocking() throws {
        let engine = try engineWithExits()
        let reference = try answers(engine)
        let fifo = directory.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let cases: [(String, String)] = [(fifo, "a FIFO"), ("/dev/null", "a character device"), (directory.path, "a directory")]
        for (path, kind) in cases {
            // A plain open of a FIFO with no writer would block here forever.
            XCTAssertThrowsError(try engine.loadExits(from: URL(fileURLWithPath: path))) { error in
                guard case SelfXitError.io(let message) = error else { return XCTFail("\(path): \(error)") }
                XCTAssertTrue(message.contains(kind), message)
            }
            XCTAssertThrowsError(try Engine(contentsOf: URL(fileURLWithPath: path))) { error in
                guard case SelfXitError.io(let message) = error else { return XCTFail("\(path): \(error)") }
                XCTAssertTrue(message.contains(kind) && message.contains("model"), message)
            }
            XCTAssertThrowsError(try engine.saveExits(to: URL(fileURLWithPath: path))) { error in
                guard case SelfXitError.io(let message) = error else { return XCTFail("\(path): \(error)") }
                XCTAssertTrue(message.contains(kind), message)
            }
        }
        var info = stat()
        XCTAssertEqual(lstat(fifo, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO, "the FIFO is still a FIFO")

        // A symbolic link is refused and left as it is, and so is its target.
        let target = directory.appendingPathComponent("target.txt")
        try Data("keep me".utf8).write(to: target)
        let link = directory.appendingPathComponent("link.sxx")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        XCTAssertThrowsError(try engine.saveExits(to: link)) { error in
            guard case SelfXitError.io(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("symbolic link"), message)
        }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), target.path)
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "keep me")
        // A dangling link too: nothing is created at its target.
        let dangling = directory.appendingPathComponent("dangling.sxx")
        try FileManager.default.createSymbolicLink(atPath: dangling.path, withDestinationPath: directory.appendingPathComponent("nowhere").path)
        XCTAssertThrowsError(try engine.saveExits(to: dangling))
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("nowhere").path))

        // A regular file is replaced; no temporary file is left beside it; reading follows links.
        let regular = directory.appendingPathComponent("regular.sxx")
        try Data("old".utf8).write(to: regular)
        try engine.saveExits(to: regular)
        let saved = try Data(contentsOf: regular)
        XCTAssertEqual(Array(saved.prefix(8)), Engine.bundleMagic)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        XCTAssertFalse(names.contains { $0.contains(".tmp-") }, "\(names)")
        let readLink = directory.appendingPathComponent("read-link.sxx")
        try FileManager.default.createSymbolicLink(at: readLink, withDestinationURL: regular)
        try engine.loadExits(from: readLink)
        // Missing directory: an I/O error naming the path.
        XCTAssertThrowsError(try engine.saveExits(to: directory.appendingPathComponent("no/such/dir.sxx"))) { error in
            guard case SelfXitError.io(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("no/such/dir.sxx"), message)
        }
        XCTAssertEqual(try answers(engine), reference)
    }

    /// Valid ONNX the reader does not handle (external tensor data) is reported as unsupported
    /// (SX_ERR_UNSUPPORTED_OP at the C boundary), not flattened into a damaged model.
    func testUnsupportedModelFeatureIsNotABadModel() {
        let external = makeModel(initializers: [tensorProto("EXT", .float, dims: [2]) { w in
            w.message(13) { kv in kv.string(1, "location"); kv.string(2, "weights.bin") }
            w.int(14, 1)
        }])
        XCTAssertThrowsError(try Engine(modelBytes: external, options: EngineOptions(threads: 1))) { error in
            guard case SelfXitError.unsupportedModel(let message) = error else { return XCTFail("expected unsupportedModel, got \(error)") }
            XCTAssertTrue(message.contains("tensor 'EXT'") && message.contains("external"), message)
        }
    }
}
