import FoundationEssentials
import Glibc

/// How one active exit treats watched classes (chosen on validation by `ExitPolicy.watchGuards`).
public struct ExitWatchGuard: Sendable, Equatable, Codable {
    public var candidateIndex: Int
    /// The exit may answer a frame as a class that is not watched only at this confidence or
    /// above (on top of its tolerance threshold); +inf: refused — on validation it would hide
    /// more watched frames than the miss budget allows at any threshold, or validation held no
    /// frame of a watched class to tell.
    public var safeThreshold: Float
    /// Per watched class (same order as the engine's `watched`), the confidence at which this
    /// exit warns of it.
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
    /// Warn thresholds: the given one, else the lowest at which false warnings of w (the exit
    /// says w, the teacher does not) stay within `tolerance · N`.
    static func watchGuards(teacherClass: [Int], confidence: [[Float]], predicted: [[Int]], candidateIndex: [Int],
                            active: [Int], watched: [WatchedClass], tolerance: Double) -> [ExitWatchGuard] {
        let n = teacherClass.count
        let watchedSet = Set(watched.map(\.classIndex))
        return active.enumerated().map { position, exit in
            let split = Double(1 << min(position + 1, 60))
            var safe: Float = 0
            var hiddenRate: [Double] = [], falseRate: [Double] = [], recall: [Double] = [], warn: [Float] = []
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
                // Warn threshold: the lowest confidence whose false warnings fit tolerance · N.
                let threshold: Float
                if let given = w.warnThreshold {
                    threshold = given
                } else {
                    let falseWarnings = (0..<n).filter { predicted[exit][$0] == w.classIndex && teacherClass[$0] != w.classIndex }
                        .map { confidence[exit][$0] }.sorted(by: >)
                    let allowed = Int((tolerance * Double(n)).rounded(.down))
                    threshold = falseWarnings.count > allowed ? falseWarnings[allowed].nextUp : 0
                }
                warn.append(threshold)
                let others = n - framesOfW.count
                let falseCount = (0..<n).filter { predicted[exit][$0] == w.classIndex && confidence[exit][$0] >= threshold
                    && teacherClass[$0] != w.classIndex }.count
                let warnedCount = framesOfW.filter { predicted[exit][$0] == w.classIndex && confidence[exit][$0] >= threshold }.count
                falseRate.append(others == 0 ? 0 : Double(falseCount) / Double(others))
                recall.append(framesOfW.isEmpty ? 0 : Double(warnedCount) / Double(framesOfW.count))
                hiddenRate.append(0)
            }
            if safe > 1 { safe = .infinity }
            // Hidden rate at the chosen safe threshold.
            for (k, w) in watched.enumerated() {
                let framesOfW = (0..<n).filter { teacherClass[$0] == w.classIndex }
                let hiddenCount = framesOfW.filter { !watchedSet.contains(predicted[exit][$0]) && predicted[exit][$0] >= 0
                    && confidence[exit][$0] >= safe }.count
                hiddenRate[k] = framesOfW.isEmpty ? 0 : Double(hiddenCount) / Double(framesOfW.count)
            }
            return ExitWatchGuard(candidateIndex: candidateIndex[exit], safeThreshold: safe, warnThresholds: warn,
                                  hiddenRate: hiddenRate, falseWarningRate: falseRate, warningRecall: recall)
        }
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
