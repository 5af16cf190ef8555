import FoundationEssentials
import Glibc

/// Running statistics of an engine's inference: samples, where they left, FLOPs, and the
/// latency from submission to callback. Latencies are kept in a fixed ring (the most recent
/// `latencyWindow` samples) so memory stays bounded on an endless stream. Thread-safe.
final class EngineStatistics: @unchecked Sendable {
    struct Snapshot {
        var samples = 0
        /// Samples answered by each exit candidate (index = candidate position).
        var exitCounts: [Int]
        /// Samples answered by the backbone's classifier.
        var backboneCount = 0
        var totalFLOPs = 0.0
        /// Latency percentiles in seconds over the recent window (0 when empty).
        var latencyP50 = 0.0, latencyP95 = 0.0, latencyP99 = 0.0
        var meanFLOPs: Double { samples == 0 ? 0 : totalFLOPs / Double(samples) }
    }

    private let lock = PosixLock()
    private var state: Snapshot
    private var latencies: [Double]
    private var latencyCount = 0
    let latencyWindow: Int

    init(candidates: Int, latencyWindow: Int = 8192) {
        state = Snapshot(exitCounts: Array(repeating: 0, count: candidates))
        self.latencyWindow = max(latencyWindow, 1)
        latencies = Array(repeating: 0, count: self.latencyWindow)
    }

    func record(exitIndex: Int, flops: Int, latency: Double) {
        lock.lock()
        defer { lock.unlock() }
        state.samples += 1
        if exitIndex >= 0 && exitIndex < state.exitCounts.count { state.exitCounts[exitIndex] += 1 } else { state.backboneCount += 1 }
        state.totalFLOPs += Double(flops)
        latencies[latencyCount % latencyWindow] = latency
        latencyCount += 1
    }

    func snapshot() -> Snapshot {
        lock.lock()
        var result = state
        // A fresh buffer, not a copy-on-write share of `state.exitCounts`: record() would then
        // decide under the lock, from the reader's reference count, whether it may write in
        // place, a hand-off ThreadSanitizer cannot see (Swift's runtime is not instrumented) and
        // reports as a race between sx_get_stats and a running sx_submit.
        result.exitCounts = state.exitCounts.map { $0 }
        let recent = Array(latencies.prefix(min(latencyCount, latencyWindow))).sorted()
        lock.unlock()
        if !recent.isEmpty {
            func percentile(_ p: Double) -> Double { recent[min(recent.count - 1, Int(p * Double(recent.count)))] }
            result.latencyP50 = percentile(0.50)
            result.latencyP95 = percentile(0.95)
            result.latencyP99 = percentile(0.99)
        }
        return result
    }

    func reset() {
        lock.lock()
        defer { lock.unlock() }
        state = Snapshot(exitCounts: Array(repeating: 0, count: state.exitCounts.count))
        latencyCount = 0
    }
}
