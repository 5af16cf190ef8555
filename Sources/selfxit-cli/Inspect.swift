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
        /// Every graph output (−1 for a dimension known only at run time), and whether part of the
        /// model runs with run-time shapes (a whole detector: then `output` above is only the planned
        /// tensor its tail starts from, not an answer).
        var outputs: [GraphOutput], runtimeShapes: Bool
    }
    struct GraphOutput: Codable { var name: String, shape: [Int] }

    func run() throws {
        let engine = try Engine(contentsOf: URL(fileURLWithPath: model), options: engineFlags.options(maxBatch: 1))
        let candidates = engine.exitCandidates
        if json {
            let output = Output(model: model, input: engine.inputName, inputShape: engine.inputShape, output: engine.outputName,
                                outputShape: engine.outputShape, flops: engine.backboneFLOPs, candidates: candidates,
                                outputs: engine.outputInfos.map { GraphOutput(name: $0.name, shape: $0.shape) },
                                runtimeShapes: engine.hasRunTimeShapedTail)
            print(String(decoding: try makeEncoder().encode(output), as: UTF8.self))
            return
        }
        print("model    \(model)")
        print("input    '\(engine.inputName)' \(engine.inputShape) "
              + (engine.inputHasBatchAxis ? "(per sample, batch dimension left out)" : "(one image a call: the model has no batch axis)"))
        if engine.hasRunTimeShapedTail {
            // The planned part's last tensor is not an answer here: name the graph's outputs.
            print("outputs  shapes decided per image by a run-time-shaped tail (\(engine.tailNodeCount) nodes; ? = known at run time):")
            for info in engine.outputInfos {
                print("  '\(info.name)' [" + info.shape.map { $0 < 0 ? "?" : "\($0)" }.joined(separator: ", ") + "]")
            }
        } else {
            print("output   '\(engine.outputName)' \(engine.outputShape)")
        }
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
