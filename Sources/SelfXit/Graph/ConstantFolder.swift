import FoundationEssentials
import Glibc

/// Evaluates ONNX nodes whose inputs are all known at load time. This is what makes the
/// shape sub-graphs of PyTorch/TF exports (Shape → Gather → Concat → Reshape, timm-style
/// "same" padding arithmetic, ConstantOfShape, Cast …) disappear before planning.
///
/// Elements that stand for the batch size (`ConstantTensor.batchSymbolic`) may be moved by
/// the data-movement ops here; arithmetic on them is refused, since the result would depend
/// on the batch.
enum ConstantFolder {
    static let supportedOps: Set<String> = [
        "Identity", "Cast", "Shape", "Size", "Gather", "Slice", "Concat", "Unsqueeze", "Squeeze",
        "Reshape", "Flatten", "Transpose", "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Max", "Min",
        "Neg", "Abs", "Sqrt", "Ceil", "Floor", "Reciprocal", "Equal", "Less", "Greater", "Not",
        "Where", "ConstantOfShape", "Range", "Expand", "ReduceProd", "Dropout", "ScatterND",
    ]

    /// Work left to the folds of one import (elements they may still produce), so a chain of
    /// large folds cannot hold the import for minutes. See `ImportLimits`.
    struct Budget {
        var elementsLeft = ImportLimits.maxFoldWork
        /// Elements one tensor may have: `maxFoldElements` when folding at load time; the
        /// run-time tail allows more (`TailProgram.maxTensorElements`: a detector's ROI features).
        var maxElements = ImportLimits.maxFoldElements
        var atRunTime = false

        /// Charges `count` elements (before they are computed) or throws naming the node.
        mutating func charge(_ count: Int, _ node: ONNXNode) throws {
            guard count <= maxElements else {
                throw node.unsupported(atRunTime
                    ? "this node would produce \(count) elements at run time (limit \(maxElements))"
                    : "folding this node at load time would produce \(count) elements (limit \(maxElements))")
            }
            guard count <= elementsLeft else {
                throw node.unsupported("constant folding of this model exceeds \(ImportLimits.maxFoldWork) elements in all")
            }
            elementsLeft -= count
        }
    }

    /// Evaluates `node` on constant inputs (nil for an absent optional input). Every result is
    /// sized and charged to `budget` before it is allocated; the result is consistent (its
    /// values match its shape).
    static func evaluate(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int, budget: inout Budget) throws -> ConstantTensor {
        let result = try evaluateUnchecked(node, inputs, opset: opset, budget: &budget)
        try result.checkConsistent { "node '\(node.displayName)' (\(node.opType)): folded result" }
        return result
    }

    /// `evaluate` with a budget of its own (one fold, as in tests).
    static func evaluate(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int) throws -> ConstantTensor {
        var budget = Budget()
        return try evaluate(node, inputs, opset: opset, budget: &budget)
    }

    /// Element count of `shape` for a fold's output: checked, and charged to the budget.
    private static func outputCount(_ shape: [Int], _ node: ONNXNode, _ budget: inout Budget) throws -> Int {
        guard let count = checkedElementCount(shape) else {
            throw node.invalid("result shape \(shape) is invalid or its element count overflows")
        }
        try budget.charge(count, node)
        return count
    }

    private static func evaluateUnchecked(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int, budget: inout Budget) throws -> ConstantTensor {
        func input(_ index: Int) throws -> ConstantTensor {
            guard index < inputs.count, let tensor = inputs[index] else { throw node.invalid("missing input \(index)") }
            return tensor
        }
        func refuseSymbolic(_ tensors: [ConstantTensor]) throws {
            if tensors.contains(where: \.isSymbolic) {
                throw node.unsupported("arithmetic on the batch size (the model computes with its dynamic batch dimension)")
            }
        }
        switch node.opType {
        case "Identity", "Dropout":
            return try input(0)
        case "Cast":
            let x = try input(0)
            let to = try node.int("to", default: 1)
            switch to {
            case 1, 10, 11, 16: return ConstantTensor(shape: x.shape, floats: x.floats)
            case 9: return ConstantTensor(shape: x.shape, ints: x.ints.map { $0 != 0 ? 1 : 0 }, batchSymbolic: x.batchSymbolic)
            case 2, 3, 4, 5, 6, 7, 12, 13: return ConstantTensor(shape: x.shape, ints: x.ints, batchSymbolic: x.batchSymbolic)
            default: throw node.unsupported("cast to data type \(to)")
            }
        case "Shape":
            let x = try input(0)
            let dims = x.shape.map(Int64.init)
            let (start, end) = try shapeRange(node, rank: dims.count)
            return ConstantTensor(shape: [max(end - start, 0)], ints: Array(dims[start..<max(start, end)]))
        case "Size":
            return ConstantTensor(shape: [], ints: [Int64(try input(0).count)])
        case "Gather":
            return try gather(node, try input(0), try input(1), &budget)
        case "Slice":
            return try slice(node, inputs, opset: opset, &budget)
        case "Concat":
            let present = inputs.compactMap { $0 }
            guard let first = present.first else { throw node.invalid("no inputs") }
            guard !first.shape.isEmpty else { throw node.invalid("cannot concatenate scalars") }
            let axis = try normalizedAxis(try node.int("axis", default: 0), rank: first.shape.count, node)
            return try concat(present, axis: axis, node, &budget)
        case "Unsqueeze", "Squeeze", "Reshape", "Flatten":
            let x = try input(0)
            let shape = try reshapedShape(node, x, inputs, opset: opset)
            // Same values, new shape: the element count must not change.
            guard checkedElementCount(shape) == x.count else {
                throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot give \(x.count) elements of shape \(x.shape) the shape \(shape)")
            }
            return ConstantTensor(shape: shape, storage: x.storage, batchSymbolic: x.batchSymbolic)
        case "Transpose":
            return try transpose(node, try input(0), &budget)
        case "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Max", "Min", "Equal", "Less", "Greater":
            let present = inputs.compactMap { $0 }
            if node.opType == "Equal", present.count == 2, present.contains(where: \.isSymbolic) {
                return try equalWithBatch(node, present[0], present[1], &budget)
            }
            if ["Mul", "Div"].contains(node.opType), present.count == 2, present.contains(where: \.isSymbolic) {
                return try scaleBatch(node, present[0], present[1], &budget)
            }
            try refuseSymbolic(present)
            guard present.count >= 2 else { throw node.invalid("needs two inputs") }
            var result = try binary(node, present[0], present[1], &budget)
            for extra in present.dropFirst(2) { result = try binary(node, result, extra, &budget) }
            return result
        case "Neg", "Abs", "Sqrt", "Ceil", "Floor", "Reciprocal", "Not":
            let x = try input(0)
            try refuseSymbolic([x])
            try budget.charge(x.count, node)
            return unary(node.opType, x)
        case "Where":
            let (c, a, b) = (try input(0), try input(1), try input(2))
            // The batch size may pass through a Where (the exporter's `expand(n, -1, -1)`
            // picks between the wanted shape and the input's); only the condition must be known.
            try refuseSymbolic([c])
            if (a.isSymbolic || b.isSymbolic) && (a.isFloat || b.isFloat) { try refuseSymbolic([a, b]) }
            let shape = try broadcastShape(broadcastShape(c.shape, a.shape, node), b.shape, node)
            _ = try outputCount(shape, node, &budget)
            let ci = broadcastIndices(from: c.shape, to: shape), ai = broadcastIndices(from: a.shape, to: shape)
            let bi = broadcastIndices(from: b.shape, to: shape)
            let cond = c.ints
            if a.isFloat || b.isFloat {
                let (av, bv) = (a.floats, b.floats)
                return ConstantTensor(shape: shape, floats: (0..<ci.count).map { cond[ci[$0]] != 0 ? av[ai[$0]] : bv[bi[$0]] })
            }
            let (av, bv) = (a.ints, b.ints)
            let marks = (a.isSymbolic || b.isSymbolic)
                ? (0..<ci.count).map { cond[ci[$0]] != 0 ? a.isBatch(ai[$0]) : b.isBatch(bi[$0]) } : []
            return ConstantTensor(shape: shape, ints: (0..<ci.count).map { cond[ci[$0]] != 0 ? av[ai[$0]] : bv[bi[$0]] }, batchSymbolic: marks)
        case "ConstantOfShape":
            let shapeTensor = try input(0)
            try refuseSymbolic([shapeTensor])
            let shape = try checkedShape(shapeTensor.ints, node)
            let count = try outputCount(shape, node, &budget)
            if case .tensor(let value)? = node.attributes["value"] {
                let fill = try ConstantTensor(value)
                if fill.isFloat { return ConstantTensor(shape: shape, floats: Array(repeating: fill.floats.first ?? 0, count: count)) }
                return ConstantTensor(shape: shape, ints: Array(repeating: fill.ints.first ?? 0, count: count))
            }
            return ConstantTensor(shape: shape, floats: Array(repeating: 0, count: count))
        case "Range":
            let (start, limit, delta) = (try input(0), try input(1), try input(2))
            try refuseSymbolic([start, limit, delta])
            guard start.count == 1, limit.count == 1, delta.count == 1 else {
                throw node.invalid("start, limit and delta must be scalars")
            }
            if start.isFloat || limit.isFloat || delta.isFloat {
                let (s, l, d) = (start.floats[0], limit.floats[0], delta.floats[0])
                guard s.isFinite, l.isFinite, d.isFinite else { throw node.invalid("start \(s), limit \(l) and delta \(d) must be finite") }
                guard d != 0 else { throw node.invalid("delta is zero") }
                // In Double: the difference of two finite Floats and its quotient stay finite
                // or become ±inf, never NaN, and are compared before any conversion to Int.
                let steps = ((Double(l) - Double(s)) / Double(d)).rounded(.up)
                guard steps.isFinite, steps <= Double(ImportLimits.maxFoldElements) else {
                    throw node.unsupported("Range from \(s) to \(l) by \(d) has more than \(ImportLimits.maxFoldElements) elements")
                }
                let n = max(Int(steps), 0)
                try budget.charge(n, node)
                return ConstantTensor(shape: [n], floats: (0..<n).map { s + Float($0) * d })
            }
            let (s, l, d) = (start.ints[0], limit.ints[0], delta.ints[0])
            guard d != 0 else { throw node.invalid("delta is zero") }
            // Exact count ceil((l - s) / d) on magnitudes: l - s overflows Int64 at the limits,
            // but when the range is not empty it fits in UInt64.
            var count: UInt64 = 0
            if (d > 0 && l > s) || (d < 0 && l < s) {
                let span = d > 0 ? UInt64(bitPattern: l &- s) : UInt64(bitPattern: s &- l)
                let (q, r) = span.quotientAndRemainder(dividingBy: d.magnitude)
                count = q + (r == 0 ? 0 : 1)
            }
            guard count <= UInt64(ImportLimits.maxFoldElements) else {
                throw node.unsupported("Range from \(s) to \(l) by \(d) has more than \(ImportLimits.maxFoldElements) elements")
            }
            let n = Int(count)
            try budget.charge(n, node)
            // Every value lies between s and l, so none overflows; wrapping arithmetic all the same.
            return ConstantTensor(shape: [n], ints: (0..<n).map { s &+ Int64($0) &* d })
        case "Expand":
            let (x, shapeTensor) = (try input(0), try input(1))
            try refuseSymbolic([x])
            // The batch size as the leading target dimension (ViT's class token expanded over the
            // batch): the constant is the same for every sample, kept with a leading 1 (a Concat
            // with activations then broadcasts it; see importConcatWithConstants).
            if shapeTensor.isSymbolic {
                guard shapeTensor.shape.count == 1, shapeTensor.batchSymbolic.dropFirst().allSatisfy({ !$0 }),
                      shapeTensor.count >= x.shape.count else {
                    throw node.unsupported("expanding to a shape that uses the batch size other than as its first dimension")
                }
                var dims = shapeTensor.ints
                dims[0] = 1
                let shape = try broadcastShape(x.shape, checkedShape(dims, node), node)
                _ = try outputCount(shape, node, &budget)
                let indices = broadcastIndices(from: x.shape, to: shape)
                if x.isFloat { let v = x.floats; return ConstantTensor(shape: shape, floats: indices.map { v[$0] }) }
                let v = x.ints
                return ConstantTensor(shape: shape, ints: indices.map { v[$0] })
            }
            let shape = try broadcastShape(x.shape, checkedShape(shapeTensor.ints, node), node)
            _ = try outputCount(shape, node, &budget)
            // Broadcast along trailing axes only (an index per ROI expanded over [C, H, W] in
            // Faster/Mask R-CNN's ROI pooling, 12 M elements at run time): each value repeated,
            // without an index array as large as the result.
            let padded = Array(repeating: 1, count: shape.count - x.shape.count) + x.shape
            var split = shape.count
            while split > 0 && padded[split - 1] == 1 { split -= 1 }
            if padded[..<split] == shape[..<split] {
                let inner = uncheckedProduct(shape[split...])
                func repeated<T>(_ v: [T]) -> [T] {
                    var out: [T] = []
                    out.reserveCapacity(v.count * inner)
                    for value in v { out.append(contentsOf: repeatElement(value, count: inner)) }
                    return out
                }
                return x.isFloat ? ConstantTensor(shape: shape, floats: repeated(x.floats)) : ConstantTensor(shape: shape, ints: repeated(x.ints))
            }
            let indices = broadcastIndices(from: x.shape, to: shape)
            if x.isFloat { let v = x.floats; return ConstantTensor(shape: shape, floats: indices.map { v[$0] }) }
            let v = x.ints
            return ConstantTensor(shape: shape, ints: indices.map { v[$0] })
        case "ReduceProd":
            let x = try input(0)
            try refuseSymbolic([x])
            let keep = try node.int("keepdims", default: 1) != 0
            let axesAttribute = try node.ints("axes")
            guard axesAttribute == nil || axesAttribute!.count == x.shape.count || x.shape.count <= 1 else {
                throw node.unsupported("ReduceProd over a subset of axes of a constant")
            }
            let shape = keep ? Array(repeating: 1, count: x.shape.count) : []
            try budget.charge(x.count, node)
            if x.isFloat { return ConstantTensor(shape: shape, floats: [x.floats.reduce(1, *)]) }
            return ConstantTensor(shape: shape, ints: [x.ints.reduce(1, &*)])
        case "ScatterND":
            return try scatterND(node, try input(0), try input(1), try input(2), &budget)
        default:
            throw node.unsupported("cannot evaluate this operator on constant inputs")
        }
    }

    /// `Equal` where an operand holds the batch size: the batch is at least 1, so it differs
    /// from any constant ≤ 0 (the exporter's −1 "keep this dimension" marks) and equals itself.
    private static func equalWithBatch(_ node: ONNXNode, _ a: ConstantTensor, _ b: ConstantTensor, _ budget: inout Budget) throws -> ConstantTensor {
        let shape = try broadcastShape(a.shape, b.shape, node)
        _ = try outputCount(shape, node, &budget)
        let ai = broadcastIndices(from: a.shape, to: shape), bi = broadcastIndices(from: b.shape, to: shape)
        let (av, bv) = (a.ints, b.ints)
        let result = try (0..<ai.count).map { k -> Int64 in
            let (x, y) = (ai[k], bi[k])
            switch (a.isBatch(x), b.isBatch(y)) {
            case (true, true): return 1
            case (false, false): return av[x] == bv[y] ? 1 : 0
            case (true, false): if bv[y] <= 0 { return 0 }
            case (false, true): if av[x] <= 0 { return 0 }
            }
            throw node.unsupported("comparing the batch size with \(a.isBatch(x) ? bv[y] : av[x]) (the answer depends on the batch)")
        }
        return ConstantTensor(shape: shape, ints: result)
    }

    /// `Mul` or `Div` of a batch-size element by a known integer (the exporter's `B * heads`,
    /// `B * windows`, `B·windows // windows`): the result is a multiple of the batch, stored as
    /// its value at the representative batch and still marked. A division must leave a whole
    /// multiple; the batch times the batch, and anything else, is refused.
    private static func scaleBatch(_ node: ONNXNode, _ a: ConstantTensor, _ b: ConstantTensor, _ budget: inout Budget) throws -> ConstantTensor {
        guard !a.isFloat, !b.isFloat, node.opType == "Mul" || !b.isSymbolic else {
            throw node.unsupported("arithmetic on the batch size (the model computes with its dynamic batch dimension)")
        }
        let (symbolic, factor) = a.isSymbolic ? (a, b) : (b, a)
        guard !factor.isSymbolic, factor.count == 1 || factor.shape == symbolic.shape else {
            throw node.unsupported("arithmetic on the batch size (the model computes with its dynamic batch dimension)")
        }
        try budget.charge(symbolic.count, node)
        let f = factor.ints
        let values = try symbolic.ints.enumerated().map { i, v -> Int64 in
            let k = f.count == 1 ? f[0] : f[i]
            if node.opType == "Mul" { return v &* k }
            guard k != 0 else { throw node.invalid("division by zero") }
            if !symbolic.isBatch(i) { return v / k }
            guard k > 0, v % k == 0 else {
                throw node.unsupported("dividing the batch size by \(k) (the answer depends on the batch)")
            }
            return v / k
        }
        return ConstantTensor(shape: symbolic.shape, ints: values, batchSymbolic: symbolic.batchSymbolic)
    }

    /// ONNX ScatterND (reduction "none") on constants (swin's attention mask is built this way).
    private static func scatterND(_ node: ONNXNode, _ data: ConstantTensor, _ indices: ConstantTensor, _ updates: ConstantTensor,
                                  _ budget: inout Budget) throws -> ConstantTensor {
        try refuseSymbolic(node, [data, indices, updates])
        guard try node.string("reduction", default: "none") == "none" else { throw node.unsupported("ScatterND with a reduction") }
        guard let k = indices.shape.last, k >= 1, k <= data.shape.count else { throw node.invalid("indices of shape \(indices.shape)") }
        let slice = data.shape[k...].reduce(1, *)
        let tuples = indices.count / k
        let (expected, overflow) = tuples.multipliedReportingOverflow(by: slice)
        guard !overflow, updates.count == expected else { throw node.invalid("updates of shape \(updates.shape) for \(tuples) index tuples of \(slice) elements") }
        try budget.charge(data.count + updates.count, node)
        let strides = elementStrides(data.shape)
        let idx = indices.ints
        func target(_ t: Int) throws -> Int {
            var offset = 0
            for j in 0..<k {
                var i = Int(clamping: idx[t * k + j])
                if i < 0 { i += data.shape[j] }
                guard i >= 0, i < data.shape[j] else { throw node.invalid("index \(idx[t * k + j]) out of range for dimension \(data.shape[j])") }
                offset += i * strides[j]
            }
            return offset
        }
        if data.isFloat || updates.isFloat {
            var out = data.floats
            let u = updates.floats
            for t in 0..<tuples { let o = try target(t); for e in 0..<slice { out[o + e] = u[t * slice + e] } }
            return ConstantTensor(shape: data.shape, floats: out)
        }
        var out = data.ints
        let u = updates.ints
        for t in 0..<tuples { let o = try target(t); for e in 0..<slice { out[o + e] = u[t * slice + e] } }
        return ConstantTensor(shape: data.shape, ints: out)
    }

    private static func refuseSymbolic(_ node: ONNXNode, _ tensors: [ConstantTensor]) throws {
        if tensors.contains(where: \.isSymbolic) {
            throw node.unsupported("arithmetic on the batch size (the model computes with its dynamic batch dimension)")
        }
    }

    // MARK: - Helpers

    static func normalizedAxis(_ axis: Int, rank: Int, _ node: ONNXNode) throws -> Int {
        // `axis` may be anything a file holds (Int.min included): the sum cannot overflow for rank ≥ 0.
        let result = axis < 0 ? axis &+ rank : axis
        guard result >= 0, result < max(rank, 1) else { throw node.invalid("axis \(axis) out of range for rank \(rank)") }
        return result
    }

    /// A shape given as data (ConstantOfShape, Expand): non-negative, element count (of its
    /// non-zero dims too) within the fold limit.
    static func checkedShape(_ dims: [Int64], _ node: ONNXNode) throws -> [Int] {
        let shape = try dims.map {
            guard let dim = Int(exactly: $0), dim >= 0 else { throw node.invalid("negative or huge dimension \($0)") }
            return dim
        }
        // The product of the non-zero dims is bounded too: a zero-size [0, 2^40, 2^40] would
        // otherwise pass here and overflow once broadcast against a shape without the 0.
        guard shape.count <= 64,
              let nonZero = checkedElementCount(shape.filter { $0 != 0 }), nonZero <= ImportLimits.maxFoldElements else {
            throw node.unsupported("constant tensor of shape \(dims) is too large to build at load time")
        }
        return shape
    }

    private static func shapeRange(_ node: ONNXNode, rank: Int) throws -> (Int, Int) {
        func clampIndex(_ value: Int) -> Int { min(max(value < 0 ? value + rank : value, 0), rank) }
        return (clampIndex(try node.int("start", default: 0)), clampIndex(try node.int("end", default: rank)))
    }

    static func broadcastShape(_ a: [Int], _ b: [Int], _ node: ONNXNode) throws -> [Int] {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        return try (0..<rank).map { axis in
            if pa[axis] == pb[axis] || pb[axis] == 1 { return pa[axis] }
            if pa[axis] == 1 { return pb[axis] }
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot broadcast \(a) with \(b)")
        }
    }

    /// For every element of `shape` (row-major), the index of the element of a tensor of
    /// shape `from` that numpy broadcasting maps onto it.
    static func broadcastIndices(from: [Int], to shape: [Int]) -> [Int] {
        let padded = Array(repeating: 1, count: shape.count - from.count) + from
        let sourceStrides = elementStrides(padded)
        return tiledIndices(shape, steps: (0..<shape.count).map { padded[$0] == 1 ? 0 : sourceStrides[$0] })
    }

    /// For every element of `shape` (row-major), `base + Σ coordinate[axis] · steps[axis]`.
    ///
    /// Built axis by axis from the outermost: after axis d, `current` holds the index of every
    /// coordinate prefix of length d + 1. Plain appends, a few ns per element (a coordinate
    /// odometer per element made large folds ten times slower).
    static func tiledIndices(_ shape: [Int], steps: [Int], base: Int = 0) -> [Int] {
        // A zero-size shape may still have huge other dims ([2^20, 2^20, 0]): never expand those.
        if shape.contains(0) { return [] }
        var current = [base]
        for axis in 0..<shape.count {
            let step = steps[axis]
            var next: [Int] = []
            next.reserveCapacity(current.count * shape[axis])
            for start in current {
                for i in 0..<shape[axis] { next.append(start + i * step) }
            }
            current = next
        }
        return current
    }

    private static func gather(_ node: ONNXNode, _ data: ConstantTensor, _ indicesTensor: ConstantTensor, _ budget: inout Budget) throws -> ConstantTensor {
        guard !data.shape.isEmpty else { throw node.invalid("gather from a scalar") }
        let axis = try normalizedAxis(try node.int("axis", default: 0), rank: data.shape.count, node)
        let axisLength = data.shape[axis]
        let indices = try indicesTensor.ints.map { raw -> Int in
            guard let value = Int(exactly: raw), value >= -axisLength, value < axisLength else {
                throw node.invalid("gather index \(raw) out of range \(axisLength)")
            }
            return value < 0 ? value + axisLength : value
        }
        let shape = Array(data.shape[..<axis]) + indicesTensor.shape + Array(data.shape[(axis + 1)...])
        let count = try outputCount(shape, node, &budget)
        let outer = uncheckedProduct(data.shape[..<axis])
        let inner = uncheckedProduct(data.shape[(axis + 1)...])
        var sourceIndex: [Int] = []
        sourceIndex.reserveCapacity(count)
        if count > 0 {
            for o in 0..<outer { for i in indices { for k in 0..<inner { sourceIndex.append((o * axisLength + i) * inner + k) } } }
        }
        return pick(data, sourceIndex, shape: shape)
    }

    /// A tensor made of `data`'s elements at `sourceIndex`, keeping the batch marks.
    static func pick(_ data: ConstantTensor, _ sourceIndex: [Int], shape: [Int]) -> ConstantTensor {
        switch data.storage {
        case .float(let values): return ConstantTensor(shape: shape, floats: sourceIndex.map { values[$0] })
        case .int64(let values):
            let marks = data.isSymbolic ? sourceIndex.map { data.batchSymbolic[$0] } : []
            return ConstantTensor(shape: shape, ints: sourceIndex.map { values[$0] }, batchSymbolic: marks)
        }
    }

    private static func slice(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int, _ budget: inout Budget) throws -> ConstantTensor {
        guard let data = inputs.first ?? nil else { throw node.invalid("missing data") }
        let rank = data.shape.count
        var starts: [Int64], ends: [Int64], axes: [Int64]?, steps: [Int64]?
        if opset < 10 {
            starts = (try node.ints("starts") ?? []).map(Int64.init)
            ends = (try node.ints("ends") ?? []).map(Int64.init)
            axes = try node.ints("axes")?.map(Int64.init)
            steps = nil
        } else {
            guard inputs.count >= 3, let s = inputs[1], let e = inputs[2] else { throw node.invalid("missing starts/ends") }
            guard !s.isSymbolic, !e.isSymbolic else { throw node.unsupported("slicing with the batch size as a bound") }
            starts = s.ints
            ends = e.ints
            axes = inputs.count > 3 ? inputs[3]?.ints : nil
            steps = inputs.count > 4 ? inputs[4]?.ints : nil
        }
        let axisList = try (axes ?? (0..<Int64(starts.count)).map { $0 }).map {
            try normalizedAxis(Int(clamping: $0), rank: rank, node)
        }
        guard starts.count == axisList.count, ends.count == axisList.count, steps.map({ $0.count == axisList.count }) ?? true else {
            throw node.invalid("starts/ends/axes/steps lengths differ (\(starts.count), \(ends.count), \(axisList.count), \(steps?.count ?? axisList.count))")
        }
        guard Set(axisList).count == axisList.count else { throw node.invalid("axes \(axisList) repeat an axis") }
        var begin = [Int](repeating: 0, count: rank), step = [Int](repeating: 1, count: rank), length = data.shape
        for (k, axis) in axisList.enumerated() {
            let dim = data.shape[axis]
            let rawStep = steps?[k] ?? 1
            guard rawStep != 0 else { throw node.invalid("zero step") }
            // A step longer than the axis takes one element at most: clamping its magnitude to
            // dim + 1 changes nothing and keeps the arithmetic below far from overflow
            // (a step of Int64.min could not even be negated).
            let magnitude = Int(clamping: min(rawStep.magnitude, UInt64(dim) + 1))
            let stepValue = rawStep > 0 ? magnitude : -magnitude
            func clampIndex(_ raw: Int64, low: Int, high: Int) -> Int {
                var value = Int(clamping: raw)
                if value < 0 { value += dim }
                return min(max(value, low), high)
            }
            let start = stepValue > 0 ? clampIndex(starts[k], low: 0, high: dim) : clampIndex(starts[k], low: -1, high: dim - 1)
            let end = stepValue > 0 ? clampIndex(ends[k], low: 0, high: dim) : clampIndex(ends[k], low: -1, high: dim - 1)
            begin[axis] = start
            step[axis] = stepValue
            length[axis] = stepValue > 0 ? max(0, (end - start + stepValue - 1) / stepValue) : max(0, (start - end - stepValue - 1) / -stepValue)
        }
        let sourceStrides = elementStrides(data.shape)
        _ = try outputCount(length, node, &budget)
        let sourceIndex = tiledIndices(length, steps: (0..<rank).map { step[$0] * sourceStrides[$0] },
                                       base: (0..<rank).reduce(0) { $0 + begin[$1] * sourceStrides[$1] })
        return pick(data, sourceIndex, shape: length)
    }

    private static func concat(_ parts: [ConstantTensor], axis: Int, _ node: ONNXNode, _ budget: inout Budget) throws -> ConstantTensor {
        let rank = parts[0].shape.count
        for part in parts where part.shape.count != rank || (0..<rank).contains(where: { $0 != axis && part.shape[$0] != parts[0].shape[$0] }) {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot concatenate \(parts.map(\.shape))")
        }
        let outer = uncheckedProduct(parts[0].shape[..<axis])
        var shape = parts[0].shape
        var axisLength = 0
        for part in parts {
            guard let sum = checkedAdd(axisLength, part.shape[axis]) else { throw node.invalid("concatenated length overflows") }
            axisLength = sum
        }
        shape[axis] = axisLength
        // Zero elements: return before the loops, which would run outer × parts empty copies
        // ([2^20, 0] parts have 2^20 outer rows of nothing each).
        if try outputCount(shape, node, &budget) == 0 {
            return parts.contains(where: \.isFloat) ? ConstantTensor(shape: shape, floats: []) : ConstantTensor(shape: shape, ints: [])
        }
        if parts.contains(where: \.isFloat) {
            var values: [Float] = []
            let floats = parts.map(\.floats)
            for o in 0..<outer { for (part, v) in zip(parts, floats) { let chunk = part.count / outer; values += v[(o * chunk)..<((o + 1) * chunk)] } }
            return ConstantTensor(shape: shape, floats: values)
        }
        var values: [Int64] = [], marks: [Bool] = []
        let ints = parts.map(\.ints)
        for o in 0..<outer {
            for (part, v) in zip(parts, ints) {
                let chunk = part.count / outer
                values += v[(o * chunk)..<((o + 1) * chunk)]
                marks += part.isSymbolic ? Array(part.batchSymbolic[(o * chunk)..<((o + 1) * chunk)]) : Array(repeating: false, count: chunk)
            }
        }
        return ConstantTensor(shape: shape, ints: values, batchSymbolic: marks)
    }

    /// Output shape of Unsqueeze/Squeeze/Reshape/Flatten applied to a constant.
    private static func reshapedShape(_ node: ONNXNode, _ x: ConstantTensor, _ inputs: [ConstantTensor?], opset: Int) throws -> [Int] {
        switch node.opType {
        case "Unsqueeze", "Squeeze":
            let axesList: [Int]?
            if opset >= 13 {
                axesList = inputs.count > 1 ? inputs[1]?.ints.map { Int(clamping: $0) } : nil
            } else {
                axesList = try node.ints("axes")
            }
            if node.opType == "Squeeze" {
                guard let axesList else { return x.shape.filter { $0 != 1 } }
                let normalized = try Set(axesList.map { try normalizedAxis($0, rank: x.shape.count, node) })
                // Only size-1 axes may go: squeezing a 0 (or 3) would claim values that are not there.
                guard normalized.allSatisfy({ $0 < x.shape.count && x.shape[$0] == 1 }) else {
                    throw SelfXitError.shapeMismatch("node '\(node.displayName)': squeezing axes \(axesList.sorted()) of shape \(x.shape), which are not all 1")
                }
                return x.shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
            }
            guard let axesList else { throw node.invalid("missing axes") }
            let outRank = x.shape.count + axesList.count
            guard outRank <= 64 else { throw node.unsupported("unsqueeze to rank \(outRank)") }
            let normalized = try Set(axesList.map { try normalizedAxis($0, rank: outRank, node) })
            guard normalized.count == axesList.count else { throw node.invalid("axes \(axesList) repeat an axis") }
            var remaining = x.shape[...]
            return (0..<outRank).map { normalized.contains($0) ? 1 : remaining.popFirst() ?? 1 }
        case "Flatten":
            let axis = try node.int("axis", default: 1)
            let a = axis < 0 ? axis &+ x.shape.count : axis
            guard a >= 0, a <= x.shape.count else { throw node.invalid("axis out of range") }
            return [uncheckedProduct(x.shape[..<a]), uncheckedProduct(x.shape[a...])]
        default:
            guard inputs.count > 1, let target = inputs[1] else { throw node.invalid("missing shape") }
            guard !target.isSymbolic else { throw node.unsupported("reshaping a constant with the batch size") }
            return try resolveReshape(target.ints, input: x.shape, allowZero: try node.int("allowzero", default: 0) != 0, node)
        }
    }

    /// ONNX Reshape semantics: 0 copies the input dimension (unless allowzero), -1 is inferred.
    static func resolveReshape(_ target: [Int64], input: [Int], allowZero: Bool, _ node: ONNXNode) throws -> [Int] {
        let total = uncheckedProduct(input)
        guard target.count <= 64 else { throw node.unsupported("reshape to rank \(target.count)") }
        var shape = try target.enumerated().map { index, raw -> Int in
            if raw == 0 && !allowZero {
                guard index < input.count else { throw node.invalid("reshape copies a missing dimension") }
                return input[index]
            }
            guard raw >= -1, raw < 1 << 40 else { throw node.invalid("bad reshape dimension \(raw)") }
            return Int(raw)
        }
        // The product of the given dims may overflow (e.g. [2^40, 2^40]): such a target can never
        // match the input's element count, so it is a mismatch, not a trap.
        guard let known = checkedElementCount(shape.filter { $0 != -1 }) else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot reshape \(input) to \(target)")
        }
        if let inferred = shape.firstIndex(of: -1) {
            guard shape.filter({ $0 == -1 }).count == 1, known > 0, total % known == 0 else {
                throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot reshape \(input) to \(target)")
            }
            shape[inferred] = total / known
        } else if known != total {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot reshape \(input) to \(target)")
        }
        return shape
    }

    private static func transpose(_ node: ONNXNode, _ x: ConstantTensor, _ budget: inout Budget) throws -> ConstantTensor {
        let rank = x.shape.count
        let perm = try node.ints("perm") ?? Array((0..<rank).reversed())
        guard perm.count == rank, Set(perm) == Set(0..<rank) else { throw node.invalid("bad permutation \(perm)") }
        let shape = perm.map { x.shape[$0] }
        try budget.charge(x.count, node)
        let sourceStrides = elementStrides(x.shape)
        let sourceIndex = tiledIndices(shape, steps: perm.map { sourceStrides[$0] })
        return pick(x, sourceIndex, shape: shape)
    }

    private static func binary(_ node: ONNXNode, _ a: ConstantTensor, _ b: ConstantTensor, _ budget: inout Budget) throws -> ConstantTensor {
        let shape = try broadcastShape(a.shape, b.shape, node)
        let count = try outputCount(shape, node, &budget)
        // Operands brought to the output's shape (same-shape ones as they are), then one tight
        // loop per operator: a per-element operator switch or index closure made a 16 M-element
        // fold take half a second.
        func expanded<T>(_ values: [T], _ t: ConstantTensor) -> [T] {
            if t.shape == shape { return values }
            if t.count == 1 { return Array(repeating: values[0], count: count) }
            return broadcastIndices(from: t.shape, to: shape).map { values[$0] }
        }
        let comparison = ["Equal", "Less", "Greater"].contains(node.opType)
        if a.isFloat || b.isFloat {
            let (av, bv) = (expanded(a.floats, a), expanded(b.floats, b))
            @inline(__always)
            func zipped(_ f: (Float, Float) -> Float) -> [Float] {
                [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    av.withUnsafeBufferPointer { x in
                        bv.withUnsafeBufferPointer { y in
                            for k in 0..<count { buffer[k] = f(x[k], y[k]) }
                        }
                    }
                    initialized = count
                }
            }
            let result: [Float]
            switch node.opType {
            case "Add": result = zipped { $0 + $1 }
            case "Sub": result = zipped { $0 - $1 }
            case "Mul": result = zipped { $0 * $1 }
            case "Div": result = zipped { $0 / $1 }
            case "Mod": result = zipped { fmodf($0, $1) }
            case "Pow": result = zipped { powf($0, $1) }
            case "Max": result = zipped { max($0, $1) }
            case "Min": result = zipped { min($0, $1) }
            case "Equal": result = zipped { $0 == $1 ? 1 : 0 }
            case "Less": result = zipped { $0 < $1 ? 1 : 0 }
            default: result = zipped { $0 > $1 ? 1 : 0 }
            }
            return comparison ? ConstantTensor(shape: shape, ints: result.map { Int64($0) }) : ConstantTensor(shape: shape, floats: result)
        }
        let (av, bv) = (expanded(a.ints, a), expanded(b.ints, b))
        let f: (Int64, Int64) throws -> Int64
        switch node.opType {
        case "Add": f = { $0 &+ $1 }
        case "Sub": f = { $0 &- $1 }
        case "Mul": f = { $0 &* $1 }
        case "Div", "Mod":
            let isDiv = node.opType == "Div"
            f = { x, y in
                guard y != 0, !(x == .min && y == -1) else { throw node.invalid("integer division by zero or overflow (\(x) / \(y))") }
                // ONNX integer Div truncates toward zero; Mod (fmod=0) takes the divisor's sign.
                if isDiv { return x / y }
                let r = x % y
                return r != 0 && (r < 0) != (y < 0) ? r + y : r
            }
        case "Pow": f = { try integerPower($0, $1, node) }
        case "Max": f = { max($0, $1) }
        case "Min": f = { min($0, $1) }
        case "Equal": f = { $0 == $1 ? 1 : 0 }
        case "Less": f = { $0 < $1 ? 1 : 0 }
        default: f = { $0 > $1 ? 1 : 0 }
        }
        var result: [Int64] = []
        result.reserveCapacity(count)
        for k in 0..<count { result.append(try f(av[k], bv[k])) }
        return ConstantTensor(shape: shape, ints: result)
    }

    /// `x` to the integer power `y`, exactly; overflow is an error (not a wrap, not a trap). A
    /// negative exponent truncates toward zero as integer division would (only ±1 survive);
    /// 0 to a negative power is a division by zero.
    static func integerPower(_ x: Int64, _ y: Int64, _ node: ONNXNode) throws -> Int64 {
        if y < 0 {
            switch x {
            case 0: throw node.invalid("integer 0 raised to the negative power \(y)")
            case 1: return 1
            case -1: return y & 1 == 0 ? 1 : -1
            default: return 0
            }
        }
        var result: Int64 = 1, base = x, exponent = y
        while exponent > 0 {
            if exponent & 1 == 1 {
                let (p, overflow) = result.multipliedReportingOverflow(by: base)
                guard !overflow else { throw node.invalid("integer power \(x)^\(y) overflows int64") }
                result = p
            }
            exponent >>= 1
            if exponent > 0 {
                let (p, overflow) = base.multipliedReportingOverflow(by: base)
                guard !overflow else { throw node.invalid("integer power \(x)^\(y) overflows int64") }
                base = p
            }
        }
        return result
    }

    private static func unary(_ op: String, _ x: ConstantTensor) -> ConstantTensor {
        if x.isFloat {
            let values = x.floats.map { v -> Float in
                switch op {
                case "Neg": return -v
                case "Abs": return abs(v)
                case "Sqrt": return v.squareRoot()
                case "Ceil": return v.rounded(.up)
                case "Floor": return v.rounded(.down)
                case "Reciprocal": return 1 / v
                default: return v == 0 ? 1 : 0
                }
            }
            return ConstantTensor(shape: x.shape, floats: values)
        }
        let values = x.ints.map { v -> Int64 in
            switch op {
            case "Neg": return 0 &- v
            case "Abs": return v == .min ? .max : abs(v)
            case "Not": return v == 0 ? 1 : 0
            default: return v
            }
        }
        return ConstantTensor(shape: x.shape, ints: values)
    }
}

extension ConstantTensor {
    init(shape: [Int], storage: Storage, batchSymbolic: [Bool]) {
        self.shape = shape
        self.storage = storage
        self.batchSymbolic = batchSymbolic.contains(true) ? batchSymbolic : []
    }
}
