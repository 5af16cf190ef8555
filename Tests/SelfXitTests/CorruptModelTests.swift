import Foundation
import XCTest
@testable import SelfXit

/// Damaged models that still parse as protobuf must be refused at load or run correctly
/// shaped — never trap in import, planning or kernels.
final class CorruptModelTests: XCTestCase {
    func testRandomCorruptionsNeverCrash() throws {
        var random = SeededRandom(seed: 11)
        var loaded = 0, refused = 0
        for file in ["resnet18_w4.onnx", "mobilenet_v3ish.onnx", "tf_same_net.onnx", "auto_pad_same.onnx", "branchy_net.onnx"] {
            let original = [UInt8](try Data(contentsOf: Fixtures.model(file)))
            let inputShape: [Int]? = file == "tf_same_net.onnx" ? [3, 33, 33] : nil
            for _ in 0..<60 {
                var bytes = original
                for _ in 0..<(1 + random.below(3)) {
                    // Corrupt the graph structure (the front of the file), not only weight bytes.
                    let position = random.below(min(bytes.count, 4096))
                    bytes[position] = UInt8(truncatingIfNeeded: random.next())
                }
                guard let engine = try? Engine(modelBytes: bytes, options: EngineOptions(threads: 2, inputShape: inputShape, maxBatch: 4)) else {
                    refused += 1
                    continue
                }
                loaded += 1
                let output = try engine.infer([Float](repeating: 0.25, count: 2 * engine.inputCount), batch: 2)
                XCTAssertEqual(output.count, 2 * engine.outputCount)
            }
        }
        XCTAssertGreaterThan(refused, 0)
        print("corrupted models: \(loaded) loaded and ran, \(refused) refused")
    }
}
