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
