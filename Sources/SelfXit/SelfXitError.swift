/// Every failure the engine reports. Messages name the node, tensor or argument involved so a
/// host can log them as they are.
public enum SelfXitError: Error, Equatable, CustomStringConvertible {
    /// A caller passed an argument that cannot be used (empty batch, wrong length, bad option).
    case invalidArgument(String)
    /// A file could not be read or written.
    case io(String)
    /// The model file is damaged, truncated, or not a valid ONNX graph.
    case invalidModel(String)
    /// The model uses an operator (or an operator variant) the engine does not implement.
    case unsupportedOperator(op: String, node: String, detail: String)
    /// Tensor shapes do not fit together (in the model or in a caller's input).
    case shapeMismatch(String)
    /// The engine is not in a state where the call makes sense (e.g. no exits built yet).
    case wrongState(String)
    /// Something the engine should have prevented; a bug.
    case internalError(String)
    /// Data that is not a model is unusable: an undecodable or oversized image, an exit bundle
    /// that is damaged, forged, of another format or made for another model.
    case invalidData(String)
    /// Valid ONNX that the reader does not handle (external tensor data, sparse initializers,
    /// string tensors …): reported like an unsupported operator, not as a damaged model.
    case unsupportedModel(String)
    /// Memory (or a thread) the call needs could not be had: an allocation failed or the OS
    /// refused a thread. The engine stays usable; the call may succeed later or with less.
    case outOfMemory(String)
    /// The caller asked for the operation to stop (an exit build's progress handler answered
    /// `.cancel`); nothing it would have changed was changed.
    case cancelled(String)
    /// The engine is already doing what was asked for (e.g. a background exit build is running).
    case busy(String)

    public var description: String {
        switch self {
        case .invalidArgument(let m): return "invalid argument: \(m)"
        case .io(let m): return "I/O error: \(m)"
        case .invalidModel(let m): return "invalid model: \(m)"
        case .unsupportedOperator(let op, let node, let detail):
            return "unsupported operator '\(op)' at node '\(node)'" + (detail.isEmpty ? "" : ": \(detail)")
        case .shapeMismatch(let m): return "shape mismatch: \(m)"
        case .wrongState(let m): return "wrong state: \(m)"
        case .internalError(let m): return "internal error: \(m)"
        case .invalidData(let m): return "invalid data: \(m)"
        case .unsupportedModel(let m): return "unsupported ONNX model feature: \(m)"
        case .outOfMemory(let m): return "out of memory: \(m)"
        case .cancelled(let m): return "cancelled: \(m)"
        case .busy(let m): return "busy: \(m)"
        }
    }
}
