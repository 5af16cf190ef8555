import Glibc

// Thresholds with a guarantee (issue 16, point 4): instead of the paper's point rule (Eq. 3,
// "HR·(1−CA) ≤ T/2^n on the validation frames"), each threshold is chosen so that a one-sided
// (1−δ') Clopper–Pearson upper confidence bound of HR·(1−CA) stays within T/2^n.
//
// Why this is a guarantee and not a heuristic:
//  - For a fixed θ, W(θ) (validation frames with conf ≥ θ whose class differs from the backbone's)
//    is Binomial(N, r(θ)) with r(θ) = P(conf ≥ θ, disagree) = HR(θ)·(1−CA(θ)) on the traffic the
//    validation frames are drawn from. The exact binomial (Clopper–Pearson) upper bound U(W, N)
//    satisfies P(r(θ) > U(W(θ), N)) ≤ δ'.
//  - θ is picked by scanning from the top and stopping at the first θ whose bound exceeds the
//    budget. r(θ) is non-increasing in θ, so this is fixed-sequence testing (Angelopoulos et al.,
//    "Learn then Test", 2021): the chosen θ's risk exceeds the budget with probability ≤ δ'
//    without any correction for the scan.
//  - The subset search may use any (exit e, position n) pair, so δ' = δ / (number of pairs)
//    (Bonferroni). Then with probability ≥ 1 − δ every active exit n has r ≤ T/2^n, and since a
//    frame's cascade misses at exit n are a subset of that exit's wrong frames above θ, the
//    cascade's expected disagreement with the full model is ≤ Σ T/2^n = T·(1 − 2^−k) < T.

/// How each exit's confidence threshold is chosen from the validation frames.
public enum ExitThresholdRule: Sendable, Equatable {
    /// The paper's Eq. 3 on point estimates: `HR·(1−CA) ≤ T/2^n` on the validation frames.
    case point
    /// `U_δ'(HR·(1−CA)) ≤ T/2^n` with U the Clopper–Pearson upper bound and δ' = δ over the
    /// (exit, position) pairs the subset search may use; δ in (0, 1), default 0.05.
    case guaranteed(delta: Double)

    public static let defaultDelta = 0.05

    var name: String {
        switch self {
        case .point: return "point"
        case .guaranteed: return "guaranteed"
        }
    }

    func validated() throws -> ExitThresholdRule {
        if case .guaranteed(let delta) = self, !(delta > 0 && delta < 1) {
            throw SelfXitError.invalidArgument("threshold guarantee delta must lie in (0, 1), got \(delta)")
        }
        return self
    }
}

/// Exact binomial confidence bounds (Clopper–Pearson), by bisection on the binomial CDF.
enum BinomialBound {
    /// P(X ≤ x) for X ~ Binomial(n, p), summed in log space (exact to ~1e-12 for n ≤ 10^7).
    static func cdf(_ x: Int, _ n: Int, _ p: Double) -> Double {
        if x < 0 { return 0 }
        if x >= n { return 1 }
        if p <= 0 { return 1 }
        if p >= 1 { return 0 }
        let lgamma: (Double) -> Double = Glibc.lgamma
        let logP = log(p), logQ = log1p(-p), logNFact = lgamma(Double(n) + 1)
        var sum = 0.0
        for k in 0...x {
            let kk = Double(k)
            sum += exp(logNFact - lgamma(kk + 1) - lgamma(Double(n) - kk + 1) + kk * logP + (Double(n) - kk) * logQ)
        }
        return min(sum, 1)
    }

    /// One-sided (1−δ) upper bound on p after `x` successes in `n` trials: the p with
    /// P(X ≤ x; n, p) = δ (1 when x == n; for x = 0 it is 1 − δ^(1/n)). n = 0 → 1.
    static func upper(successes x: Int, trials n: Int, delta: Double) -> Double {
        guard n > 0 else { return 1 }
        if x >= n { return 1 }
        if x == 0 { return 1 - pow(delta, 1 / Double(n)) }
        var lo = Double(x) / Double(n), hi = 1.0
        for _ in 0..<80 {
            let mid = (lo + hi) / 2
            if cdf(x, n, mid) > delta { lo = mid } else { hi = mid }
        }
        return hi
    }

    /// One-sided (1−δ) lower bound: the p with P(X ≥ x; n, p) = δ (0 when x == 0).
    static func lower(successes x: Int, trials n: Int, delta: Double) -> Double {
        guard n > 0, x > 0 else { return 0 }
        return 1 - upper(successes: n - x, trials: n, delta: delta)
    }
}

extension ExitPolicy {
    /// δ' of one (exit, position) pair: δ over the number of pairs the subset search may use
    /// (exit e can hold positions 1…e+1, so m(m+1)/2 pairs for m exits).
    static func perPairDelta(_ delta: Double, exits m: Int) -> Double {
        delta / Double(max(1, m * (m + 1) / 2))
    }

    /// The largest count of wrong frames w (out of n) whose (1−δ) upper bound stays within
    /// `budget`; −1 when even w = 0 does not (too few frames for the budget: the exit never fires).
    static func allowedWrong(frames n: Int, budget: Double, delta: Double) -> Int {
        var w = -1
        while w + 1 <= n, BinomialBound.upper(successes: w + 1, trials: n, delta: delta) <= budget { w += 1 }
        return w
    }

    /// Thresholds for positions `1...maxPosition` under `rule` (element n − 1 is position n).
    /// `.point` is `thresholds(...)` (Eq. 3); `.guaranteed` picks, per position, the lowest level
    /// whose wrong count (and every higher level's) stays within `allowedWrong`.
    static func thresholds(confidence: [Float], predicted: [Int], backbone: [Int], tolerance: Double,
                           maxPosition: Int, rule: ExitThresholdRule, pairDelta: Double) -> [Float] {
        guard case .guaranteed = rule else {
            return thresholds(confidence: confidence, predicted: predicted, backbone: backbone,
                              tolerance: tolerance, maxPosition: maxPosition)
        }
        precondition(confidence.count == predicted.count && confidence.count == backbone.count)
        let n = confidence.count
        guard n > 0, maxPosition > 0 else { return Array(repeating: .infinity, count: maxPosition) }
        let order = confidence.indices.filter { !confidence[$0].isNaN }.sorted { confidence[$0] > confidence[$1] }
        var levels: [Float] = [], wrongAtOrAbove: [Int] = []
        var wrong = 0, k = 0
        while k < order.count {
            let value = confidence[order[k]]
            while k < order.count && confidence[order[k]] == value {
                if predicted[order[k]] != backbone[order[k]] { wrong += 1 }
                k += 1
            }
            levels.append(value)
            wrongAtOrAbove.append(wrong)
        }
        return (1...maxPosition).map { position in
            let budget = tolerance * Double(sign: .plus, exponent: -position, significand: 1)
            let allowed = allowedWrong(frames: n, budget: budget, delta: pairDelta)
            var chosen = Float.infinity
            for g in levels.indices {
                if wrongAtOrAbove[g] <= allowed { chosen = levels[g] } else { break }
            }
            return chosen
        }
    }

    /// The (1−δ') upper bound of HR·(1−CA) of one exit at threshold θ on the validation frames.
    static func riskUpperBound(confidence: [Float], predicted: [Int], backbone: [Int], threshold: Float, delta: Double) -> Double {
        var wrong = 0
        for i in confidence.indices where confidence[i] >= threshold && predicted[i] != backbone[i] { wrong += 1 }
        return BinomialBound.upper(successes: wrong, trials: confidence.count, delta: delta)
    }
}

extension ExitPolicy {
    /// δ' for `rule` with m candidate exits (0 for the point rule: unused).
    static func pairDelta(_ rule: ExitThresholdRule, exits m: Int) -> Double {
        if case .guaranteed(let delta) = rule { return perPairDelta(delta, exits: m) }
        return 0
    }
}

/// What the subset search counts as an exit's cost (issue 16, point 5).
public enum ExitCostModel: Sendable, Equatable {
    /// FLOPs (the paper's C1, C2).
    case flops
    /// Seconds per sample measured on this machine during the build: each backbone segment
    /// between candidates (at the build's chunk of 64 rows, or maxBatch if smaller) and each
    /// head (on the validation split in one batch).
    case measured
}

extension ExitCosts {
    /// Measured seconds per sample as integer picoseconds, in the FLOPs slots: C1 = the head's
    /// time, C2 = the backbone time after the exit (`backbone − reach`).
    static func measured(head: [Double], reach: [Double], backbone: Double) -> ExitCosts {
        func ps(_ seconds: Double) -> Int { max(0, Int((seconds * 1e12).rounded())) }
        let total = ps(backbone)
        return ExitCosts(headFLOPs: head.map(ps), savedFLOPs: reach.map { min(total, max(0, total - ps($0))) }, backboneFLOPs: total)
    }
}
