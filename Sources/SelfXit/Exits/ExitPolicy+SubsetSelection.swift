// Eq. 4: choosing the subset of candidate exits that saves the most computation on validation.

extension ExitPolicy {
    /// Precomputed state for scoring subsets: Eq. 3 thresholds and exit bitsets for every
    /// (exit e, position k ≤ e) pair — the k-th active exit (0-based) gets budget T / 2^(k+1).
    struct SubsetSearch {
        let record: ExitValidationRecord
        let costs: ExitCosts
        let tolerance: Double
        let criterion: Criterion
        let accuracyGuard: Bool
        let exitCount: Int
        let evaluator: CascadeEvaluator
        /// `thresholdTable[e][k]`: threshold of exit e at 0-based position k (k ≤ e).
        let thresholdTable: [[Float]]
        /// Flat bitsets; `maskOffset[e][k]` is where exit e's mask for position k starts.
        let masks: [UInt64]
        let maskOffset: [[Int]]

        init(record: ExitValidationRecord, costs: ExitCosts, tolerance: Double, criterion: Criterion,
             accuracyGuard: Bool, rule: ExitThresholdRule = .point) {
            self.record = record
            self.costs = costs
            self.tolerance = tolerance
            self.criterion = criterion
            self.accuracyGuard = accuracyGuard
            exitCount = record.exitCount
            evaluator = CascadeEvaluator(record: record, costs: costs)
            var table: [[Float]] = []
            var masks: [UInt64] = []
            var offsets: [[Int]] = []
            for e in 0..<record.exitCount {
                // In depth order exit e can be at most the (e+1)-th active exit.
                let row = ExitPolicy.thresholds(confidence: record.confidence[e], predicted: record.predictedClass[e],
                                                backbone: record.backboneClass, tolerance: tolerance,
                                                maxPosition: e + 1, rule: rule,
                                                pairDelta: ExitPolicy.pairDelta(rule, exits: record.exitCount))
                table.append(row)
                var rowOffsets: [Int] = []
                var cache: [Float: Int] = [:]  // equal thresholds share one mask
                for theta in row {
                    if let offset = cache[theta] { rowOffsets.append(offset); continue }
                    rowOffsets.append(masks.count)
                    cache[theta] = masks.count
                    masks += CascadeEvaluator.exitMask(record.confidence[e], threshold: theta)
                }
                offsets.append(rowOffsets)
            }
            thresholdTable = table
            self.masks = masks
            maskOffset = offsets
        }

        /// Runs the cascade for `active` (ascending) into `scratch`; returns the criterion's score
        /// and whether the subset passes the accuracy guard.
        func evaluate(_ active: [Int], offsets: inout [Int], scratch: inout CascadeEvaluator.Scratch)
            -> (score: Int, feasible: Bool) {
            offsets.removeAll(keepingCapacity: true)
            for (k, e) in active.enumerated() { offsets.append(maskOffset[e][k]) }
            masks.withUnsafeBufferPointer { evaluator.run(active: active, masks: $0, offsets: offsets, scratch: &scratch) }
            let score = criterion == .flopsSaved
                ? evaluator.flopsSaved(active: active, scratch: scratch)
                : evaluator.kScore(active: active, scratch: scratch)
            return (score, passesGuard(misses: evaluator.totalMisses(scratch)))
        }

        /// Agreement ≥ 1 − T, i.e. misses ≤ T·N (same rounding slack as Eq. 3).
        func passesGuard(misses: Int) -> Bool {
            guard accuracyGuard else { return true }
            return Double(misses) <= tolerance * Double(evaluator.sampleCount) * (1 + 1e-12)
        }

        func makeSelection(_ active: [Int], evaluated: Int) -> Selection {
            let thresholds = active.enumerated().map { thresholdTable[$0.element][$0.offset] }
            return Selection(active: active, thresholds: thresholds,
                             result: ExitPolicy.cascade(record, costs: costs, active: active, thresholds: thresholds),
                             evaluatedSubsets: evaluated)
        }

        /// All 2^m subsets (m ≤ 62), enumerated by bitmask (bit e = candidate e).
        func exhaustive() -> Selection {
            precondition(exitCount < 63)
            var scratch = CascadeEvaluator.Scratch(exits: exitCount, words: evaluator.wordCount)
            var offsets: [Int] = []
            offsets.reserveCapacity(exitCount)
            var active: [Int] = []
            active.reserveCapacity(exitCount)
            var bestScore = 0, bestCount = 0, bestMask = 0  // the empty set: score 0, always feasible
            let subsetCount = 1 << exitCount
            for mask in 1..<subsetCount {
                active.removeAll(keepingCapacity: true)
                var bits = mask
                while bits != 0 {
                    active.append(bits.trailingZeroBitCount)
                    bits &= bits - 1
                }
                let (score, feasible) = evaluate(active, offsets: &offsets, scratch: &scratch)
                guard feasible else { continue }
                if score > bestScore || (score == bestScore && active.count < bestCount) {
                    bestScore = score
                    bestCount = active.count
                    bestMask = mask
                }
            }
            let best = (0..<exitCount).filter { bestMask & (1 << $0) != 0 }
            return makeSelection(best, evaluated: subsetCount)
        }

        /// Greedy forward selection, then drop/add local search until a full pass changes nothing.
        /// Deterministic: candidates are tried in index order and only strict improvements (or a drop
        /// at equal score) are accepted, so ties go to the lower index / fewer exits. Terminates
        /// because (score, −|S|) strictly increases with every accepted move.
        func heuristic() -> Selection {
            var scratch = CascadeEvaluator.Scratch(exits: exitCount, words: evaluator.wordCount)
            var offsets: [Int] = []
            var inSet = Array(repeating: false, count: exitCount)
            var currentScore = 0
            var evaluated = 1  // the empty set
            func members(_ flags: [Bool]) -> [Int] { flags.indices.filter { flags[$0] } }

            // Forward selection: add the best exit while the score strictly rises.
            while true {
                var bestExit = -1, bestScore = currentScore
                for e in 0..<exitCount where !inSet[e] {
                    inSet[e] = true
                    let (score, feasible) = evaluate(members(inSet), offsets: &offsets, scratch: &scratch)
                    inSet[e] = false
                    evaluated += 1
                    if feasible && score > bestScore { bestScore = score; bestExit = e }
                }
                guard bestExit >= 0 else { break }
                inSet[bestExit] = true
                currentScore = bestScore
            }

            // Local search: toggle each exit in turn; keep improvements (or equal-score drops).
            var changed = true
            while changed {
                changed = false
                for e in 0..<exitCount {
                    inSet[e].toggle()
                    let (score, feasible) = evaluate(members(inSet), offsets: &offsets, scratch: &scratch)
                    evaluated += 1
                    if feasible && (score > currentScore || (score == currentScore && !inSet[e])) {
                        currentScore = score
                        changed = true
                    } else {
                        inSet[e].toggle()
                    }
                }
            }
            return makeSelection(members(inSet), evaluated: evaluated)
        }
    }
}
