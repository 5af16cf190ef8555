import FoundationEssentials
import Glibc

/// How one active or warning exit treats watched classes (chosen on validation by
/// `ExitPolicy.watchGuards`).
public struct ExitWatchGuard: Sendable, Equatable, Codable {
    public var candidateIndex: Int
    /// The exit may answer a frame as a class that is not watched only at this confidence or
    /// above (on top of its tolerance threshold); +inf: refused — on validation it would hide
    /// more watched frames than the miss budget allows at any threshold, or validation held no
    /// frame of a watched class to tell.
    public var safeThreshold: Float
    /// Per watched class (same order as the engine's `watched`), the confidence at which this
    /// exit warns of it; +inf: it is not among that class's warning exits (`warningExits`).
    public var warnThresholds: [Float]
    /// On validation, this exit alone, at these thresholds: watched frames it would hide (per
    /// watched class, over that class's frames), warnings it would raise on frames of other
    /// classes (over those frames: the false-warning rate a stream without the class should
    /// see) and watched frames it would warn of (recall).
    public var hiddenRate: [Double]
    public var falseWarningRate: [Double]
    public var warningRecall: [Double]
    public var refused: Bool { !safeThreshold.isFinite }
}

extension ExitPolicy {
    /// The class-asymmetric safety rule (issue 12): for the n-th active exit (1-based, depth
    /// order), the lowest threshold at which, on all N validation samples, the frames of each
    /// watched class w it would answer as another class number at most
    /// k_w (N_w: validation frames the teacher calls w), where k_w is the largest count that
    /// still *certifies* a hidden rate below b = missBudget_w / 2^n at 95 % confidence:
    /// P(Binomial(N_w, b) ≤ k_w) ≤ 0.05 (a one-sided exact binomial test). The 2^n split is
    /// Eq. 3's, so over the cascade the hidden rate of w stays within missBudget_w.
    ///
    /// Why a test and not the point estimate ⌊b · N_w⌋: on the pedestrian clip (issue 12) exits
    /// whose validation frames hid no pedestrian at all hid 10 % of the test's pedestrian frames
    /// (later scenes, near-duplicate validation frames): zero misses among 170 frames says little
    /// about a 0.25 % rate. With k_w = 0 the test needs N_w ≥ ln 0.05 / ln(1 − b) (≈ 1200 frames
    /// of w for b = 0.25 %); with fewer, the exit is refused every non-watched answer — it still
    /// warns, and the full model answers.
    /// Warnings are chosen on their own terms (`warningExits`): with a given warn threshold the
    /// active exits warn at it; otherwise any trained exit may warn, active or not. Guards come
    /// back for the active exits and the warning exits, in depth order; an exit that is not
    /// active never answers (its guard's safe threshold is +inf), and an exit that does not warn
    /// of w has warn threshold +inf for it. The safety rule above is unchanged: its 2^n split
    /// counts positions among the *active* exits only.
    static func watchGuards(teacherClass: [Int], confidence: [[Float]], predicted: [[Int]], candidateIndex: [Int],
                            active: [Int], watched: [WatchedClass], tolerance: Double, costs: ExitCosts? = nil) -> [ExitWatchGuard] {
        let n = teacherClass.count
        let watchedSet = Set(watched.map(\.classIndex))
        // Per watched class, the warning exits (trained positions) and their thresholds.
        let warning: [[Int: Float]] = watched.map { w in
            if let given = w.warnThreshold { return Dictionary(uniqueKeysWithValues: active.map { ($0, given) }) }
            return warningExits(teacherClass: teacherClass, confidence: confidence, predicted: predicted, watchedClass: w.classIndex,
                                budget: w.warningBudget ?? tolerance, active: active, costs: costs)
        }
        let activePosition = Dictionary(uniqueKeysWithValues: active.enumerated().map { ($1, $0) })
        let listed = Set(active).union(warning.flatMap(\.keys)).sorted()
        return listed.map { exit in
            guard let position = activePosition[exit] else {
                // A warning exit that is not active: warns, never answers.
                return guardOf(exit: exit, safe: .infinity, warn: warning.map { $0[exit] ?? .infinity }, teacherClass: teacherClass,
                               confidence: confidence, predicted: predicted, candidateIndex: candidateIndex, watched: watched)
            }
            let split = Double(1 << min(position + 1, 60))
            var safe: Float = 0
            for w in watched {
                let framesOfW = (0..<n).filter { teacherClass[$0] == w.classIndex }
                // Confidences of this exit's non-watched answers on frames of w, largest first.
                let hidden = framesOfW.filter { !watchedSet.contains(predicted[exit][$0]) && predicted[exit][$0] >= 0 }
                    .map { confidence[exit][$0] }.sorted(by: >)
                if framesOfW.isEmpty {
                    safe = .infinity
                } else {
                    if let allowed = certifiedMisses(frames: framesOfW.count, rate: w.missBudget / split) {
                        if hidden.count > allowed { safe = max(safe, hidden[allowed].nextUp) }
                    } else {
                        safe = .infinity
                    }
                }
            }
            if safe > 1 { safe = .infinity }
            return guardOf(exit: exit, safe: safe, warn: warning.map { $0[exit] ?? .infinity }, teacherClass: teacherClass,
                           confidence: confidence, predicted: predicted, candidateIndex: candidateIndex, watched: watched)
        }
    }

    /// One exit's guard with its validation rates at the given safe and warn thresholds.
    private static func guardOf(exit: Int, safe: Float, warn: [Float], teacherClass: [Int], confidence: [[Float]], predicted: [[Int]],
                                candidateIndex: [Int], watched: [WatchedClass]) -> ExitWatchGuard {
        let n = teacherClass.count
        let watchedSet = Set(watched.map(\.classIndex))
        var hiddenRate: [Double] = [], falseRate: [Double] = [], recall: [Double] = []
        for (k, w) in watched.enumerated() {
            let framesOfW = (0..<n).filter { teacherClass[$0] == w.classIndex }
            let others = n - framesOfW.count
            let falseCount = (0..<n).filter { predicted[exit][$0] == w.classIndex && confidence[exit][$0] >= warn[k]
                && teacherClass[$0] != w.classIndex }.count
            let warnedCount = framesOfW.filter { predicted[exit][$0] == w.classIndex && confidence[exit][$0] >= warn[k] }.count
            let hiddenCount = framesOfW.filter { !watchedSet.contains(predicted[exit][$0]) && predicted[exit][$0] >= 0
                && confidence[exit][$0] >= safe }.count
            falseRate.append(others == 0 ? 0 : Double(falseCount) / Double(others))
            recall.append(framesOfW.isEmpty ? 0 : Double(warnedCount) / Double(framesOfW.count))
            hiddenRate.append(framesOfW.isEmpty ? 0 : Double(hiddenCount) / Double(framesOfW.count))
        }
        return ExitWatchGuard(candidateIndex: candidateIndex[exit], safeThreshold: safe, warnThresholds: warn,
                              hiddenRate: hiddenRate, falseWarningRate: falseRate, warningRecall: recall)
    }

    /// Warning exits for watched class w, chosen on their own terms (not only among the exits
    /// the cascade keeps for early answers). Rule:
    ///  1. Candidates: every trained exit that finishes before the full model — the backbone
    ///     FLOPs before it plus the heads run up to it (the active exits' and the chosen warning
    ///     exits' at or before it) stay below the full backbone's FLOPs (`costs`; nil: all do).
    ///  2. Budget split, mirroring Eq. 3 (T/2^n at the n-th exit): with warning budget W (the
    ///     option `WatchedClass.warningBudget`, default the tolerance T), the n-th warning exit in
    ///     depth order (n = 1, 2, …, among the chosen warning exits) warns at the lowest
    ///     confidence at which it raises false warnings (it says w, the teacher does not) on at
    ///     most W/2^n · N of the N validation frames — `thresholds` (Eq. 3's own code) on the
    ///     exit's predictions of w. Σ_n W/2^n < W, so the cascade's false warnings on validation
    ///     total at most W · N whatever the exits' overlap; the rate over the frames without w
    ///     is then at most W · N / (N − N_w).
    ///  3. Subset, as Eq. 4 chooses the active exits by what they save: among all subsets of the
    ///     candidates (the 14 with the best recall alone when there are more), the one whose
    ///     warnings at those thresholds cover the most validation frames of w; ties: the
    ///     earliest warnings (least backbone FLOPs to the first warning, summed over the warned
    ///     frames), then fewer exits. Exits that add no warned frame therefore never take a
    ///     position (and halve the budget of the exits after them).
    /// Returns trained position → warn threshold (empty when no exit warns of any frame of w).
    static func warningExits(teacherClass: [Int], confidence: [[Float]], predicted: [[Int]], watchedClass w: Int,
                             budget: Double, active: [Int], costs: ExitCosts?) -> [Int: Float] {
        let n = teacherClass.count
        let exits = confidence.count
        guard n > 0, exits > 0, budget > 0, budget < 1 else { return [:] }
        let framesOfW = (0..<n).filter { teacherClass[$0] == w }
        guard !framesOfW.isEmpty else { return [:] }
        let isW = teacherClass.map { $0 == w ? 1 : 0 }
        func flopsBefore(_ e: Int) -> Int { costs.map { $0.backboneFLOPs - $0.savedFLOPs[e] } ?? 0 }
        func head(_ e: Int) -> Int { costs?.headFLOPs[e] ?? 0 }
        let backbone = costs?.backboneFLOPs ?? Int.max
        var candidates = (0..<exits).filter { flopsBefore($0) + head($0) < backbone }
        guard !candidates.isEmpty else { return [:] }
        // thresholdAt[e][p]: exit e's warn threshold at 1-based warning position p + 1. Only its
        // predictions of w count (others NaN: never warn, still in N), "wrong" = teacher is not w.
        let positions = min(candidates.count, 14)
        var thresholdAt = [[Float]](repeating: [], count: exits)
        for e in candidates {
            let conf = (0..<n).map { predicted[e][$0] == w ? confidence[e][$0] : Float.nan }
            thresholdAt[e] = thresholds(confidence: conf, predicted: (0..<n).map { _ in 1 }, backbone: isW, tolerance: budget,
                                        maxPosition: positions)
        }
        if candidates.count > 14 {
            let alone = { (e: Int) in framesOfW.filter { predicted[e][$0] == w && confidence[e][$0] >= thresholdAt[e][0] }.count }
            candidates = Array(candidates.sorted { alone($0) > alone($1) }.prefix(14)).sorted()
        }
        let activeSet = Set(active)
        var best: (covered: Int, flops: Double, count: Int, mask: Int) = (0, 0, 0, 0)
        for mask in 1..<(1 << candidates.count) {
            let chosen = candidates.indices.filter { mask & (1 << $0) != 0 }.map { candidates[$0] }
            // Finishes before the full model, counting every head run up to each chosen exit.
            var inTime = true
            for e in chosen {
                let heads = (0...e).filter { activeSet.contains($0) || chosen.contains($0) }.reduce(0) { $0 + head($1) }
                if flopsBefore(e) + heads >= backbone { inTime = false; break }
            }
            guard inTime else { continue }
            var covered = 0
            var flops = 0.0
            for f in framesOfW {
                for (p, e) in chosen.enumerated() where predicted[e][f] == w && confidence[e][f] >= thresholdAt[e][p] {
                    covered += 1
                    flops += Double(flopsBefore(e))
                    break
                }
            }
            let better = covered > best.covered || (covered == best.covered && covered > 0
                && (flops < best.flops || (flops == best.flops && chosen.count < best.count)))
            if better { best = (covered, flops, chosen.count, mask) }
        }
        guard best.covered > 0 else { return [:] }
        let chosen = candidates.indices.filter { best.mask & (1 << $0) != 0 }.map { candidates[$0] }
        return Dictionary(uniqueKeysWithValues: chosen.enumerated().map { ($1, thresholdAt[$1][$0]) })
    }

    /// The largest k with P(Binomial(frames, rate) ≤ k) ≤ `alpha` (observing at most k misses
    /// among `frames` certifies a miss rate below `rate` at confidence 1 − alpha), or nil when
    /// not even k = 0 does (too few frames).
    static func certifiedMisses(frames: Int, rate: Double, alpha: Double = 0.05) -> Int? {
        guard frames > 0, rate > 0, rate < 1 else { return nil }
        let n = Double(frames)
        var logTerm = n * log1p(-rate)          // log P(X = 0)
        var cdf = exp(logTerm)
        guard cdf <= alpha else { return nil }
        var k = 0
        while k < frames {
            // P(X = k+1) = P(X = k) · (n − k)/(k + 1) · rate/(1 − rate)
            logTerm += log((n - Double(k)) / Double(k + 1)) + log(rate) - log1p(-rate)
            let next = cdf + exp(logTerm)
            if next > alpha { break }
            cdf = next
            k += 1
        }
        return k
    }

    /// The record subset selection sees when classes are watched: a prediction of a watched
    /// class never ends a sample's run (it warns, the full model confirms), so it saves nothing.
    static func maskingWatched(_ record: ExitValidationRecord, watched: Set<Int>) -> ExitValidationRecord {
        let confidence = zip(record.confidence, record.predictedClass).map { row, classes in
            zip(row, classes).map { watched.contains($1) ? 0 : $0 }
        }
        return ExitValidationRecord(backboneClass: record.backboneClass, confidence: confidence, predictedClass: record.predictedClass)
    }
}
