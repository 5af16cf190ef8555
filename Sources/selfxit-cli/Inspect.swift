import ArgumentParser
import Foundation
import SelfXit

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's input, output and exit candidates with the FLOPs spent before each.")

    @Argument(help: "The ONNX model file.") var model: String
    @Flag(help: "Print JSON instead of a table.") var json = false
    @OptionGroup var engineFlags: EngineFlags

    func validate() throws { try requireFile(model, "model file") }

    struct Output: Codable {
        var model: String, input: String, inputShape: [Int], output: String, outputShape: [Int]
        var flops: Int, candidates: [ExitCandidateInfo]
    }

    func run() throws {
        let engine = try Engine(contentsOf: URL(fileURLWithPath: model), options: engineFlags.options(maxBatch: 1))
        let candidates = engine.exitCandidates
        if json {
            let output = Output(model: model, input: engine.inputName, inputShape: engine.inputShape, output: engine.outputName,
                                outputShape: engine.outputShape, flops: engine.backboneFLOPs, candidates: candidates)
            print(String(decoding: try makeEncoder().encode(output), as: UTF8.self))
            return
        }
        print("model    \(model)")
        print("input    '\(engine.inputName)' \(engine.inputShape) (per sample, batch dimension left out)")
        print("output   '\(engine.outputName)' \(engine.outputShape)")
        print("FLOPs    \(megaFLOPs(engine.backboneFLOPs)) per sample")
        print("exit candidates: \(candidates.count)")
        guard !candidates.isEmpty else { return }
        print("  index  FLOPs before  % of model  saved if exiting  shape           tensor")
        for c in candidates {
            print("  " + pad("\(c.index)", 5, left: true) + "  " + pad(megaFLOPs(c.flopsBefore), 12, left: true) + "  "
                  + pad(String(format: "%.1f %%", 100 * Double(c.flopsBefore) / Double(max(engine.backboneFLOPs, 1))), 10, left: true) + "  "
                  + pad(megaFLOPs(c.flopsAfter), 16, left: true) + "  " + pad("\(c.shape)", 14) + "  " + c.tensor)
        }
    }
}
