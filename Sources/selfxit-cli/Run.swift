import ArgumentParser
import Foundation
import SelfXit

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify the JPEG/PNG images of a folder: label, confidence, exit and latency per image, then a summary.",
        discussion: """
            Images are decoded, resized (bilinear) to the model's input and normalised as
            (pixel · scale − mean) / std. With --exits the saved early exits answer the images
            they are confident about; without, every image runs the full model. A file name
            holding "label<k>" (tools/write_frames.py) also gives the accuracy.
            Unreadable or undecodable files are reported and skipped.
            """)

    @Argument(help: "The ONNX model file.") var model: String
    @Argument(help: "A folder of .png/.jpg images (sorted by name), or one image file.") var images: String
    @OptionGroup var preprocess: PreprocessFlags
    @Option(help: "Images per submitted batch.") var batch = 1
    @Option(help: ArgumentHelp("Exit bundle saved by `selfxit build` (default: the full model only).", valueName: "bundle.sxb"))
    var exits: String?
    @Flag(help: "Print only the summary line.") var quiet = false
    @OptionGroup var engineFlags: EngineFlags

    func validate() throws {
        try requireFile(model, "model file")
        if let exits { try requireFile(exits, "exit bundle") }
        guard (1...4096).contains(batch) else { throw ValidationError("--batch must be in 1...4096, got \(batch)") }
    }

    func run() throws {
        let files = try imageFiles(images)
        let engine = try Engine(contentsOf: URL(fileURLWithPath: model), options: engineFlags.options(maxBatch: batch))
        let pre = try preprocess.preprocess(channels: engine.inputShape.first ?? 1)
        if let exits {
            try engine.loadExits(from: URL(fileURLWithPath: exits))
            engine.setExitsEnabled(true)
        }
        var latencies: [Double] = [], exitCounts: [Int: Int] = [:], flops = 0.0
        var labelled = 0, correct = 0, skipped = 0, answered = 0
        let start = now()
        try forEachBatch(of: files, engine: engine, preprocess: pre, batch: batch, skipped: { index, why in
            skipped += 1
            printError("selfxit run: \(files[index]): \(why) (skipped)")
        }) { indices, inputs in
            try engine.submit(inputs, batch: indices.count) { result in
                let file = files[indices[result.sampleIndex]]
                answered += 1
                latencies.append(1000 * result.latency)
                exitCounts[result.exitIndex, default: 0] += 1
                flops += Double(result.flops)
                if let label = fileLabel(file) {
                    labelled += 1
                    if label == result.classIndex { correct += 1 }
                }
                if !quiet {
                    let exit = result.exitIndex < 0 ? "full" : "\(result.exitIndex)"
                    print(String(format: "%@  label %d  confidence %.4f  exit %@  latency %.3f ms%@", (file as NSString).lastPathComponent,
                                 result.classIndex, result.confidence, exit, 1000 * result.latency, result.nonFinite ? "  (non-finite)" : ""))
                }
            }
        }
        let seconds = now() - start
        guard answered > 0 else { throw CommandFailure("none of the \(files.count) images could be decoded") }
        latencies.sort()
        let shares = exitCounts.keys.sorted { ($0 < 0 ? Int.max : $0) < ($1 < 0 ? Int.max : $1) }.map { key in
            String(format: "%@ %.1f%%", key < 0 ? "full" : "exit \(key)", 100 * Double(exitCounts[key]!) / Double(answered))
        }.joined(separator: ", ")
        var summary = String(format: "%d images (%d skipped), batch %d: %.1f images/s, latency p50 %.3f ms p95 %.3f ms mean %.3f ms; FLOPs %.1f%% of the full model; %@",
                             answered, skipped, batch, Double(answered) / max(seconds, 1e-9), percentile(latencies, 0.5), percentile(latencies, 0.95),
                             latencies.reduce(0, +) / Double(latencies.count), 100 * flops / Double(answered) / Double(max(engine.backboneFLOPs, 1)), shares)
        if labelled == answered { summary += String(format: "; accuracy vs file-name labels %.2f%%", 100 * Double(correct) / Double(labelled)) }
        print("summary: " + summary)
    }
}
