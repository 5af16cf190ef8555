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
        "Where", "ConstantOfShape", "Range", "Expand", "ReduceProd", "Dropout",
    ]

    /// Evaluates `node` on constant inputs (nil for an absent optional input).
    static func evaluate(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int) throws -> ConstantTensor {
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
            return try gather(node, try input(0), try input(1))
        case "Slice":
            return try slice(node, inputs, opset: opset)
        case "Concat":
            let present = inputs.compactMap { $0 }
            guard let first = present.first else { throw node.invalid("no inputs") }
            let axis = try normalizedAxis(try node.int("axis", default: 0), rank: first.shape.count, node)
            return try concat(present, axis: axis, node)
        case "Unsqueeze", "Squeeze", "Reshape", "Flatten":
            let x = try input(0)
            let shape = try reshapedShape(node, x, inputs, opset: opset)
            return ConstantTensor(shape: shape, storage: x.storage, batchSymbolic: x.batchSymbolic)
        case "Transpose":
            return try transpose(node, try input(0))
        case "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Max", "Min", "Equal", "Less", "Greater":
            let present = inputs.compactMap { $0 }
            try refuseSymbolic(present)
            guard present.count >= 2 else { throw node.invalid("needs two inputs") }
            var result = try binary(node, present[0], present[1])
            for extra in present.dropFirst(2) { result = try binary(node, result, extra) }
            return result
        case "Neg", "Abs", "Sqrt", "Ceil", "Floor", "Reciprocal", "Not":
            let x = try input(0)
            try refuseSymbolic([x])
            return unary(node.opType, x)
        case "Where":
            let (c, a, b) = (try input(0), try input(1), try input(2))
            try refuseSymbolic([c, a, b])
            let shape = try broadcastShape(broadcastShape(c.shape, a.shape, node), b.shape, node)
            let ci = broadcastIndices(from: c.shape, to: shape), ai = broadcastIndices(from: a.shape, to: shape)
            let bi = broadcastIndices(from: b.shape, to: shape)
            let cond = c.ints
            if a.isFloat || b.isFloat {
                let (av, bv) = (a.floats, b.floats)
                return ConstantTensor(shape: shape, floats: (0..<ci.count).map { cond[ci[$0]] != 0 ? av[ai[$0]] : bv[bi[$0]] })
            }
            let (av, bv) = (a.ints, b.ints)
            return ConstantTensor(shape: shape, ints: (0..<ci.count).map { cond[ci[$0]] != 0 ? av[ai[$0]] : bv[bi[$0]] })
        case "ConstantOfShape":
            let shapeTensor = try input(0)
            try refuseSymbolic([shapeTensor])
            let shape = try checkedShape(shapeTensor.ints, node)
            let count = shape.reduce(1, *)
            if case .tensor(let value)? = node.attributes["value"] {
                let fill = try ConstantTensor(value)
                if fill.isFloat { return ConstantTensor(shape: shape, floats: Array(repeating: fill.floats.first ?? 0, count: count)) }
                return ConstantTensor(shape: shape, ints: Array(repeating: fill.ints.first ?? 0, count: count))
            }
            return ConstantTensor(shape: shape, floats: Array(repeating: 0, count: count))
        case "Range":
            let (start, limit, delta) = (try input(0), try input(1), try input(2))
            try refuseSymbolic([start, limit, delta])
            if start.isFloat {
                let (s, l, d) = (start.floats.first ?? 0, limit.floats.first ?? 0, delta.floats.first ?? 1)
                guard d != 0 else { throw node.invalid("delta is zero") }
                let n = try rangeLength(Double(l) - Double(s), Double(d), node)
                return ConstantTensor(shape: [n], floats: (0..<n).map { s + Float($0) * d })
            }
            let (s, l, d) = (start.ints.first ?? 0, limit.ints.first ?? 0, delta.ints.first ?? 1)
            guard d != 0 else { throw node.invalid("delta is zero") }
            let n = try rangeLength(Double(l) - Double(s), Double(d), node)
            return ConstantTensor(shape: [n], ints: (0..<n).map { s &+ Int64($0) &* d })
        case "Expand":
            let (x, shapeTensor) = (try input(0), try input(1))
            try refuseSymbolic([x, shapeTensor])
            let shape = try broadcastShape(x.shape, checkedShape(shapeTensor.ints, node), node)
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
            if x.isFloat { return ConstantTensor(shape: shape, floats: [x.floats.reduce(1, *)]) }
            return ConstantTensor(shape: shape, ints: [x.ints.reduce(1, &*)])
        default:
            throw node.unsupported("cannot evaluate this operator on constant inputs")
        }
    }

    // MARK: - Helpers

    static func normalizedAxis(_ axis: Int, rank: Int, _ node: ONNXNode) throws -> Int {
        let result = axis < 0 ? axis + rank : axis
        guard result >= 0, result < max(rank, 1) else { throw node.invalid("axis \(axis) out of range for rank \(rank)") }
        return result
    }

    static func checkedShape(_ dims: [Int64], _ node: ONNXNode) throws -> [Int] {
        var total = 1
        return try dims.map {
            guard let dim = Int(exactly: $0), dim >= 0 else { throw node.invalid("negative or huge dimension \($0)") }
            let (product, overflow) = total.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= 1 << 28 else { throw node.invalid("constant tensor too large") }
            total = product
            return dim
        }
    }

    private static func shapeRange(_ node: ONNXNode, rank: Int) throws -> (Int, Int) {
        func clampIndex(_ value: Int) -> Int { min(max(value < 0 ? value + rank : value, 0), rank) }
        return (clampIndex(try node.int("start", default: 0)), clampIndex(try node.int("end", default: rank)))
    }

    /// Steps a row-major coordinate to the next element of `shape` (last axis fastest).
    private static func advance(_ coordinate: inout [Int], within shape: [Int]) {
        var axis = shape.count - 1
        while axis >= 0 {
            coordinate[axis] += 1
            if coordinate[axis] < shape[axis] { return }
            coordinate[axis] = 0
            axis -= 1
        }
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
        let count = shape.reduce(1, *)
        var result = [Int](repeating: 0, count: count)
        var coordinate = [Int](repeating: 0, count: shape.count)
        for linear in 0..<count {
            var index = 0
            for axis in 0..<shape.count where padded[axis] != 1 { index += coordinate[axis] * sourceStrides[axis] }
            result[linear] = index
            advance(&coordinate, within: shape)
        }
        return result
    }

    private static func gather(_ node: ONNXNode, _ data: ConstantTensor, _ indicesTensor: ConstantTensor) throws -> ConstantTensor {
        guard !data.shape.isEmpty else { throw node.invalid("gather from a scalar") }
        let axis = try normalizedAxis(try node.int("axis", default: 0), rank: data.shape.count, node)
        let axisLength = data.shape[axis]
        let indices = try indicesTensor.ints.map { raw -> Int in
            guard let value = Int(exactly: raw), value >= -axisLength, value < axisLength else {
                throw node.invalid("gather index \(raw) out of range \(axisLength)")
            }
            return value < 0 ? value + axisLength : value
        }
        let outer = data.shape[..<axis].reduce(1, *)
        let inner = data.shape[(axis + 1)...].reduce(1, *)
        var sourceIndex: [Int] = []
        sourceIndex.reserveCapacity(outer * indices.count * inner)
        for o in 0..<outer { for i in indices { for k in 0..<inner { sourceIndex.append((o * axisLength + i) * inner + k) } } }
        let shape = Array(data.shape[..<axis]) + indicesTensor.shape + Array(data.shape[(axis + 1)...])
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

    private static func slice(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int) throws -> ConstantTensor {
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
        guard starts.count == axisList.count, ends.count == axisList.count else { throw node.invalid("starts/ends/axes lengths differ") }
        var begin = [Int](repeating: 0, count: rank), step = [Int](repeating: 1, count: rank), length = data.shape
        for (k, axis) in axisList.enumerated() {
            let dim = data.shape[axis]
            let stepValue = Int(clamping: steps?[k] ?? 1)
            guard stepValue != 0 else { throw node.invalid("zero step") }
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
        var sourceIndex: [Int] = []
        let count = length.reduce(1, *)
        sourceIndex.reserveCapacity(count)
        var coordinate = [Int](repeating: 0, count: rank)
        for _ in 0..<count {
            var index = 0
            for axis in 0..<rank { index += (begin[axis] + coordinate[axis] * step[axis]) * sourceStrides[axis] }
            sourceIndex.append(index)
            advance(&coordinate, within: length)
        }
        return pick(data, sourceIndex, shape: length)
    }

    private static func concat(_ parts: [ConstantTensor], axis: Int, _ node: ONNXNode) throws -> ConstantTensor {
        let rank = parts[0].shape.count
        for part in parts where part.shape.count != rank || (0..<rank).contains(where: { $0 != axis && part.shape[$0] != parts[0].shape[$0] }) {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot concatenate \(parts.map(\.shape))")
        }
        let outer = parts[0].shape[..<axis].reduce(1, *)
        var shape = parts[0].shape
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        if parts.contains(where: \.isFloat) {
            var values: [Float] = []
            for o in 0..<outer { for part in parts { let chunk = part.count / max(outer, 1); values += part.floats[(o * chunk)..<((o + 1) * chunk)] } }
            return ConstantTensor(shape: shape, floats: values)
        }
        var values: [Int64] = [], marks: [Bool] = []
        for o in 0..<outer {
            for part in parts {
                let chunk = part.count / max(outer, 1)
                values += part.ints[(o * chunk)..<((o + 1) * chunk)]
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
                return x.shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
            }
            guard let axesList else { throw node.invalid("missing axes") }
            let outRank = x.shape.count + axesList.count
            let normalized = try Set(axesList.map { try normalizedAxis($0, rank: outRank, node) })
            var remaining = x.shape[...]
            return (0..<outRank).map { normalized.contains($0) ? 1 : remaining.popFirst() ?? 1 }
        case "Flatten":
            let axis = try node.int("axis", default: 1)
            let a = axis < 0 ? axis + x.shape.count : axis
            guard a >= 0, a <= x.shape.count else { throw node.invalid("axis out of range") }
            return [x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)]
        default:
            guard inputs.count > 1, let target = inputs[1] else { throw node.invalid("missing shape") }
            guard !target.isSymbolic else { throw node.unsupported("reshaping a constant with the batch size") }
            return try resolveReshape(target.ints, input: x.shape, allowZero: try node.int("allowzero", default: 0) != 0, node)
        }
    }

    /// ONNX Reshape semantics: 0 copies the input dimension (unless allowzero), -1 is inferred.
    static func resolveReshape(_ target: [Int64], input: [Int], allowZero: Bool, _ node: ONNXNode) throws -> [Int] {
        let total = input.reduce(1, *)
        var shape = try target.enumerated().map { index, raw -> Int in
            if raw == 0 && !allowZero {
                guard index < input.count else { throw node.invalid("reshape copies a missing dimension") }
                return input[index]
            }
            guard raw >= -1, raw < 1 << 40 else { throw node.invalid("bad reshape dimension \(raw)") }
            return Int(raw)
        }
        let known = shape.filter { $0 != -1 }.reduce(1, *)
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

    private static func transpose(_ node: ONNXNode, _ x: ConstantTensor) throws -> ConstantTensor {
        let rank = x.shape.count
        let perm = try node.ints("perm") ?? Array((0..<rank).reversed())
        guard perm.count == rank, Set(perm) == Set(0..<rank) else { throw node.invalid("bad permutation \(perm)") }
        let shape = perm.map { x.shape[$0] }
        let sourceStrides = elementStrides(x.shape)
        let permutedStrides = perm.map { sourceStrides[$0] }
        var sourceIndex: [Int] = []
        sourceIndex.reserveCapacity(x.count)
        var coordinate = [Int](repeating: 0, count: rank)
        for _ in 0..<x.count {
            sourceIndex.append(zip(coordinate, permutedStrides).reduce(0) { $0 + $1.0 * $1.1 })
            advance(&coordinate, within: shape)
        }
        return pick(x, sourceIndex, shape: shape)
    }

    private static func binary(_ node: ONNXNode, _ a: ConstantTensor, _ b: ConstantTensor) throws -> ConstantTensor {
        let shape = try broadcastShape(a.shape, b.shape, node)
        let ai = broadcastIndices(from: a.shape, to: shape), bi = broadcastIndices(from: b.shape, to: shape)
        let comparison = ["Equal", "Less", "Greater"].contains(node.opType)
        if a.isFloat || b.isFloat {
            let (av, bv) = (a.floats, b.floats)
            let result: [Float] = (0..<ai.count).map { k in
                let (x, y) = (av[ai[k]], bv[bi[k]])
                switch node.opType {
                case "Add": return x + y
                case "Sub": return x - y
                case "Mul": return x * y
                case "Div": return x / y
                case "Mod": return fmodf(x, y)
                case "Pow": return powf(x, y)
                case "Max": return max(x, y)
                case "Min": return min(x, y)
                case "Equal": return x == y ? 1 : 0
                case "Less": return x < y ? 1 : 0
                default: return x > y ? 1 : 0
                }
            }
            return comparison ? ConstantTensor(shape: shape, ints: result.map { Int64($0) }) : ConstantTensor(shape: shape, floats: result)
        }
        let (av, bv) = (a.ints, b.ints)
        let result: [Int64] = try (0..<ai.count).map { k in
            let (x, y) = (av[ai[k]], bv[bi[k]])
            switch node.opType {
            case "Add": return x &+ y
            case "Sub": return x &- y
            case "Mul": return x &* y
            case "Div", "Mod":
                guard y != 0, !(x == .min && y == -1) else { throw node.invalid("integer division by zero") }
                // ONNX integer Div truncates toward zero; Mod (fmod=0) takes the divisor's sign.
                if node.opType == "Div" { return x / y }
                let r = x % y
                return r != 0 && (r < 0) != (y < 0) ? r + y : r
            case "Pow": return saturatingInt64(pow(Double(x), Double(y)))
            case "Max": return max(x, y)
            case "Min": return min(x, y)
            case "Equal": return x == y ? 1 : 0
            case "Less": return x < y ? 1 : 0
            default: return x > y ? 1 : 0
            }
        }
        return ConstantTensor(shape: shape, ints: result)
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

/// ONNX Range's element count `max(ceil(span / delta), 0)`, refusing non-finite spans (a
/// float limit of ±inf or NaN) and ranges over 2^24 before any float → int conversion (a
/// checked `Int(_:)` of inf or NaN traps).
private func rangeLength(_ span: Double, _ delta: Double, _ node: ONNXNode) throws -> Int {
    let steps = (span / delta).rounded(.up)
    guard !steps.isNaN else { throw node.invalid("range bounds are not finite") }
    guard steps <= Double(1 << 24) else { throw node.invalid("range too long") }
    return steps > 0 ? Int(steps) : 0
}

/// `v` truncated toward zero and clamped to Int64's range; NaN gives 0. Total, unlike
/// `Int64(_:)`, which traps outside the range.
func saturatingInt64(_ v: Double) -> Int64 {
    if v.isNaN { return 0 }
    if v >= 9.223372036854775807e18 { return .max }
    if v <= -9.223372036854775808e18 { return .min }
    return Int64(v)
}
