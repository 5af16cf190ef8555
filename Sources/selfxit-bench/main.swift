// Times the SelfXit engine on one ONNX model; bench/compare.py runs it beside ONNX Runtime.
//
//   selfxit-bench --model PATH [--batch N] [--threads T] [--iters K] [--warmup W] [--input-shape 3,33,33] [--json]
//   selfxit-bench --model PATH [--batch N] [--threads T] [--warmup W] --serve
//
// Prints median and p90 latency of one batch in ms, and the process's peak resident memory.
// `--serve` is for a driver that interleaves engines batch by batch (bench/compare.py): after the
// warm-up it prints `ready`, then for each line `run K` on stdin runs K batches back to back and
// prints their ms on one line; at `quit` (or end of input) it prints the peak-memory JSON object.
import Foundation
import SelfXit

func argument(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let index = args.firstIndex(of: name), index + 1 < args.count else { return nil }
    return args[index + 1]
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

guard let modelPath = argument("--model") else { fail("usage: selfxit-bench --model PATH [--batch N] [--threads T] [--iters K] [--warmup W] [--json | --serve] [--profile [--top N | --plan-order]]") }
let batch = Int(argument("--batch") ?? "1") ?? 1
let threads = Int(argument("--threads") ?? "") ?? ProcessInfo.processInfo.activeProcessorCount
let iterations = max(Int(argument("--iters") ?? "50") ?? 50, 1)
let warmup = Int(argument("--warmup") ?? "5") ?? 5
let inputShape = argument("--input-shape").map { $0.split(separator: ",").compactMap { Int($0) } }

do {
    let engine = try Engine(contentsOf: URL(fileURLWithPath: modelPath),
                            options: EngineOptions(threads: threads, inputShape: inputShape, maxBatch: max(batch, 1)))
    if CommandLine.arguments.contains("--profile") {
        // Time per operator type (best of the iterations per node), largest first.
        var byOp: [String: (Double, Int)] = [:]
        let nodes = try engine.profile(batch: batch, iterations: iterations)
        for node in nodes { byOp[node.op, default: (0, 0)].0 += node.milliseconds; byOp[node.op, default: (0, 0)].1 += 1 }
        for (op, (ms, count)) in byOp.sorted(by: { $0.value.0 > $1.value.0 }) {
            print(String(format: "%-20@ %4d nodes %9.3f ms", op, count, ms))
        }
        print(String(format: "total %.3f ms; slowest nodes:", nodes.map(\.milliseconds).reduce(0, +)))
        // --plan-order lists every node in execution order (to line up with another engine's profile).
        let listed = CommandLine.arguments.contains("--plan-order")
            ? nodes : Array(nodes.sorted(by: { $0.milliseconds > $1.milliseconds }).prefix(argument("--top").flatMap { Int($0) } ?? 8))
        for node in listed {
            print(String(format: "  %9.3f ms  %@ (%@)", node.milliseconds, node.node, node.op))
        }
        exit(0)
    }
    var generator = SystemRandomNumberGenerator()
    let input = (0..<(batch * engine.inputCount)).map { _ in Float.random(in: -1...1, using: &generator) }
    for _ in 0..<warmup { _ = try engine.infer(input, batch: batch) }
    if CommandLine.arguments.contains("--serve") {
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
    if CommandLine.arguments.contains("--json") {
        print(String(format: "{\"median_ms\": %.4f, \"p90_ms\": %.4f, \"min_ms\": %.4f, \"peak_rss_mb\": %.1f, \"gflops_per_sample\": %.4f}",
                     median, p90, times[0], peakMB, Double(engine.backboneFLOPs) / 1e9))
    } else {
        print(String(format: "%@ batch %d threads %d: median %.3f ms (%.3f ms/sample), p90 %.3f ms, peak RSS %.1f MB",
                     modelPath, batch, threads, median, median / Double(batch), p90, peakMB))
    }
} catch {
    fail("\(error)")
}
