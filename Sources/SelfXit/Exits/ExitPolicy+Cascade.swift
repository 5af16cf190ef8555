// The cascade: each sample leaves at the first active exit whose confidence reaches its threshold.
// Evaluated with per-exit bitsets over the samples so that thousands of subsets are cheap.

extension ExitPolicy {
    /// Runs the cascade of `active` exits (candidate indices, strictly ascending = depth order) with
    /// `thresholds` (one per active exit; a sample leaves at exit e when `conf ≥ θ`) over the record.
    ///
    /// Per sample FLOPs = Σ C1 of every head it evaluated (including heads where it did not exit)
    /// + backbone FLOPs up to where it left (`backboneFLOPs − C2` of its exit, or all of them).
    ///
    /// - Precondition: consistent lengths (as `select` validates), `active` strictly ascending and in
    ///   range, `thresholds.count == active.count`.
    static func cascade(_ record: ExitValidationRecord, costs: ExitCosts, active: [Int],
                        thresholds: [Float]) -> CascadeResult {
        precondition(active.count == thresholds.count, "one threshold per active exit")
        precondition(zip(active, active.dropFirst()).allSatisfy { $0 < $1 }, "active exits must be strictly ascending")
        precondition(active.allSatisfy { $0 >= 0 && $0 < record.exitCount }, "active exit out of range")
        precondition(costs.headFLOPs.count == record.exitCount && costs.savedFLOPs.count == record.exitCount,
                     "costs must cover every exit")
        for e in active {
            precondition(record.confidence[e].count == record.sampleCount
                         && record.predictedClass[e].count == record.sampleCount, "ragged record")
        }
        let evaluator = CascadeEvaluator(record: record, costs: costs)
        var masks: [UInt64] = []
        var offsets: [Int] = []
        for (e, theta) in zip(active, thresholds) {
            offsets.append(masks.count)
            masks += CascadeEvaluator.exitMask(record.confidence[e], threshold: theta)
        }
        var scratch = CascadeEvaluator.Scratch(exits: active.count, words: evaluator.wordCount)
        masks.withUnsafeBufferPointer { evaluator.run(active: active, masks: $0, offsets: offsets, scratch: &scratch) }
        return evaluator.result(active: active, scratch: scratch)
    }

    /// Bitset cascade over one record. Bit i of word i/64 stands for sample i.
    struct CascadeEvaluator {
        let sampleCount: Int
        let wordCount: Int
        let costs: ExitCosts
        /// All samples (trailing bits of the last word clear).
        let full: [UInt64]
        /// Flat `[exit][word]`: samples where the exit's prediction equals the backbone's.
        let correct: [UInt64]

        /// Counts of one run, indexed by position in `active`.
        struct Scratch {
            var remaining: [UInt64]
            var leave: [Int]
            var hits: [Int]
            var arrivals: [Int]
            var finalCount = 0
            var exitCount = 0
            init(exits: Int, words: Int) {
                remaining = Array(repeating: 0, count: words)
                leave = Array(repeating: 0, count: exits)
                hits = Array(repeating: 0, count: exits)
                arrivals = Array(repeating: 0, count: exits)
            }
        }

        init(record: ExitValidationRecord, costs: ExitCosts) {
            sampleCount = record.sampleCount
            wordCount = (sampleCount + 63) / 64
            self.costs = costs
            var full = Array(repeating: UInt64.max, count: wordCount)
            if sampleCount % 64 != 0 { full[wordCount - 1] = (UInt64(1) << UInt64(sampleCount % 64)) - 1 }
            self.full = full
            var correct = Array(repeating: UInt64(0), count: record.exitCount * wordCount)
            for e in 0..<record.exitCount {
                let predicted = record.predictedClass[e]
                for i in 0..<min(sampleCount, predicted.count) where predicted[i] == record.backboneClass[i] {
                    correct[e * wordCount + i >> 6] |= UInt64(1) << UInt64(i & 63)
                }
            }
            self.correct = correct
        }

        /// Samples with `confidence ≥ threshold` (NaN never qualifies; `+infinity` → none).
        static func exitMask(_ confidence: [Float], threshold: Float) -> [UInt64] {
            var mask = Array(repeating: UInt64(0), count: (confidence.count + 63) / 64)
            guard threshold < .infinity else { return mask }
            for i in confidence.indices where confidence[i] >= threshold {
                mask[i >> 6] |= UInt64(1) << UInt64(i & 63)
            }
            return mask
        }

        /// Runs the cascade; `masks[offsets[k] ..< offsets[k] + wordCount]` is the exit mask used at
        /// position k (exit `active[k]` with its threshold for that position).
        func run(active: [Int], masks: UnsafeBufferPointer<UInt64>, offsets: [Int], scratch: inout Scratch) {
            let words = wordCount
            scratch.exitCount = active.count
            var left = sampleCount
            scratch.remaining.withUnsafeMutableBufferPointer { remaining in
                full.withUnsafeBufferPointer { full in
                    correct.withUnsafeBufferPointer { correct in
                        for w in 0..<words { remaining[w] = full[w] }
                        for k in 0..<active.count {
                            let maskBase = offsets[k], correctBase = active[k] * words
                            var leaving = 0, hitting = 0
                            for w in 0..<words {
                                let out = remaining[w] & masks[maskBase + w]
                                leaving &+= out.nonzeroBitCount
                                hitting &+= (out & correct[correctBase + w]).nonzeroBitCount
                                remaining[w] = remaining[w] & ~out
                            }
                            scratch.arrivals[k] = left
                            scratch.leave[k] = leaving
                            scratch.hits[k] = hitting
                            left -= leaving
                        }
                    }
                }
            }
            scratch.finalCount = left
        }

        /// Exact saving `N·B − Σ_i flops_i = Σ_k leave_k·C2 − arrivals_k·C1`.
        func flopsSaved(active: [Int], scratch: Scratch) -> Int {
            var saved = 0
            for k in 0..<active.count {
                let e = active[k]
                saved += scratch.leave[k] * costs.savedFLOPs[e] - scratch.arrivals[k] * costs.headFLOPs[e]
            }
            return saved
        }

        /// Eq. 4 as written: `Σ_k |H_k|·(C2 − C1) − |M_k|·C1`.
        func kScore(active: [Int], scratch: Scratch) -> Int {
            var k = 0
            for p in 0..<active.count {
                let e = active[p]
                let misses = scratch.leave[p] - scratch.hits[p]
                k += scratch.hits[p] * (costs.savedFLOPs[e] - costs.headFLOPs[e]) - misses * costs.headFLOPs[e]
            }
            return k
        }

        func totalMisses(_ scratch: Scratch) -> Int {
            var misses = 0
            for k in 0..<scratch.exitCount { misses += scratch.leave[k] - scratch.hits[k] }
            return misses
        }

        func result(active: [Int], scratch: Scratch) -> CascadeResult {
            let count = active.count
            let leave = Array(scratch.leave.prefix(count))
            let hits = Array(scratch.hits.prefix(count))
            let misses = zip(leave, hits).map { $0 - $1 }
            let saved = flopsSaved(active: active, scratch: scratch)
            let n = Double(sampleCount)
            let totalFLOPs = Double(sampleCount) * Double(costs.backboneFLOPs) - Double(saved)
            return CascadeResult(
                exitCounts: leave, hits: hits, misses: misses, arrivals: Array(scratch.arrivals.prefix(count)),
                finalCount: scratch.finalCount,
                agreement: sampleCount == 0 ? 1 : Double(sampleCount - misses.reduce(0, +)) / n,
                meanFLOPs: sampleCount == 0 ? 0 : totalFLOPs / n,
                kScore: Double(kScore(active: active, scratch: scratch)),
                flopsSaved: Double(saved))
        }
    }
}
