/// SelfXit: a CPU inference engine for ONNX classifiers with unsupervised early exits.
public enum SelfXit {
    /// The library's semantic version.
    public static let version = "0.1.0"
}
