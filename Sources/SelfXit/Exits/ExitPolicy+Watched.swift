import FoundationEssentials

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
    /// ⌊missBudget_w / 2^n · N_w⌋ (N_w: validation frames the teacher calls w). The 2^n split is
    /// Eq. 3's, so over the cascade the hidden frames of w stay within missBudget_w · N_w.
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
                    let allowed = Int((w.missBudget / split * Double(framesOfW.count)).rounded(.down))
                    if hidden.count > allowed { safe = max(safe, hidden[allowed].nextUp) }
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

    /// The record subset selection sees when classes are watched: a prediction of a watched
    /// class never ends a sample's run (it warns, the full model confirms), so it saves nothing.
    static func maskingWatched(_ record: ExitValidationRecord, watched: Set<Int>) -> ExitValidationRecord {
        let confidence = zip(record.confidence, record.predictedClass).map { row, classes in
            zip(row, classes).map { watched.contains($1) ? 0 : $0 }
        }
        return ExitValidationRecord(backboneClass: record.backboneClass, confidence: confidence, predictedClass: record.predictedClass)
    }
}
