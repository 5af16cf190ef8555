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

    public init(tolerance: Double = 0.01, searchBudget: Int = 4, seed: UInt64 = 0, memoryBudgetBytes: Int = 2 << 30,
                trainFraction: Double = 0.5, validationFraction: Double = 0.2, minimumSamples: Int = 200, epochs: Int = 30,
                progress: (@Sendable (String) -> Void)? = nil) {
        self.tolerance = tolerance
        self.searchBudget = searchBudget
        self.seed = seed
        self.memoryBudgetBytes = memoryBudgetBytes
        self.trainFraction = trainFraction
        self.validationFraction = validationFraction
        self.minimumSamples = minimumSamples
        self.epochs = epochs
        self.progress = progress
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
        return self
    }
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
}
