// Exit policy: which candidate exits to keep and at which confidence thresholds (SelfXit, TMLR 2024,
// Eq. 3 and Eq. 4), decided from predictions recorded on a validation set. Pure Swift; no BLAS.
//
// Files:
//   ExitPolicy.swift                  types, input validation, `select`
//   ExitPolicy+Thresholds.swift       Eq. 3 (threshold from a tolerance)
//   ExitPolicy+Cascade.swift          bitset cascade evaluator, `cascade`
//   ExitPolicy+SubsetSelection.swift  Eq. 4 (exhaustive search, greedy + local search heuristic)

/// Predictions recorded on a validation set. Arrays are indexed `[exit][sample]`; exits are the
/// candidate exits in depth order (0-based here; the paper's 1-based position `n` is `e + 1`).
struct ExitValidationRecord: Sendable, Equatable {
    /// The backbone's predicted class (argmax of its final output) per sample.
    let backboneClass: [Int]
    /// `confidence[e][i]`: the calibrated confidence (max probability) of exit head `e` on sample `i`.
    let confidence: [[Float]]
    /// `predictedClass[e][i]`: the class exit head `e` predicts for sample `i`.
    let predictedClass: [[Int]]

    init(backboneClass: [Int], confidence: [[Float]], predictedClass: [[Int]]) {
        self.backboneClass = backboneClass
        self.confidence = confidence
        self.predictedClass = predictedClass
    }

    var sampleCount: Int { backboneClass.count }
    var exitCount: Int { confidence.count }
}

/// FLOPs per candidate exit (same order as the record's exits).
struct ExitCosts: Sendable, Equatable {
    /// C1: FLOPs of exit head `e` (paid by every sample that reaches the exit, leaving or not).
    let headFLOPs: [Int]
    /// C2: backbone FLOPs after exit `e`'s attachment point, saved by a sample that leaves there.
    let savedFLOPs: [Int]
    /// FLOPs of the full backbone for one sample.
    let backboneFLOPs: Int

    init(headFLOPs: [Int], savedFLOPs: [Int], backboneFLOPs: Int) {
        self.headFLOPs = headFLOPs
        self.savedFLOPs = savedFLOPs
        self.backboneFLOPs = backboneFLOPs
    }
}

enum ExitPolicy {
    /// Per-exit and overall statistics of a cascade run over the validation record.
    /// Per-exit arrays are indexed by position in `active` (not by candidate index).
    struct CascadeResult: Sendable, Equatable {
        /// Samples that left at each active exit (`hits + misses`).
        let exitCounts: [Int]
        /// |H|: samples that left at the exit and agree with the backbone.
        let hits: [Int]
        /// |M|: samples that left at the exit and disagree with the backbone.
        let misses: [Int]
        /// Samples that reached each active exit, i.e. evaluated its head (each pays C1 there).
        let arrivals: [Int]
        /// Samples that exited nowhere and were answered by the backbone's final classifier.
        let finalCount: Int
        /// Fraction of samples whose final answer equals the backbone's: `(N − Σ misses) / N`.
        let agreement: Double
        /// Mean FLOPs per sample: heads evaluated + backbone up to where the sample left.
        let meanFLOPs: Double
        /// The paper's Eq. 4 as written: `Σ |H|·(C2 − C1) − |M|·C1` (C1 charged to misses only).
        let kScore: Double
        /// True saving: `N·backboneFLOPs − Σ_i flops_i` (C1 charged to every head evaluated).
        let flopsSaved: Double
    }

    /// A chosen exit configuration.
    struct Selection: Sendable, Equatable {
        /// Chosen candidate exits, ascending (depth order). Empty: no exit pays off.
        let active: [Int]
        /// Threshold per active exit (Eq. 3 with the exit's 1-based position in `active`);
        /// `+infinity` means the exit never fires.
        let thresholds: [Float]
        /// The cascade on the validation record with this configuration.
        let result: CascadeResult
        /// How many subsets were evaluated (2^m for the exhaustive search, the empty set included).
        let evaluatedSubsets: Int
    }

    /// What `select` maximises.
    ///
    /// - `flopsSaved` (default): the exact saving `N·B − Σ_i flops_i`
    ///   `= Σ_Δ |H_Δ ∪ M_Δ|·C2_Δ − arrivals_Δ·C1_Δ`, where `arrivals_Δ` counts every sample that
    ///   evaluated head Δ — including the ones that went on past it.
    /// - `paperK`: Eq. 4 exactly as printed, `K(S) = Σ_Δ |H_Δ|·(C2_Δ − C1_Δ) − |M_Δ|·C1_Δ`.
    ///   It charges C1 only to samples that leave at Δ (hits pay it inside `C2 − C1`, misses pay it
    ///   explicitly) and ignores the head cost paid by samples that pass through Δ without leaving.
    ///   A subset of many cheap-to-reach but rarely-firing exits therefore looks free under K(S)
    ///   while really adding `pass-through × C1` FLOPs; `paperK` tends to keep more exits than pay
    ///   for themselves. (K(S) also does not credit misses with the C2 they save: K treats a miss as
    ///   a pure loss, a stand-in for the accuracy it costs.) Use it to reproduce the paper.
    enum Criterion: Sendable, Equatable { case flopsSaved, paperK }

    /// Exhaustive search is used up to this many candidates (2^12 = 4096 subsets).
    static let defaultMaxExhaustiveExits = 12

    /// Chooses the active exits and their thresholds (Eq. 3 per subset position, Eq. 4 objective).
    ///
    /// Thresholds are a function of the subset: the n-th active exit (1-based, depth order) gets the
    /// Eq. 3 threshold for budget `T / 2^n`, computed on all N validation samples for that exit alone.
    /// Each subset is scored by running the cascade on the record (samples removed by earlier exits
    /// are not counted at later ones).
    ///
    /// - Exhaustive over all `2^m` subsets when `m ≤ maxExhaustiveExits`; otherwise greedy forward
    ///   selection (add the exit that raises the score most while it rises), then drop/add local
    ///   search passes (toggle each exit in index order, keep a toggle if it strictly raises the
    ///   score) until a pass changes nothing. The first greedy step takes the best single exit, and
    ///   every later step only improves, so the result is never worse than the best single exit.
    /// - `accuracyGuard`: reject subsets whose validation agreement with the backbone is below
    ///   `1 − T` (evaluated as `Σ misses ≤ T·N`). With Eq. 3 thresholds the misses at the n-th exit
    ///   are at most `T/2^n · N` (they are a subset of that exit's wrong hits on all N samples), so
    ///   total misses stay below `T·N` and the guard only matters as a safety net (e.g. against the
    ///   rounding slack in the threshold comparison); it costs nothing.
    /// - Ties: higher score wins; equal scores prefer fewer exits, then the earlier subset in
    ///   enumeration order (bit e = candidate e, ascending). The empty set (score 0) is always
    ///   feasible, so `active` is empty when no subset saves anything.
    ///
    /// - Throws: `SelfXitError.invalidArgument` for a tolerance outside (0, 1) or NaN, no exits or
    ///   no samples, ragged arrays, non-finite confidences, or inconsistent / negative costs.
    static func select(_ record: ExitValidationRecord, costs: ExitCosts, tolerance: Double,
                       criterion: Criterion = .flopsSaved, accuracyGuard: Bool = true,
                       maxExhaustiveExits: Int = defaultMaxExhaustiveExits,
                       rule: ExitThresholdRule = .point) throws -> Selection {
        try validate(record, costs: costs)
        try validateTolerance(tolerance)
        guard maxExhaustiveExits >= 0 else {
            throw SelfXitError.invalidArgument("maxExhaustiveExits must be >= 0, got \(maxExhaustiveExits)")
        }
        let search = SubsetSearch(record: record, costs: costs, tolerance: tolerance,
                                  criterion: criterion, accuracyGuard: accuracyGuard, rule: try rule.validated())
        return record.exitCount <= maxExhaustiveExits ? search.exhaustive() : search.heuristic()
    }

    // MARK: Validation

    static func validateTolerance(_ tolerance: Double) throws {
        guard tolerance.isFinite, tolerance > 0, tolerance < 1 else {
            throw SelfXitError.invalidArgument("tolerance must lie in (0, 1), got \(tolerance)")
        }
    }

    static func validate(_ record: ExitValidationRecord, costs: ExitCosts) throws {
        let n = record.sampleCount, m = record.exitCount
        guard n > 0 else { throw SelfXitError.invalidArgument("validation record has no samples") }
        guard m > 0 else { throw SelfXitError.invalidArgument("validation record has no exits") }
        guard record.predictedClass.count == m else {
            throw SelfXitError.invalidArgument(
                "record has \(m) confidence rows but \(record.predictedClass.count) predicted-class rows")
        }
        for e in 0..<m {
            guard record.confidence[e].count == n else {
                throw SelfXitError.invalidArgument(
                    "confidence row of exit \(e) has \(record.confidence[e].count) samples, expected \(n)")
            }
            guard record.predictedClass[e].count == n else {
                throw SelfXitError.invalidArgument(
                    "predicted-class row of exit \(e) has \(record.predictedClass[e].count) samples, expected \(n)")
            }
            if let i = record.confidence[e].firstIndex(where: { !$0.isFinite }) {
                throw SelfXitError.invalidArgument(
                    "confidence of exit \(e), sample \(i) is not finite (\(record.confidence[e][i]))")
            }
        }
        guard costs.headFLOPs.count == m, costs.savedFLOPs.count == m else {
            throw SelfXitError.invalidArgument(
                "costs cover \(costs.headFLOPs.count) heads and \(costs.savedFLOPs.count) savings, expected \(m) each")
        }
        guard costs.backboneFLOPs >= 0 else {
            throw SelfXitError.invalidArgument("backboneFLOPs must be >= 0, got \(costs.backboneFLOPs)")
        }
        for e in 0..<m {
            guard costs.headFLOPs[e] >= 0 else {
                throw SelfXitError.invalidArgument("headFLOPs[\(e)] must be >= 0, got \(costs.headFLOPs[e])")
            }
            guard costs.savedFLOPs[e] >= 0, costs.savedFLOPs[e] <= costs.backboneFLOPs else {
                throw SelfXitError.invalidArgument(
                    "savedFLOPs[\(e)] = \(costs.savedFLOPs[e]) must lie in [0, backboneFLOPs = \(costs.backboneFLOPs)]")
            }
        }
    }
}
