/// Errors from reading a model file.
///
/// Every message names the field (and, where known, the node, tensor or value) involved
/// and, for wire-format problems, the absolute byte offset in the input.
package enum ModelLoadError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The input ends inside a field (or a length runs past the end of its enclosing message).
    case truncated(String)
    /// Bad wire type, bad varint, invalid UTF-8, element-count mismatch, negative dims, missing graph, ...
    case malformed(String)
    /// Valid ONNX that this reader does not handle: external tensor data, sparse initializers,
    /// string/complex/float8 tensor payloads, segmented tensors, ...
    case unsupported(String)
    /// The file could not be read.
    case io(String)

    package var description: String {
        switch self {
        case .truncated(let m): return "truncated ONNX model: \(m)"
        case .malformed(let m): return "malformed ONNX model: \(m)"
        case .unsupported(let m): return "unsupported ONNX model: \(m)"
        case .io(let m): return "cannot read ONNX model: \(m)"
        }
    }

    /// The message without the category prefix.
    package var message: String {
        switch self {
        case .truncated(let m), .malformed(let m), .unsupported(let m), .io(let m): return m
        }
    }

    /// The engine-level error: legal ONNX this reader does not implement (external data, sparse
    /// initializers, string tensors, …) is `unsupportedOperator`; everything else about the
    /// file's content is `invalidModel`; a read failure is `io`.
    public var asSelfXitError: SelfXitError {
        switch self {
        case .truncated, .malformed: return .invalidModel(description)
        case .unsupported(let m): return .unsupportedModel(m)
        case .io: return .io(description)
        }
    }

    /// The same error with `context` prepended to its message ("context: message").
    func inContext(_ context: String) -> ModelLoadError {
        switch self {
        case .truncated(let m): return .truncated("\(context): \(m)")
        case .malformed(let m): return .malformed("\(context): \(m)")
        case .unsupported(let m): return .unsupported("\(context): \(m)")
        case .io(let m): return .io("\(context): \(m)")
        }
    }
}
