import ArgumentParser
import Foundation
import SelfXit

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time this engine alone on one model (random inputs, exits off): p50/p95/mean latency as JSON.")

    @Argument(help: "The ONNX model file.") var model: String
    @Option(help: "Samples per batch.") var batch = 1
    @Option(help: "Timed batches.") var iters = 50
    @Option(help: "Untimed batches first.") var warmup = 5
    @OptionGroup var engineFlags: EngineFlags

    func validate() throws {
        try requireFile(model, "model file")
        guard (1...(1 << 20)).contains(batch) else { throw ValidationError("--batch must be in 1...1048576, got \(batch)") }
        guard iters >= 1 else { throw ValidationError("--iters must be at least 1, got \(iters)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
    }

    struct Output: Codable {
        var model: String, batch: Int, threads: Int, iters: Int
        var p50Ms: Double, p95Ms: Double, meanMs: Double, minMs: Double, msPerSample: Double, gflopsPerSample: Double
        enum CodingKeys: String, CodingKey {
            case model, batch, threads, iters, p50Ms = "p50_ms", p95Ms = "p95_ms", meanMs = "mean_ms", minMs = "min_ms"
            case msPerSample = "ms_per_sample", gflopsPerSample = "gflops_per_sample"
        }
    }

    func run() throws {
        let options = engineFlags.options(maxBatch: batch)
        let engine = try Engine(contentsOf: URL(fileURLWithPath: model), options: options)
        var generator = SeededRandom(seed: 1)
        let input = (0..<(batch * engine.inputCount)).map { _ in Float.random(in: -1...1, using: &generator) }
        for _ in 0..<warmup { _ = try engine.infer(input, batch: batch) }
        var times: [Double] = []
        for _ in 0..<iters {
            let start = now()
            _ = try engine.infer(input, batch: batch)
            times.append(1000 * (now() - start))
        }
        times.sort()
        let mean = times.reduce(0, +) / Double(times.count)
        let output = Output(model: model, batch: batch, threads: options.threads, iters: iters, p50Ms: percentile(times, 0.5),
                            p95Ms: percentile(times, 0.95), meanMs: mean, minMs: times[0], msPerSample: mean / Double(batch),
                            gflopsPerSample: Double(engine.backboneFLOPs) / 1e9)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(output), as: UTF8.self))
    }
}

