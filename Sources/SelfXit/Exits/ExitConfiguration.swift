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
    /// (ExitPolicy+Watched); nil for builds without watched classes and for exit bundles that do
    /// not record guards (format 1, or built without watched classes): then, with watched
    /// classes, an exit never answers a frame as not watched (no evidence it would not hide one).
    let watch: [Int: ExitWatchGuard]?
    /// The watched classes `watch` was chosen for (the build's, or those an exit bundle of
    /// format 2 recorded); nil: none recorded — the engine's options then say what is watched,
    /// and without guards no exit answers a frame as not watched.
    let watched: [WatchedClass]?

    init(trained: [Exit], active: [Exit], report: ExitBuildReport, watch: [Int: ExitWatchGuard]? = nil, watched: [WatchedClass]? = nil) {
        self.trained = trained
        self.active = active
        self.report = report
        self.watch = watch
        self.watched = watched
    }
}
