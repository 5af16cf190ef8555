// Eq. 3: the confidence threshold of an exit from the tolerated accuracy drop T.

extension ExitPolicy {
    /// Eq. 3: the threshold for the exit at 1-based position `n` in the active set.
    ///
    /// With N validation samples, `HR(θ)·(1 − CA(θ)) = W(θ)/N` where `W(θ)` counts the samples with
    /// `conf ≥ θ` whose predicted class differs from the backbone's. The exit gets the lowest θ among
    /// the observed confidences (and `+infinity`, "never exits") such that
    /// `HR(θ')·(1 − CA(θ')) ≤ T / 2^n` for θ and for EVERY observed θ' ≥ θ.
    ///
    /// Why the "for every higher θ'" variant: the condition as a function of θ is not assumed
    /// monotone by the rule (CA(θ) alone is not monotone — raising θ can drop correct samples and
    /// lower CA), and requiring it only at θ could pick a θ below a violating region, which would
    /// make the exit's behaviour hinge on an isolated lucky point. Requiring it on the whole upper
    /// set is the safe choice: any threshold the exit might drift to (upwards) also meets the
    /// budget. For this particular product the two variants coincide, since `W(θ)` is
    /// non-increasing in θ, so the safer rule costs nothing; the implementation nevertheless scans
    /// from the top and stops at the first violation, so it realises the safe rule literally.
    ///
    /// The comparison is `W ≤ (T / 2^n)·N` with a relative slack of 1e-12 so that budgets that are
    /// exact in decimal (T = 0.2, N = 10 → 1 sample) are not lost to binary rounding.
    /// Samples whose confidence is NaN never exit but still count in N. Empty input → `+infinity`.
    /// Ties: θ equal to an observed value lets every sample with that confidence exit.
    ///
    /// - Precondition: equal lengths, `n ≥ 1`, `tolerance` in (0, 1).
    static func threshold(confidence: [Float], predicted: [Int], backbone: [Int], tolerance: Double,
                          position n: Int) -> Float {
        precondition(n >= 1, "position is 1-based")
        return thresholds(confidence: confidence, predicted: predicted, backbone: backbone,
                          tolerance: tolerance, maxPosition: n)[n - 1]
    }

    /// Eq. 3 thresholds for positions `1...maxPosition` (element `n − 1` is position n); one sort.
    static func thresholds(confidence: [Float], predicted: [Int], backbone: [Int], tolerance: Double,
                           maxPosition: Int) -> [Float] {
        precondition(confidence.count == predicted.count && confidence.count == backbone.count,
                     "confidence, predicted and backbone must have equal lengths")
        precondition(tolerance > 0 && tolerance < 1, "tolerance must lie in (0, 1)")
        precondition(maxPosition >= 0)
        let sampleCount = confidence.count
        guard sampleCount > 0, maxPosition > 0 else { return Array(repeating: .infinity, count: maxPosition) }

        // Distinct confidences, descending, with the cumulative count of wrong samples at or above.
        let order = confidence.indices.filter { !confidence[$0].isNaN }
            .sorted { confidence[$0] > confidence[$1] }
        var levels: [Float] = []
        var wrongAtOrAbove: [Int] = []
        var wrong = 0
        var k = 0
        while k < order.count {
            let value = confidence[order[k]]
            while k < order.count && confidence[order[k]] == value {
                if predicted[order[k]] != backbone[order[k]] { wrong += 1 }
                k += 1
            }
            levels.append(value)
            wrongAtOrAbove.append(wrong)
        }

        var result: [Float] = []
        result.reserveCapacity(maxPosition)
        for n in 1...maxPosition {
            // Budget in samples; 2^n via exponent (exact for any n, underflows to 0 harmlessly).
            let allowed = tolerance * Double(sign: .plus, exponent: -n, significand: 1) * Double(sampleCount)
            let limit = allowed * (1 + 1e-12)
            // Scan θ downwards from the top; keep the last level before the first violation.
            var chosen = Float.infinity
            for g in levels.indices {
                if Double(wrongAtOrAbove[g]) <= limit { chosen = levels[g] } else { break }
            }
            result.append(chosen)
        }
        return result
    }
}
