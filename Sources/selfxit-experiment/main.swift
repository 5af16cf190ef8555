// The paper's Fashion-MNIST experiment (Tables 2, 3 and 5 of the SelfXit paper) on one model:
// the 10 000 test images are the unlabeled inference data, split 50/20/30 (seeded); exits are
// built from the first 70 % with no labels, and labels only score the held-out 30 %.
//
//   selfxit-experiment --model .cache/models/fmnist-resnet18-w64.onnx [--tolerances 0.005,0.01,0.02]
//                      [--threads 2] [--seed 0] [--search-budget 4] [--epochs 30] [--json]
//
// bench/paper_experiment.py runs it beside ONNX Runtime and formats the tables.
import ArgumentParser
import Foundation
import SelfXit
import SelfXitDatasets

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfxit-experiment",
        abstract: "The paper's Fashion-MNIST experiment on one model: exits built from 70 % of the test set (no labels), scored on the other 30 %; JSON on stdout.")

    @Option(help: "The ONNX model (input [1, 28, 28], 10 classes).") var model = ".cache/models/fmnist-resnet18-w64.onnx"
    @Option(help: "Worker threads.") var threads = 2
    @Option(help: "Seed of the split and of the builds.") var seed: UInt64 = 0
    @Option(help: ArgumentHelp("Tolerances to build at, comma-separated.", valueName: "t[,t...]")) var tolerances = "0.005,0.01,0.02"
    @Option(name: .customLong("search-budget"), help: "Head architectures tried per candidate layer.") var searchBudget = 4
    @Option(help: "Training epochs of the chosen heads.") var epochs = 30
    @Flag(help: "Accepted for compatibility: the output always is JSON.") var json = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard parsedTolerances(tolerances) != nil else {
            throw ValidationError("--tolerances must be numbers in (0, 1) separated by commas, got '\(tolerances)'")
        }
        guard searchBudget >= 1 else { throw ValidationError("--search-budget must be at least 1, got \(searchBudget)") }
        guard (1...1000).contains(epochs) else { throw ValidationError("--epochs must be in 1...1000, got \(epochs)") }
        guard FileManager.default.fileExists(atPath: model) else { throw ValidationError("model file '\(model)' does not exist") }
    }
}

func parsedTolerances(_ text: String) -> [Double]? {
    let values = text.split(separator: ",").map { Double($0) }
    guard !values.isEmpty, values.allSatisfy({ $0.map { $0 > 0 && $0 < 1 } ?? false }) else { return nil }
    return values.map { $0! }
}

func log(_ message: String) { FileHandle.standardError.write(Data((message + "\n").utf8)) }
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

let command = ExperimentCommand.parseOrExit()
let modelPath = command.model
let threads = command.threads
let seed = command.seed
let tolerances = parsedTolerances(command.tolerances)!
let searchBudget = command.searchBudget
let epochs = command.epochs

struct Row: Codable {
    var exitIndex: Int, tensor: String, head: String, headFLOPs: Int, savedFLOPs: Int, threshold: Float
    var hitRate: Double, agreementExit: Double, accuracyGT: Double, accuracyEffect: Double
}
struct Latency: Codable { var batch: Int, exitsMsPerImage: Double, backboneMsPerImage: Double }
struct ToleranceResult: Codable {
    var tolerance: Double, buildSeconds: Double, activeExits: [Int]
    var rows: [Row]
    var accuracyBackbone: Double, accuracyExits: Double, agreement: Double
    var flopsBackbone: Double, flopsExits: Double, headBytes: Int, modelBytes: Int
    var latency: [Latency]
}

do {
    let engine = try Engine(contentsOf: URL(fileURLWithPath: modelPath),
                            options: EngineOptions(threads: threads, collectionBudgetBytes: 64 << 20, seed: seed))
    let data = try FashionMNIST(split: "t10k")
    var generator = SeededRandom(seed: seed)
    let order = Array(0..<data.count).shuffled(using: &generator)
    let inference = Array(order[0..<7000]), heldOut = Array(order[7000...])
    let pixels = FashionMNIST.pixelsPerImage
    func gather(_ indices: ArraySlice<Int>) -> [Float] { indices.flatMap { data.images[($0 * pixels)..<(($0 + 1) * pixels)] } }

    // Run the full model on every image once (exits off): collects the 7 000 inference
    // samples for the build and gives the backbone's answers.
    engine.setExitsEnabled(false)
    var backbone = [Int](repeating: -1, count: data.count)
    for first in stride(from: 0, to: inference.count, by: 64) {
        let batch = inference[first..<min(first + 64, inference.count)]
        try engine.submit(gather(batch), batch: batch.count) { backbone[batch[batch.startIndex + $0.sampleIndex]] = $0.classIndex }
    }
    let modelBytes = (try? FileManager.default.attributesOfItem(atPath: modelPath)[.size] as? Int) ?? 0
    var backboneHeld = [Int](repeating: 0, count: heldOut.count)
    let held = gather(heldOut[...])
    for first in stride(from: 0, to: heldOut.count, by: 64) {
        let count = min(64, heldOut.count - first)
        let slice = Array(held[(first * pixels)..<((first + count) * pixels)])
        let local = try engine.infer(slice, batch: count)
        for row in 0..<count {
            let logits = local[(row * engine.outputCount)..<((row + 1) * engine.outputCount)]
            backboneHeld[first + row] = logits.indices.max { logits[$0] < logits[$1] }! - row * engine.outputCount
        }
    }
    let labels = heldOut.map { data.labels[$0] }
    let accuracyBackbone = Double(zip(backboneHeld, labels).filter { $0 == $1 }.count) / Double(heldOut.count)
    log("backbone accuracy on the held-out 3000: \(accuracyBackbone)")

    /// Milliseconds per image over the held-out set in batches of `batch`: through the exit
    /// cascade, or the plain full model (no collection, like ONNX Runtime's run).
    func timing(batch: Int, exits: Bool) throws -> Double {
        let batches = stride(from: 0, to: heldOut.count, by: batch).map { first in
            (Array(held[(first * pixels)..<((first + min(batch, heldOut.count - first)) * pixels)]), min(batch, heldOut.count - first))
        }
        let start = now()
        for (input, count) in batches {
            if exits {
                try engine.submit(input, batch: count) { _ in }
            } else {
                _ = try engine.infer(input, batch: count)
            }
        }
        return 1000 * (now() - start) / Double(heldOut.count)
    }

    var results: [ToleranceResult] = []
    for tolerance in tolerances {
        let start = now()
        let report = try engine.updateExits(ExitBuildOptions(
            tolerance: tolerance, searchBudget: searchBudget, seed: seed, trainFraction: 5.0 / 7, validationFraction: 2.0 / 7,
            epochs: epochs, progress: { log($0) }))
        let buildSeconds = now() - start
        engine.setExitsEnabled(true)
        // Held-out evaluation through the real cascade (batch 32), per-sample answers.
        var exitOf = [Int](repeating: -1, count: heldOut.count), classOf = [Int](repeating: -1, count: heldOut.count)
        var flops = 0.0
        for first in stride(from: 0, to: heldOut.count, by: 32) {
            let count = min(32, heldOut.count - first)
            try engine.submit(Array(held[(first * pixels)..<((first + count) * pixels)]), batch: count) { result in
                exitOf[first + result.sampleIndex] = result.exitIndex
                classOf[first + result.sampleIndex] = result.classIndex
                flops += Double(result.flops)
            }
        }
        var rows: [Row] = []
        for exit in report.exits where exit.active {
            let samples = (0..<heldOut.count).filter { exitOf[$0] == exit.candidateIndex }
            let n = Double(max(samples.count, 1))
            let agree = Double(samples.filter { classOf[$0] == backboneHeld[$0] }.count) / n
            let correct = Double(samples.filter { classOf[$0] == labels[$0] }.count)
            let backboneCorrect = Double(samples.filter { backboneHeld[$0] == labels[$0] }.count)
            rows.append(Row(exitIndex: exit.candidateIndex, tensor: exit.tensor, head: exit.architecture ?? "-",
                            headFLOPs: exit.headFLOPs, savedFLOPs: exit.savedFLOPs, threshold: exit.threshold,
                            hitRate: Double(samples.count) / Double(heldOut.count), agreementExit: agree,
                            accuracyGT: correct / n, accuracyEffect: (correct - backboneCorrect) / Double(heldOut.count)))
        }
        let accuracyExits = Double(zip(classOf, labels).filter { $0 == $1 }.count) / Double(heldOut.count)
        let agreement = Double(zip(classOf, backboneHeld).filter { $0 == $1 }.count) / Double(heldOut.count)
        var latency: [Latency] = []
        for batch in [1, 32] {
            let withExits = try timing(batch: batch, exits: true)
            let without = try timing(batch: batch, exits: false)
            latency.append(Latency(batch: batch, exitsMsPerImage: withExits, backboneMsPerImage: without))
        }
        let headBytes = report.exits.filter(\.active).map(\.headBytes).reduce(0, +)
        results.append(ToleranceResult(tolerance: tolerance, buildSeconds: buildSeconds, activeExits: report.exits.filter(\.active).map(\.candidateIndex),
                                       rows: rows, accuracyBackbone: accuracyBackbone, accuracyExits: accuracyExits, agreement: agreement,
                                       flopsBackbone: Double(engine.backboneFLOPs), flopsExits: flops / Double(heldOut.count),
                                       headBytes: headBytes, modelBytes: modelBytes, latency: latency))
        log(String(format: "T=%.3f: accuracy %.4f (backbone %.4f), FLOPs %.1f%%, build %.1f s", tolerance, accuracyExits, accuracyBackbone,
                   100 * flops / Double(heldOut.count) / Double(engine.backboneFLOPs), buildSeconds))
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(results), as: UTF8.self))
} catch {
    log("selfxit-experiment: \(error)")
    exit(1)
}

