/// One sample's answer, delivered through the result callback the moment it is known.
public struct ExitResult {
    /// Index of the sample in the submitted batch.
    public let sampleIndex: Int
    /// Which exit answered: the position of the exit among the engine's exit candidates
    /// (depth order), or -1 for the backbone's own classifier.
    public let exitIndex: Int
    public let classIndex: Int
    /// Calibrated probability of `classIndex`.
    public let confidence: Float
    /// All class probabilities. Borrowed: valid only during the callback.
    public let probabilities: UnsafeBufferPointer<Float>
    /// FLOPs spent on this sample: backbone up to where it left, plus every head it passed.
    public let flops: Int
    /// Seconds from submission to this callback.
    public let latency: Double
    /// The sample's input held NaN/±inf (only accepted with `NonFiniteInputs.propagate`) or
    /// its output distribution is not finite (activations overflowed). Then `classIndex` is
    /// −1, `confidence` is 0, `exitIndex` is −1 (never an early exit) and `probabilities`
    /// hold what the model computed (NaN where ONNX Runtime gives NaN).
    public let nonFinite: Bool
    /// Which kind of callback this is (watched classes and the all-exits mode give a sample
    /// more than one; see `ExitResult.Kind`). `.answer` for every result of a plain classifier.
    public var kind: Kind = .answer

    public enum Kind: Sendable, Equatable {
        /// The sample's one, final answer (from an exit or the full model).
        case answer
        /// An exit judged the sample to hold a watched class (`classIndex`): a warning, sent at
        /// once; the full model still runs and a `.confirmation` follows.
        case warning
        /// The full model's final answer for a sample that was warned of (it confirms the
        /// warning when `classIndex` is the warned class, else the warning was a false alarm).
        case confirmation
        /// All-exits mode: one exit's prediction (best so far); more follow, then an `.answer`.
        case exitPrediction
    }

    /// Whether this is the sample's last callback.
    public var isFinal: Bool { kind == .answer || kind == .confirmation }
}

/// What every exit head predicts for one sample, with the backbone's answer (the
/// all-exits analysis mode: no shrinking, nothing leaves early).
public struct ExitAnalysis {
    public struct Prediction: Equatable {
        public let exitIndex: Int
        public let classIndex: Int
        public let confidence: Float
        /// Whether the confidence reaches the exit's threshold (the sample would leave here).
        public let wouldExit: Bool
    }
    public let sampleIndex: Int
    public let exits: [Prediction]
    public let backboneClass: Int
    public let backboneConfidence: Float
}
