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
    /// Per active exit (by candidate index), the watched-class guard the build chose
    /// (ExitPolicy+Watched); nil for builds without watched classes and loaded bundles (then an
    /// exit never answers a frame as not watched: no evidence it would not hide one).
    let watch: [Int: ExitWatchGuard]?

    init(trained: [Exit], active: [Exit], report: ExitBuildReport, watch: [Int: ExitWatchGuard]? = nil) {
        self.trained = trained
        self.active = active
        self.report = report
        self.watch = watch
    }
}
