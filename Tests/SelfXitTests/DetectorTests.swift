import Foundation
import XCTest
@testable import SelfXit

/// Issue 13: models that take one image without a batch axis and whose later part has shapes
/// known only at run time — the detection operators one by one (tools/make_detection_op_fixtures.py)
/// and a small torchvision FasterRCNN (tools/make_tiny_detector.py), against ONNX Runtime.
final class DetectorTests: XCTestCase {
    static let opDirectory = Fixtures.directory.appendingPathComponent("detectionops")
    static let detectorDirectory = Fixtures.directory.appendingPathComponent("detector")

    struct OutputRef: Decodable { let name: String; let file: String; let shape: [Int] }
    struct Entry: Decodable { let file: String; let outputs: [OutputRef] }
    struct Refused: Decodable { let file: String; let op_type: String; let node: String }
    struct Manifest: Decodable { let input: String; let input_shape: [Int]; let models: [String: Entry]; let refused: Refused }

    static func floats(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }

    func testDetectionOperatorsMatchONNXRuntime() throws {
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: Self.opDirectory.appendingPathComponent("manifest.json")))
        XCTAssertGreaterThanOrEqual(manifest.models.count, 9, "fixture manifest lists too few models")
        let input = try Self.floats(Self.opDirectory.appendingPathComponent(manifest.input))
        for (name, entry) in manifest.models.sorted(by: { $0.key < $1.key }) {
            for threads in [1, 2] {
                let engine: Engine
                do {
                    engine = try Engine(contentsOf: Self.opDirectory.appendingPathComponent(entry.file), options: EngineOptions(threads: threads))
                } catch {
                    XCTFail("\(name): failed to load: \(error)")
                    continue
                }
                XCTAssertFalse(engine.inputHasBatchAxis, "\(name): [3, H, W] input has no batch axis")
                XCTAssertEqual(engine.inputShape, manifest.input_shape, "\(name): input shape")
                let outputs: [EngineOutputValue]
                do { outputs = try engine.inferOutputs(input, batch: 1) } catch {
                    XCTFail("\(name): inference failed: \(error)")
                    continue
                }
                XCTAssertEqual(outputs.map(\.info.name), entry.outputs.map(\.name), "\(name): output names")
                for (output, reference) in zip(outputs, entry.outputs) {
                    let expected = try Self.floats(Self.opDirectory.appendingPathComponent(reference.file))
                    XCTAssertEqual(output.info.shape, reference.shape, "\(name) \(reference.name): shape")
                    guard output.values.count == expected.count else {
                        XCTFail("\(name) \(reference.name): \(output.values.count) values, ORT has \(expected.count)")
                        continue
                    }
                    let scale = max(1, expected.map(abs).max() ?? 0)
                    let worst = zip(output.values, expected).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst / scale, 1e-5, "\(name) threads \(threads) \(reference.name): max |ours − ORT| = \(worst)")
                }
            }
        }
    }

    func testUnsupportedTailOperatorIsRefusedNamingTheNode() throws {
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: Self.opDirectory.appendingPathComponent("manifest.json")))
        XCTAssertThrowsError(try Engine(contentsOf: Self.opDirectory.appendingPathComponent(manifest.refused.file))) { error in
            guard case SelfXitError.unsupportedOperator(let op, let node, _) = error else {
                return XCTFail("expected unsupportedOperator, got \(error)")
            }
            XCTAssertEqual(op, manifest.refused.op_type)
            XCTAssertEqual(node, manifest.refused.node)
        }
    }

    struct DetectorReference: Decodable { let input_shape: [Int]; let boxes: [[Float]]; let labels: [Int]; let scores: [Float] }

    /// torchvision's FasterRCNN (tiny backbone + FPN): the same detections above 0.05 as ONNX
    /// Runtime, in any order, boxes within 1e-3 relative, scores within 1e-3.
    func testTinyFasterRCNNMatchesONNXRuntime() throws {
        let reference = try JSONDecoder().decode(DetectorReference.self, from: Data(contentsOf: Self.detectorDirectory.appendingPathComponent("reference.json")))
        let input = try Self.floats(Self.detectorDirectory.appendingPathComponent("input.f32"))
        XCTAssertGreaterThanOrEqual(reference.scores.filter { $0 > 0.05 }.count, 3, "the fixture should have detections to compare")
        for threads in [1, 2] {
            let engine = try Engine(contentsOf: Self.detectorDirectory.appendingPathComponent("tiny_fasterrcnn.onnx"), options: EngineOptions(threads: threads))
            XCTAssertFalse(engine.inputHasBatchAxis)
            XCTAssertTrue(engine.hasRunTimeShapedTail)
            XCTAssertGreaterThan(engine.plannedNodeCount, 10, "the backbone and FPN are planned")
            // MultiScaleRoIAlign's index Expands are not materialised: their scatters copy rows
            // (TailProgram.deferRowIndexExpands); the detections below must still match ORT.
            let tailNodes = engine.plan.graph.tail?.nodes ?? []
            let deferred = tailNodes.filter(\.deferred).count
            XCTAssertGreaterThan(deferred, 0, "an Expand feeding a ScatterElements is deferred")
            XCTAssertEqual(deferred, tailNodes.filter { $0.rowIndices != nil }.count)
            XCTAssertEqual(engine.outputInfos.map(\.name), ["boxes", "labels", "scores"])
            let outputs = try engine.inferOutputs(input, batch: 1)
            let boxes = outputs[0].values, labels = outputs[1].values.map { Int($0) }, scores = outputs[2].values
            XCTAssertEqual(outputs[0].info.shape, [scores.count, 4])
            var used = [Bool](repeating: false, count: scores.count)
            var matched = 0
            for (i, score) in reference.scores.enumerated() where score > 0.05 {
                let box = reference.boxes[i]
                let scale = max(1, box.map(abs).max() ?? 1)
                func distance(_ j: Int) -> Float {
                    var worst: Float = 0
                    for a in 0..<4 { worst = max(worst, abs(boxes[j * 4 + a] - box[a])) }
                    return worst
                }
                let pool = (0..<scores.count).filter { !used[$0] && labels[$0] == reference.labels[i] && scores[$0] > 0.05 }
                let candidate = pool.min { distance($0) < distance($1) }
                guard let j = candidate else { XCTFail("threads \(threads): ORT detection \(i) (label \(reference.labels[i]), score \(score)) not found"); continue }
                let error = distance(j) / scale
                XCTAssertLessThanOrEqual(error, 1e-3, "threads \(threads): detection \(i) box \(Array(boxes[(j * 4)..<(j * 4 + 4)])) vs ORT \(box)")
                XCTAssertLessThanOrEqual(abs(scores[j] - score), 1e-3, "threads \(threads): detection \(i) score")
                used[j] = true
                matched += 1
            }
            let extra = (0..<scores.count).filter { !used[$0] && scores[$0] > 0.05 }.count
            XCTAssertEqual(extra, 0, "threads \(threads): detections ORT does not have")
            XCTAssertEqual(matched, reference.scores.filter { $0 > 0.05 }.count)
            // One image a call: a batch of two is refused with a message, the engine stays usable.
            XCTAssertThrowsError(try engine.inferOutputs(input + input, batch: 2)) { error in
                guard case SelfXitError.invalidArgument = error else { return XCTFail("expected invalidArgument, got \(error)") }
            }
            XCTAssertEqual(try engine.inferOutputs(input, batch: 1)[2].values, scores, "same answer after a refused call")
        }
    }

    /// The detector teacher on final detections (issue 13, point 6): the tiny FasterRCNN's tail
    /// gives every frame the label of its most confident detection; frames submitted with exits
    /// off get that class (or "none" when nothing clears the threshold) and are collected.
    func testDetectorTeacherReadsTheTailsFinalDetections() throws {
        let reference = try JSONDecoder().decode(DetectorReference.self, from: Data(contentsOf: Self.detectorDirectory.appendingPathComponent("reference.json")))
        let input = try Self.floats(Self.detectorDirectory.appendingPathComponent("input.f32"))
        var options = EngineOptions(threads: 2, maxBatch: 4)
        var teacher = DetectorTeacher(mode: .mostConfidentObject, backgroundIndex: 0, scoreThreshold: 0.05)
        teacher.classCount = 5
        options.teacher = .detector(teacher)
        let engine = try Engine(contentsOf: Self.detectorDirectory.appendingPathComponent("tiny_fasterrcnn.onnx"), options: options)
        XCTAssertEqual(engine.teacherClasses, 5)
        let best = reference.scores.indices.max { reference.scores[$0] < reference.scores[$1] }!
        engine.setExitsEnabled(false)
        var classes: [Int] = []
        try engine.submit(input + input, batch: 2) { classes.append($0.classIndex) }
        XCTAssertEqual(classes, [reference.labels[best], reference.labels[best]], "the most confident detection's label, per frame")
        // A threshold above every score: "none" (the background class 0).
        teacher.scoreThreshold = 0.99
        options.teacher = .detector(teacher)
        let strict = try Engine(contentsOf: Self.detectorDirectory.appendingPathComponent("tiny_fasterrcnn.onnx"), options: options)
        strict.setExitsEnabled(false)
        var none: [Int] = []
        try strict.submit(input, batch: 1) { none.append($0.classIndex) }
        XCTAssertEqual(none, [0])
        // The classifier teacher has no class vector to read on such a model: submit and infer
        // are refused with a message (they used to answer from the raw head the tail reads).
        let plain = try Engine(contentsOf: Self.detectorDirectory.appendingPathComponent("tiny_fasterrcnn.onnx"),
                               options: EngineOptions(threads: 2, maxBatch: 4))
        XCTAssertThrowsError(try plain.submit(input, batch: 1) { _ in XCTFail("no answer expected") }) { error in
            guard case SelfXitError.invalidArgument(let message) = error else { return XCTFail("expected invalidArgument, got \(error)") }
            XCTAssertTrue(message.contains("inferOutputs") && message.contains("detector"), message)
        }
        XCTAssertThrowsError(try plain.infer(input, batch: 1))
        XCTAssertFalse(try plain.inferOutputs(input, batch: 1).isEmpty, "the outputs are still read after a refused submit")
        // Outputs that are not there are refused by name.
        teacher.labelsOutput = "nope"
        options.teacher = .detector(teacher)
        XCTAssertThrowsError(try Engine(contentsOf: Self.detectorDirectory.appendingPathComponent("tiny_fasterrcnn.onnx"), options: options)) { error in
            XCTAssertTrue("\(error)".contains("nope"), "\(error)")
        }
    }
}
