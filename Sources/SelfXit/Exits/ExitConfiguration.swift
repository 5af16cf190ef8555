/// The exits an engine serves with: immutable once built, swapped in whole, so inference
/// never sees a half-updated set.
final class ExitConfiguration: @unchecked Sendable {
    struct Exit {
        /// Position among the engine's exit candidates.
        let candidateIndex: Int
        let candidate: Graph.ExitCandidate
        let head: ExitHead
        let threshold: Float
    }

    /// All trained exits (depth order); `active` are those the subset selection kept.
    let trained: [Exit]
    let active: [Exit]
    let report: ExitBuildReport

    init(trained: [Exit], active: [Exit], report: ExitBuildReport) {
        self.trained = trained
        self.active = active
        self.report = report
    }
}
