// What-if exit selection on recorded analyses (issue 16): choose exits and thresholds on one set
// of frames with a given rule and measure the cascade on frames it never saw. Used by the
// guarantee experiment (selfxit-honest guarantee) to repeat the selection over many seeded
// splits without retraining the heads.

/// One selection and its outcome on unseen frames.
public struct ExitSelectionTrial: Sendable {
    /// Chosen exits (candidate indices) and their thresholds.
    public let active: [Int]
    public let thresholds: [Float]
    /// Agreement with the full model on the selection frames and on the unseen frames.
    public let selectionAgreement: Double
    public let unseenAgreement: Double
    /// On the unseen frames: mean FLOPs per frame relative to the full model, and the share of
    /// frames answered by an exit.
    public let unseenFLOPsRatio: Double
    public let unseenExitShare: Double
}

extension Engine {
    /// Chooses exits among the trained ones (thresholds by `rule`, subset by FLOPs saved, as
    /// `updateExits` does) from `selection` (`analyze` output), and runs that cascade on `unseen`.
    /// - Throws: `wrongState` with no trained exits; `invalidArgument` for empty or foreign
    ///   analyses, a tolerance outside (0, 1) or a bad rule.
    public func trialExitSelection(selection: [ExitAnalysis], unseen: [ExitAnalysis], tolerance: Double,
                                   rule: ExitThresholdRule) throws -> ExitSelectionTrial {
        guard let configuration = exitConfiguration, !configuration.trained.isEmpty else {
            throw SelfXitError.wrongState("no exits are trained: call updateExits first")
        }
        let trained = configuration.trained
        func record(_ analyses: [ExitAnalysis]) throws -> ExitValidationRecord {
            guard !analyses.isEmpty else { throw SelfXitError.invalidArgument("no analyses given") }
            var confidence = Array(repeating: [Float](), count: trained.count)
            var predicted = Array(repeating: [Int](), count: trained.count)
            for analysis in analyses {
                guard analysis.exits.count == trained.count else {
                    throw SelfXitError.invalidArgument("an analysis has \(analysis.exits.count) exits; this engine has \(trained.count) trained")
                }
                for (e, prediction) in analysis.exits.enumerated() {
                    confidence[e].append(prediction.classIndex < 0 ? -.infinity : prediction.confidence)
                    predicted[e].append(prediction.classIndex)
                }
            }
            return ExitValidationRecord(backboneClass: analyses.map(\.backboneClass), confidence: confidence, predictedClass: predicted)
        }
        let costs = ExitCosts(headFLOPs: trained.map(\.head.flops), savedFLOPs: trained.map(\.candidate.flopsAfter), backboneFLOPs: backboneFLOPs)
        let chosen = try ExitPolicy.select(try record(selection), costs: costs, tolerance: tolerance, rule: rule)
        let result = ExitPolicy.cascade(try record(unseen), costs: costs, active: chosen.active, thresholds: chosen.thresholds)
        return ExitSelectionTrial(active: chosen.active.map { trained[$0].candidateIndex }, thresholds: chosen.thresholds,
                                  selectionAgreement: chosen.result.agreement, unseenAgreement: result.agreement,
                                  unseenFLOPsRatio: result.meanFLOPs / Double(max(backboneFLOPs, 1)),
                                  unseenExitShare: Double(unseen.count - result.finalCount) / Double(unseen.count))
    }
}
