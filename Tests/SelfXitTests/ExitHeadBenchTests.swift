import XCTest
import Foundation
@testable import SelfXit

/// Timing of a full exit build for ResNet-18 (width 64) on Fashion-MNIST-sized activations:
/// 8 candidate layers, 2 500 train + 1 000 validation samples, synthetic learnable teachers.
/// Skipped unless SELFXIT_EXIT_BENCH=1 (it takes about a minute or two). Optional
/// SELFXIT_EXIT_BENCH_BUDGET (default 6) sets the search budget per layer.
final class ExitHeadBenchTests: XCTestCase {
    func testResNet18ExitBuildTiming() throws {
        let env = ProcessInfo.processInfo.environment
        try XCTSkipUnless(env["SELFXIT_EXIT_BENCH"] == "1", "set SELFXIT_EXIT_BENCH=1 to run")
        let budget = Int(env["SELFXIT_EXIT_BENCH_BUDGET"] ?? "") ?? 6
        let shapes = [[64, 28, 28], [64, 28, 28], [128, 14, 14], [128, 14, 14], [256, 7, 7], [256, 7, 7], [512, 4, 4], [512, 4, 4]]
        let classes = 10, blockFLOPs = 116_000_000
        var config = ExitTrainingConfig()
        config.seed = 1
        let total = Date()
        for (i, shape) in shapes.enumerated() {
            let start = Date()
            let (train, val) = Self.data(shape: shape, classes: classes, seed: UInt64(i), counts: (2500, 1000))
            let genTime = Date().timeIntervalSince(start)
            let t0 = Date()
            let result = try ExitHeadSearch.search(inputShape: shape, classes: classes, train: train, validation: val,
                                                   backboneFLOPsAfter: (shapes.count - i) * blockFLOPs, budget: budget,
                                                   config: config, progress: { print("  [\(i)] \($0)") })
            print(String(format: "layer %d %@: search+train %.2f s (data gen %.2f s) → %@", i, "\(shape)",
                         Date().timeIntervalSince(t0), genTime, result.head.map { "\($0.architecture), \($0.flops) FLOPs, T=\($0.temperature)" } ?? "discarded"))
        }
        print(String(format: "total exit build (incl. data generation): %.1f s", Date().timeIntervalSince(total)))
    }

    /// Features: per-sample channel offsets (the signal) plus per-element noise, ReLU'd like a
    /// backbone activation; teacher = softmax(3 · A · GAP(features) over the first 32 channels).
    static func data(shape: [Int], classes: Int, seed: UInt64, counts: (Int, Int)) -> (DistillationData, DistillationData) {
        var rng = SeededRandom(seed: seed &+ 1000)
        let c = shape[0], plane = shape[1] * shape[2]
        let used = min(c, 32)
        let a = (0..<(classes * used)).map { _ in rng.normal() }
        func make(_ n: Int) -> DistillationData {
            var features = [Float](repeating: 0, count: n * c * plane)
            var teacher = [Float](repeating: 0, count: n * classes)
            for s in 0..<n {
                var gap = [Float](repeating: 0, count: used)
                for ch in 0..<c {
                    let offset = rng.normal()
                    let base = s * c * plane + ch * plane
                    var sum: Float = 0
                    for i in 0..<plane {
                        let u = Float(rng.next() >> 40) / Float(1 << 24) - 0.5
                        let v = max(0, offset + u)
                        features[base + i] = v; sum += v
                    }
                    if ch < used { gap[ch] = sum / Float(plane) }
                }
                var z = [Double](repeating: 0, count: classes)
                for k in 0..<classes { for j in 0..<used { z[k] += Double(a[k * used + j] * gap[j]) * 3 } }
                let m = z.max()!
                let e = z.map { exp($0 - m) }, sum = e.reduce(0, +)
                for k in 0..<classes { teacher[s * classes + k] = Float(e[k] / sum) }
            }
            return DistillationData(features: features, teacher: teacher, count: n)
        }
        return (make(counts.0), make(counts.1))
    }
}
