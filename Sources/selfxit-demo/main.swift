// The README's demo: loads the bundled Fashion-MNIST model, classifies the 10 000 test
// images and prints accuracy and latency.
//
//   selfxit-demo [--model models/fmnist-resnet18-w16.onnx] [--threads T] [--batch N]
import ArgumentParser
import Foundation
import SelfXit
import SelfXitDatasets

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfxit-demo",
        abstract: "Classify the 10 000 Fashion-MNIST test images with the full model: accuracy, batch-1 latency, throughput.")

    @Option(help: "The ONNX model (input [1, 28, 28], 10 classes).") var model = "models/fmnist-resnet18-w16.onnx"
    @Option(help: "Worker threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Images per batch for the throughput pass.") var batch = 32

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard (1...1024).contains(batch) else { throw ValidationError("--batch must be in 1...1024, got \(batch)") }
        guard FileManager.default.fileExists(atPath: model) else { throw ValidationError("model file '\(model)' does not exist") }
    }
}

let command = DemoCommand.parseOrExit()
let modelPath = command.model
let threads = command.threads
let batchSize = command.batch

do {
    let engine = try Engine(contentsOf: URL(fileURLWithPath: modelPath), options: EngineOptions(threads: threads))
    let test = try FashionMNIST(split: "t10k")
    print("SelfXit \(SelfXit.version) — \(modelPath): input \(engine.inputShape), \(engine.outputCount) classes, "
          + String(format: "%.1f MFLOPs/sample, %d threads", Double(engine.backboneFLOPs) / 1e6, threads))

    func classify(_ range: Range<Int>) throws -> [Int] {
        let logits = try Array(test.batch(range)).withUnsafeBufferPointer { try engine.infer($0, batch: range.count) }
        return (0..<range.count).map { row in
            let slice = logits[(row * engine.outputCount)..<((row + 1) * engine.outputCount)]
            return slice.indices.max { slice[$0] < slice[$1] }! - row * engine.outputCount
        }
    }

    // Batch 1 latency on the first 500 images, then the whole test set in batches.
    var single: [Double] = []
    for index in 0..<500 {
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try classify(index..<(index + 1))
        single.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    single.sort()
    var correct = 0
    let start = DispatchTime.now().uptimeNanoseconds
    for first in stride(from: 0, to: test.count, by: batchSize) {
        let range = first..<min(first + batchSize, test.count)
        let predictions = try classify(range)
        correct += zip(predictions, test.labels[range]).filter { $0 == $1 }.count
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    print(String(format: "accuracy on %d test images: %.2f %%", test.count, 100 * Double(correct) / Double(test.count)))
    print(String(format: "latency batch 1: p50 %.3f ms, p99 %.3f ms", single[single.count / 2], single[single.count * 99 / 100]))
    print(String(format: "throughput batch %d: %.0f images/s (%.3f ms/image)", batchSize, Double(test.count) / seconds, 1000 * seconds / Double(test.count)))
} catch {
    FileHandle.standardError.write(Data("selfxit-demo: \(error)\n".utf8))
    exit(1)
}
