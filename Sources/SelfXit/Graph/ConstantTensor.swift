/// A tensor whose value is known at load time: an initializer, a `Constant` node, or the
/// result of folding a shape sub-graph.
///
/// Shape sub-graphs in PyTorch/TF exports (Shape → Gather → Concat → Reshape …) mention the
/// batch size, which is only known at run time. Such int64 elements are marked in
/// `batchSymbolic`: they stand for "the batch size" and may be moved around (Gather, Slice,
/// Concat, Unsqueeze, Cast) but not computed with.
struct ConstantTensor: Equatable {
    enum Storage: Equatable {
        case float([Float])
        case int64([Int64])
    }

    var shape: [Int]
    var storage: Storage
    /// Per element: true where the value is the (symbolic) batch size. Empty when none is.
    var batchSymbolic: [Bool] = []

    init(shape: [Int], floats: [Float]) {
        self.shape = shape
        self.storage = .float(floats)
    }

    init(shape: [Int], ints: [Int64], batchSymbolic: [Bool] = []) {
        self.shape = shape
        self.storage = .int64(ints)
        self.batchSymbolic = batchSymbolic.contains(true) ? batchSymbolic : []
    }

    /// Element count. Shapes are validated (`checkedElementCount`) where tensors enter the
    /// importer, so the product cannot overflow; wrapping arithmetic keeps it trap-free anyway.
    var count: Int { uncheckedProduct(shape) }
    /// Number of stored values (equal to `count` for a well-formed tensor).
    var storedCount: Int {
        switch storage {
        case .float(let v): return v.count
        case .int64(let v): return v.count
        }
    }
    var isSymbolic: Bool { !batchSymbolic.isEmpty }
    func isBatch(_ index: Int) -> Bool { !batchSymbolic.isEmpty && batchSymbolic[index] }

    /// The values as floats (int64 converted).
    var floats: [Float] {
        switch storage {
        case .float(let values): return values
        case .int64(let values): return values.map { Float($0) }
        }
    }

    /// The values as int64 (floats truncated toward zero, as ONNX Cast does).
    var ints: [Int64] {
        switch storage {
        case .int64(let values): return values
        case .float(let values):
            return values.map { $0.isFinite ? Int64(exactly: $0.rounded(.towardZero)) ?? 0 : 0 }
        }
    }

    var isFloat: Bool { if case .float = storage { return true } else { return false } }
}

extension ConstantTensor {
    init(_ tensor: ONNXTensor) throws {
        switch tensor.data {
        case .float(let values): self.init(shape: tensor.dims, floats: values)
        case .int64(let values): self.init(shape: tensor.dims, ints: values)
        }
        try checkConsistent { "tensor '\(tensor.name)'" }
    }

    /// Throws `invalidModel` unless the shape is valid (no negative dimension, no overflowing
    /// product) and the stored values (and batch marks) match it. Every constant the importer
    /// keeps passes this check, so later code may index it by its shape without bounds worries.
    func checkConsistent(_ what: () -> String) throws {
        guard let expected = checkedElementCount(shape) else {
            throw SelfXitError.invalidModel("\(what()) has an invalid or overflowing shape \(shape)")
        }
        guard expected == storedCount, batchSymbolic.isEmpty || batchSymbolic.count == expected else {
            throw SelfXitError.invalidModel("\(what()) has \(storedCount) values for shape \(shape)")
        }
    }
}
