// Times the SelfXit engine on one ONNX model; bench/compare.py runs it beside ONNX Runtime.
//
//   selfxit-bench --model PATH [--batch N] [--threads T] [--iters K] [--warmup W] [--input-shape 3,33,33] [--json]
//   selfxit-bench --model PATH [--batch N] [--threads T] [--warmup W] --serve
//
// Prints median and p90 latency of one batch in ms, and the process's peak resident memory.
// `--serve` is for a driver that interleaves engines batch by batch (bench/compare.py): after the
// warm-up it prints `ready`, then for each line `run K` on stdin runs K batches back to back and
// prints their ms on one line; at `quit` (or end of input) it prints the peak-memory JSON object.
import ArgumentParser
import Foundation
import SelfXit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfxit-bench",
        abstract: "Time the SelfXit engine on one ONNX model: median and p90 latency of one batch, peak resident memory.",
        discussion: "--serve: after the warm-up print 'ready', then for each 'run K' line on stdin run K batches and print their ms; 'quit' prints the peak-memory JSON.")

    @Option(help: "The ONNX model.") var model: String
    @Option(help: "Samples per batch.") var batch = 1
    @Option(help: "Worker threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Timed batches (or profiling iterations).") var iters = 50
    @Option(help: "Untimed batches first.") var warmup = 5
    @Option(name: .customLong("input-shape"), help: ArgumentHelp("Per-sample input shape for models with symbolic dimensions.", valueName: "C,H,W"))
    var inputShape: String?
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Serve 'run K' requests on stdin (bench/compare.py).") var serve = false
    @Flag(help: "Time per operator type and the slowest nodes.") var profile = false
    @Option(help: "With --profile: how many of the slowest nodes to list.") var top = 8
    @Flag(name: .customLong("plan-order"), help: "With --profile: list every node in execution order.") var planOrder = false

    func validate() throws {
        guard (1...(1 << 20)).contains(batch) else { throw ValidationError("--batch must be in 1...1048576, got \(batch)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        guard top >= 0 else { throw ValidationError("--top must not be negative, got \(top)") }
        if let inputShape, parsedShape(inputShape) == nil {
            throw ValidationError("--input-shape must be positive integers separated by commas (3,33,33), got '\(inputShape)'")
        }
        guard FileManager.default.fileExists(atPath: model) else { throw ValidationError("model file '\(model)' does not exist") }
    }
}

func parsedShape(_ text: String) -> [Int]? {
    let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
    return values.map { $0! }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("selfxit-bench: \(message)\n".utf8))
    exit(2)
}

/// The process's peak resident memory so far, in MB.
func peakResidentMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

let command = BenchCommand.parseOrExit()
let modelPath = command.model
let batch = command.batch
let threads = command.threads
let iterations = max(command.iters, 1)
let warmup = command.warmup
let inputShape = command.inputShape.flatMap(parsedShape)

do {
    let engine = try Engine(contentsOf: URL(fileURLWithPath: modelPath),
                            options: EngineOptions(threads: threads, inputShape: inputShape, maxBatch: max(batch, 1)))
    if command.profile {
        // Time per operator type (best of the iterations per node), largest first.
        var byOp: [String: (Double, Int)] = [:]
        let nodes = try engine.profile(batch: batch, iterations: iterations)
        for node in nodes { byOp[node.op, default: (0, 0)].0 += node.milliseconds; byOp[node.op, default: (0, 0)].1 += 1 }
        for (op, (ms, count)) in byOp.sorted(by: { $0.value.0 > $1.value.0 }) {
            print(String(format: "%-20@ %4d nodes %9.3f ms", op, count, ms))
        }
        print(String(format: "total %.3f ms; slowest nodes:", nodes.map(\.milliseconds).reduce(0, +)))
        // --plan-order lists every node in execution order (to line up with another engine's profile).
        let listed = command.planOrder
            ? nodes : Array(nodes.sorted(by: { $0.milliseconds > $1.milliseconds }).prefix(command.top))
        for node in listed {
            print(String(format: "  %9.3f ms  %@ (%@)", node.milliseconds, node.node, node.op))
        }
        exit(0)
    }
    // A seeded generator: the same input every run, and no getrandom call per float (the system
    // generator made one for each of ResNet-50 b8's 1.2 M inputs).
    var generator = SeededRandom(seed: 1)
    let input = (0..<(batch * engine.inputCount)).map { _ in Float.random(in: -1...1, using: &generator) }
    for _ in 0..<warmup { _ = try engine.infer(input, batch: batch) }
    if command.serve {
        print("ready")
        fflush(stdout)
        // `run K`: K batches back to back, each one's ms printed on one line.
        while let line = readLine(), line != "quit" {
            let words = line.split(separator: " ")
            guard words.count == 2, words[0] == "run", let count = Int(words[1]), count > 0 else {
                fail("--serve: expected 'run K' or 'quit', got '\(line)'")
            }
            var times: [String] = []
            for _ in 0..<count {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try engine.infer(input, batch: batch)
                times.append(String(format: "%.4f", Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6))
            }
            print(times.joined(separator: " "))
            fflush(stdout)
        }
        print(String(format: "{\"peak_rss_mb\": %.1f, \"gflops_per_sample\": %.4f}", peakResidentMB(), Double(engine.backboneFLOPs) / 1e9))
        exit(0)
    }
    var times: [Double] = []
    for _ in 0..<iterations {
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try engine.infer(input, batch: batch)
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    times.sort()
    let median = times[times.count / 2], p90 = times[min(times.count - 1, times.count * 9 / 10)]
    let peakMB = peakResidentMB()
    if command.json {
        print(String(format: "{\"median_ms\": %.4f, \"p90_ms\": %.4f, \"min_ms\": %.4f, \"peak_rss_mb\": %.1f, \"gflops_per_sample\": %.4f}",
                     median, p90, times[0], peakMB, Double(engine.backboneFLOPs) / 1e9))
    } else {
        print(String(format: "%@ batch %d threads %d: median %.3f ms (%.3f ms/sample), p90 %.3f ms, peak RSS %.1f MB",
                     modelPath, batch, threads, median, median / Double(batch), p90, peakMB))
    }
} catch {
    fail("\(error)")
}
