#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Options of an exit build (`Engine.updateExits`).
public struct ExitBuildOptions: Sendable {
    /// Tolerated drop in agreement with the full model, T in (0, 1) (paper Eq. 3).
    public var tolerance: Double
    /// Architecture-search trials per candidate layer (paper §3.2.1), ≥ 1.
    public var searchBudget: Int
    public var seed: UInt64
    /// Memory the build may hold for recorded activations of one candidate layer; samples
    /// beyond it are left out of the build.
    public var memoryBudgetBytes: Int
    /// Shares of the collected samples used to train heads, to calibrate and select
    /// (validation), and to report held-out statistics (test). Paper: 50/20/30.
    public var trainFraction: Double
    public var validationFraction: Double
    /// Fewest collected samples a build accepts.
    public var minimumSamples: Int
    /// Full-training epochs of the chosen head per candidate.
    public var epochs: Int
    /// Receives progress lines on long steps (nil: silent).
    public var progress: (@Sendable (String) -> Void)?
    /// Receives where the build stands (fraction done, stage, message) on the calling thread, at
    /// every stage boundary and, while a stage runs, about ten times a second; returning
    /// `.cancel` ends the build with `SelfXitError.cancelled` within a fraction of a second
    /// (checked between training mini-batches and backbone chunks), the engine keeping the exits
    /// it had. The last call has stage `.done`, fraction 1, after the new exits are in service;
    /// its answer is ignored. nil: no reports, no cancel.
    public var onProgress: (@Sendable (ExitBuildProgress) -> ExitBuildDecision)?
    /// Split the collected samples in the order they were recorded (train first, then
    /// validation, then test) instead of shuffling: for a video stream, whose neighbouring
    /// frames are near-duplicates, a shuffled split would validate on copies of training frames.
    /// (With more samples than the collector holds, reservoir sampling already mixed them.)
    public var keepOrder: Bool = false
    /// How thresholds are chosen: the paper's point rule (default) or with a (1−δ) guarantee
    /// (`ExitThresholdRule.guaranteed`, issue 16).
    public var thresholdRule: ExitThresholdRule = .point
    /// What the subset search minimises: FLOPs (default, the paper's cost) or the time this
    /// machine measured for each segment and head during the build (`ExitCostModel`).
    public var costModel: ExitCostModel = .flops
    /// Kernel threads the build uses (1…the engine's threads); nil: all the engine's. A
    /// background build with 1 thread leaves the other cores to inference.
    public var threads: Int? = nil

    public init(tolerance: Double = 0.01, searchBudget: Int = 4, seed: UInt64 = 0, memoryBudgetBytes: Int = 2 << 30,
                trainFraction: Double = 0.5, validationFraction: Double = 0.2, minimumSamples: Int = 200, epochs: Int = 30,
                progress: (@Sendable (String) -> Void)? = nil,
                onProgress: (@Sendable (ExitBuildProgress) -> ExitBuildDecision)? = nil) {
        self.tolerance = tolerance
        self.searchBudget = searchBudget
        self.seed = seed
        self.memoryBudgetBytes = memoryBudgetBytes
        self.trainFraction = trainFraction
        self.validationFraction = validationFraction
        self.minimumSamples = minimumSamples
        self.epochs = epochs
        self.progress = progress
        self.onProgress = onProgress
    }

    func validated() throws -> ExitBuildOptions {
        guard tolerance > 0, tolerance < 1 else { throw SelfXitError.invalidArgument("tolerance must be in (0, 1), got \(tolerance)") }
        guard searchBudget >= 1 else { throw SelfXitError.invalidArgument("searchBudget must be at least 1, got \(searchBudget)") }
        guard memoryBudgetBytes > 0 else { throw SelfXitError.invalidArgument("memoryBudgetBytes must be positive, got \(memoryBudgetBytes)") }
        guard trainFraction > 0, validationFraction > 0, trainFraction + validationFraction <= 1 else {
            throw SelfXitError.invalidArgument("train/validation fractions must be positive and sum to at most 1")
        }
        guard minimumSamples >= 10 else { throw SelfXitError.invalidArgument("minimumSamples must be at least 10") }
        guard (1...1000).contains(epochs) else { throw SelfXitError.invalidArgument("epochs must be in 1...1000") }
        _ = try thresholdRule.validated()
        if let threads, threads < 1 { throw SelfXitError.invalidArgument("build threads must be at least 1, got \(threads)") }
        return self
    }
}

/// Where an exit build stands (`ExitBuildOptions.onProgress`).
public struct ExitBuildProgress: Sendable, Equatable {
    /// The steps of a build, in order; `activations`, `search` and `train` repeat per candidate layer.
    public enum Stage: String, Sendable, CaseIterable {
        /// Checking and splitting the collected samples.
        case prepare
        /// Running the backbone up to the next candidate layer.
        case activations
        /// Brief training of the candidate head architectures.
        case search
        /// Full training and calibration of the chosen head.
        case train
        /// Thresholds, subset selection and held-out statistics.
        case select
        /// The new exits are in service (fraction 1).
        case done
    }
    /// Share of the build done, in [0, 1], never decreasing within one build.
    public var fraction: Double
    public var stage: Stage
    /// What the build is doing, for a log line (e.g. "candidate 2 'x' [64, 7, 7]: trial 3/4").
    public var message: String

    public init(fraction: Double, stage: Stage, message: String) {
        self.fraction = fraction; self.stage = stage; self.message = message
    }
}

/// A progress handler's answer: go on, or cancel the build.
public enum ExitBuildDecision: Sendable {
    case proceed
    case cancel
}

/// Calls an exit build's progress handler and turns its `.cancel` into `SelfXitError.cancelled`.
/// Used on the build's own thread only. `poll` is the throttled form for inner loops.
final class ExitBuildMonitor {
    private let handler: (@Sendable (ExitBuildProgress) -> ExitBuildDecision)?
    private var fraction = 0.0
    private var stage = ExitBuildProgress.Stage.prepare
    private var message = ""
    private var lastCall: UInt64 = 0
    /// Inner loops call the handler at most this often (nanoseconds): often enough that a cancel
    /// is seen within a fraction of a second, rarely enough to cost nothing.
    static let pollInterval: UInt64 = 100_000_000

    init(_ handler: (@Sendable (ExitBuildProgress) -> ExitBuildDecision)?) { self.handler = handler }

    var isActive: Bool { handler != nil }

    /// Reports a stage boundary (always calls the handler). Throws `.cancelled` if it answers `.cancel`.
    func report(_ stage: ExitBuildProgress.Stage, _ fraction: Double, _ message: String) throws {
        self.stage = stage
        self.message = message
        try call(fraction)
    }

    /// Within the current stage: calls the handler only if `pollInterval` passed since the last call.
    func poll(_ fraction: Double) throws {
        guard handler != nil, monotonicNanoseconds() &- lastCall >= Self.pollInterval else { return }
        try call(fraction)
    }

    /// The final report (stage `.done`, fraction 1); the answer is ignored, the build being complete.
    func finish(_ message: String) {
        guard let handler else { return }
        fraction = 1
        _ = handler(ExitBuildProgress(fraction: 1, stage: .done, message: message))
    }

    private func call(_ value: Double) throws {
        guard let handler else { return }
        // Clamped so the handler never sees a step back (e.g. early stopping skips epochs forward,
        // never back) nor 1 before the build is complete.
        let clamped = value.isFinite ? min(max(value, fraction), 0.999) : fraction
        fraction = clamped
        lastCall = monotonicNanoseconds()
        if handler(ExitBuildProgress(fraction: clamped, stage: stage, message: message)) == .cancel {
            throw SelfXitError.cancelled("exit build cancelled by the progress handler during \(stage.rawValue)"
                                         + (message.isEmpty ? "" : " (\(message))") + "; the previous exits stay in service")
        }
    }
}

private func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// What an exit build did, per candidate layer and overall.
public struct ExitBuildReport: Sendable, Codable {
    public struct Exit: Sendable, Codable {
        public var candidateIndex: Int
        public var tensor: String
        public var shape: [Int]
        /// Chosen head architecture, or nil when the candidate was discarded (near chance).
        public var architecture: String?
        public var headFLOPs: Int
        /// Bytes of the head's parameters.
        public var headBytes: Int
        /// Backbone FLOPs a sample leaving here does not spend.
        public var savedFLOPs: Int
        public var threshold: Float
        public var temperature: Float
        public var active: Bool
        /// Agreement of the head's argmax with the backbone on validation (all samples).
        public var validationAgreement: Double
        /// Held-out (test split) hit rate and agreement with the backbone, in the cascade.
        public var testHitRate: Double
        public var testAgreement: Double
        /// Guaranteed rule only: the (1−δ') Clopper–Pearson upper bound of this exit's
        /// HR·(1−CA) on validation at its threshold (≤ its budget T/2^n when active).
        public var riskUpperBound: Double? = nil
        /// In the validation cascade: frames that left here and of those, frames that disagree
        /// with the backbone (the live guard starts from these, issue 16).
        public var validationExits: Int? = nil
        public var validationMisses: Int? = nil
        /// Measured on this machine during the build: seconds per sample of the backbone
        /// segment from the previous candidate to this one, and of this exit's head.
        public var segmentSeconds: Double? = nil
        public var headSeconds: Double? = nil
    }
    public var exits: [Exit]
    public var samples: Int
    public var trainSamples: Int
    public var validationSamples: Int
    public var testSamples: Int
    /// On the test split with the selected exits: agreement with the full model and mean
    /// FLOPs per sample relative to the backbone.
    public var testAgreement: Double
    public var testFLOPsRatio: Double
    public var seconds: Double
    /// With watched classes: the guard of each active exit and of each warning exit (an exit
    /// that warns without being active: safe threshold +inf) and its validation rates (hidden,
    /// false-warning, recall); nil otherwise.
    public var watch: [ExitWatchGuard]? = nil
    /// The tolerance T of the build and how thresholds were chosen ("point" or "guaranteed").
    public var tolerance: Double? = nil
    public var thresholdRule: String? = nil
    /// Guaranteed rule: δ, and the disagreement bound T·(1 − 2^−k) (k active exits) that holds
    /// on the traffic the samples came from with probability ≥ 1 − δ.
    public var guaranteeDelta: Double? = nil
    public var guaranteedDisagreement: Double? = nil
    /// "flops" or "measured": what the subset search minimised; with "measured", the
    /// held-out time per sample relative to the full model (FLOPs ratio beside it).
    public var costModel: String? = nil
    public var testTimeRatio: Double? = nil
    /// Seconds per sample of the full backbone, as measured during the build.
    public var backboneSeconds: Double? = nil
    /// Exits loaded from a bundle: its format, and what it lacks (e.g. a format-1 bundle has no
    /// watched classes or guards, Engine+ExitBundle.swift); nil for built exits.
    public var bundleFormat: Int? = nil
    public var bundleNote: String? = nil
}
