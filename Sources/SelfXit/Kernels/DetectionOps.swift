import Glibc

/// The operators of a model's run-time-shaped tail (issue 13; see `TailProgram`): the detection
/// operators (TopK, NonZero, NonMaxSuppression, RoiAlign, ScatterElements, GatherND, …) and the
/// pointwise, reduction and product operators that detector tails apply to boxes and ROI
/// features, on `ConstantTensor`s. Anything the constant folder evaluates is delegated to it.
///
/// Semantics follow the ONNX specification and, where it leaves room (tie order of TopK and
/// NonMaxSuppression, RoiAlign's sampling), ONNX Runtime's CPU kernels, which the conformance
/// suite compares against.
enum TailOps {
    static let ownOps: Set<String> = [
        "Cast", "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Erf", "Round", "Sign", "Sqrt", "Neg", "Abs", "Floor", "Ceil",
        "Reciprocal", "Clip", "Softmax", "And", "Or", "Xor", "LessOrEqual", "GreaterOrEqual", "Split", "TopK", "NonZero",
        "NonMaxSuppression", "RoiAlign", "ScatterElements", "GatherND", "GatherElements", "Tile", "ReduceMin", "ReduceMax",
        "ReduceSum", "ReduceMean", "ArgMax", "ArgMin", "Gemm", "MatMul", "Resize", "Pad", "Conv", "ConvTranspose",
    ]
    static var supportedOps: Set<String> { ownOps.union(ConstantFolder.supportedOps) }

    static func evaluate(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int, budget: inout ConstantFolder.Budget,
                         dense: DenseKernel?, pool: ThreadPool, convCache: TailConvCache? = nil) throws -> [ConstantTensor] {
        func input(_ index: Int) throws -> ConstantTensor {
            guard index < inputs.count, let tensor = inputs[index] else { throw node.invalid("missing input \(index)") }
            return tensor
        }
        func optional(_ index: Int) -> ConstantTensor? { index < inputs.count ? inputs[index] : nil }
        func charge(_ shape: [Int]) throws -> Int {
            guard let count = checkedElementCount(shape) else { throw node.invalid("result shape \(shape) is invalid or overflows") }
            try budget.charge(count, node)
            return count
        }
        switch node.opType {
        case "Cast":
            let x = try input(0)
            let to = try node.int("to", default: 1)
            switch to {
            case 1, 10, 11, 16: return [ConstantTensor(shape: x.shape, floats: x.floats)]
            case 9:
                if x.isFloat { return [ConstantTensor(shape: x.shape, ints: x.floats.map { $0 != 0 ? 1 : 0 })] }
                return [ConstantTensor(shape: x.shape, ints: x.ints.map { $0 != 0 ? 1 : 0 })]
            case 2, 3, 4, 5, 6, 7, 12, 13: return [ConstantTensor(shape: x.shape, ints: x.ints)]
            default: throw node.unsupported("cast to data type \(to)")
            }
        case "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Erf", "Round", "Sign", "Sqrt", "Neg", "Abs", "Floor", "Ceil", "Reciprocal":
            let x = try input(0)
            guard x.isFloat else { return [try ConstantFolder.evaluate(node, inputs, opset: opset, budget: &budget)] }
            _ = try charge(x.shape)
            let f: (Float) -> Float
            switch node.opType {
            case "Relu": f = { max($0, 0) }
            case "Sigmoid": f = { 1 / (1 + expf(-$0)) }
            case "Tanh": f = { tanhf($0) }
            case "Exp": f = { expf($0) }
            case "Log": f = { logf($0) }
            case "Erf": f = { erff($0) }
            case "Round": f = { $0.rounded(.toNearestOrEven) }
            case "Sign": f = { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
            case "Sqrt": f = { $0.squareRoot() }
            case "Neg": f = { -$0 }
            case "Abs": f = { abs($0) }
            case "Floor": f = { $0.rounded(.down) }
            case "Ceil": f = { $0.rounded(.up) }
            default: f = { 1 / $0 }
            }
            return [ConstantTensor(shape: x.shape, floats: x.floats.map(f))]
        case "Clip":
            let x = try input(0)
            var low = -Float.infinity, high = Float.infinity
            if opset < 11 {
                low = try node.float("min", default: low); high = try node.float("max", default: high)
            } else {
                if let t = optional(1), t.count >= 1 { low = t.floats[0] }
                if let t = optional(2), t.count >= 1 { high = t.floats[0] }
            }
            _ = try charge(x.shape)
            if !x.isFloat {
                let (l, h) = (low.isFinite ? Int64(low) : Int64.min, high.isFinite ? Int64(high) : Int64.max)
                return [ConstantTensor(shape: x.shape, ints: x.ints.map { min(max($0, l), h) })]
            }
            // As ONNX Runtime: min(max(x, low), high); NaN stays NaN.
            return [ConstantTensor(shape: x.shape, floats: x.floats.map { $0.isNaN ? $0 : min(max($0, low), high) })]
        case "Softmax":
            return [try softmax(node, try input(0), opset: opset, &budget)]
        case "And", "Or", "Xor", "LessOrEqual", "GreaterOrEqual":
            return [try compare(node, try input(0), try input(1), &budget)]
        case "Split":
            return try split(node, inputs, opset: opset, &budget)
        case "TopK":
            return try topK(node, inputs, opset: opset, &budget)
        case "NonZero":
            let x = try input(0)
            let values = x.isFloat ? x.floats.map { $0 != 0 } : x.ints.map { $0 != 0 }
            let nonzero = values.indices.filter { values[$0] }
            let rank = x.shape.count
            _ = try charge([max(rank, 1), nonzero.count])
            let strides = elementStrides(x.shape)
            var out = [Int64](repeating: 0, count: rank * nonzero.count)
            for (j, flat) in nonzero.enumerated() {
                var rest = flat
                for a in 0..<rank { out[a * nonzero.count + j] = Int64(rest / strides[a]); rest %= strides[a] }
            }
            return [ConstantTensor(shape: [rank, nonzero.count], ints: out)]
        case "NonMaxSuppression":
            return [try nonMaxSuppression(node, inputs, &budget)]
        case "RoiAlign":
            return [try roiAlign(node, try input(0), try input(1), try input(2), opset: opset, pool: pool, &budget)]
        case "ScatterElements":
            return [try scatterElements(node, try input(0), try input(1), try input(2), &budget)]
        case "GatherND":
            return [try gatherND(node, try input(0), try input(1), &budget)]
        case "GatherElements":
            return [try gatherElements(node, try input(0), try input(1), &budget)]
        case "Tile":
            let (x, repeats) = (try input(0), try input(1).ints)
            guard repeats.count == x.shape.count, repeats.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else {
                throw node.invalid("repeats \(repeats) for shape \(x.shape)")
            }
            let shape = zip(x.shape, repeats).map { $0 * Int($1) }
            _ = try charge(shape)
            let strides = elementStrides(x.shape)
            var index = [0]
            for a in 0..<shape.count {
                var next: [Int] = []
                next.reserveCapacity(index.count * shape[a])
                for base in index { for i in 0..<shape[a] { next.append(base + (i % x.shape[a]) * strides[a]) } }
                index = next
            }
            if shape.contains(0) { index = [] }
            return [ConstantFolder.pick(x, index, shape: shape)]
        case "ReduceMin", "ReduceMax", "ReduceSum", "ReduceMean":
            return [try reduce(node, inputs, opset: opset, &budget)]
        case "ArgMax", "ArgMin":
            return [try argExtreme(node, try input(0), &budget)]
        case "Gemm":
            return [try gemm(node, inputs, dense: dense, pool: pool, &budget)]
        case "MatMul":
            return [try matmul(node, try input(0), try input(1), dense: dense, pool: pool, &budget)]
        case "Resize":
            return [try resize(node, inputs, opset: opset, &budget)]
        case "Pad":
            return [try pad(node, inputs, opset: opset, &budget)]
        case "Conv":
            return [try conv(node, inputs, pool: pool, cache: convCache, &budget)]
        case "ConvTranspose":
            return [try convTranspose(node, inputs, dense: dense, pool: pool, &budget)]
        default:
            guard ConstantFolder.supportedOps.contains(node.opType) else {
                throw node.unsupported("operator is not implemented in the run-time-shaped tail")
            }
            guard node.outputs.count <= 1 || node.outputs.dropFirst().allSatisfy(\.isEmpty) else {
                throw node.unsupported("a second output of this operator")
            }
            return [try ConstantFolder.evaluate(node, inputs, opset: opset, budget: &budget)]
        }
    }

    // MARK: - Pointwise and comparisons

    static func compare(_ node: ONNXNode, _ a: ConstantTensor, _ b: ConstantTensor, _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        let shape = try ConstantFolder.broadcastShape(a.shape, b.shape, node)
        guard let count = checkedElementCount(shape) else { throw node.invalid("result shape \(shape) overflows") }
        try budget.charge(count, node)
        let ai = ConstantFolder.broadcastIndices(from: a.shape, to: shape), bi = ConstantFolder.broadcastIndices(from: b.shape, to: shape)
        let result: [Int64]
        if a.isFloat || b.isFloat {
            let (x, y) = (a.floats, b.floats)
            switch node.opType {
            case "LessOrEqual": result = (0..<count).map { x[ai[$0]] <= y[bi[$0]] ? 1 : 0 }
            case "GreaterOrEqual": result = (0..<count).map { x[ai[$0]] >= y[bi[$0]] ? 1 : 0 }
            default: throw node.invalid("logical operator on float inputs")
            }
        } else {
            let (x, y) = (a.ints, b.ints)
            switch node.opType {
            case "LessOrEqual": result = (0..<count).map { x[ai[$0]] <= y[bi[$0]] ? 1 : 0 }
            case "GreaterOrEqual": result = (0..<count).map { x[ai[$0]] >= y[bi[$0]] ? 1 : 0 }
            case "And": result = (0..<count).map { x[ai[$0]] != 0 && y[bi[$0]] != 0 ? 1 : 0 }
            case "Or": result = (0..<count).map { x[ai[$0]] != 0 || y[bi[$0]] != 0 ? 1 : 0 }
            default: result = (0..<count).map { (x[ai[$0]] != 0) != (y[bi[$0]] != 0) ? 1 : 0 }
            }
        }
        return ConstantTensor(shape: shape, ints: result)
    }

    static func softmax(_ node: ONNXNode, _ x: ConstantTensor, opset: Int, _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        let rank = x.shape.count
        let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: opset < 13 ? 1 : -1), rank: rank, node)
        try budget.charge(x.count, node)
        var v = x.floats
        // Before opset 13 the axes from `axis` on are flattened into one; from 13 it is one axis.
        let (outer, length, inner) = opset < 13
            ? (uncheckedProduct(x.shape[..<axis]), uncheckedProduct(x.shape[axis...]), 1)
            : (uncheckedProduct(x.shape[..<axis]), x.shape[axis], uncheckedProduct(x.shape[(axis + 1)...]))
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var m = -Float.infinity
                for j in 0..<length { m = max(m, v[base + j * inner]) }
                var sum: Float = 0
                for j in 0..<length { let e = expf(v[base + j * inner] - m); v[base + j * inner] = e; sum += e }
                for j in 0..<length { v[base + j * inner] /= sum }
            }
        }
        return ConstantTensor(shape: x.shape, floats: v)
    }

    // MARK: - Split, TopK, reductions

    static func split(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int, _ budget: inout ConstantFolder.Budget) throws -> [ConstantTensor] {
        guard let x = inputs.first ?? nil else { throw node.invalid("missing input") }
        let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: 0), rank: x.shape.count, node)
        let dim = x.shape[axis]
        var sizes: [Int]
        if opset >= 13, inputs.count > 1, let s = inputs[1] {
            sizes = s.ints.map { Int(clamping: $0) }
        } else if let s = try node.ints("split") {
            sizes = s
        } else {
            let parts = opset >= 18 ? try node.int("num_outputs", default: node.outputs.count) : node.outputs.count
            guard parts >= 1 else { throw node.invalid("split into \(parts) parts") }
            let chunk = (dim + parts - 1) / parts
            sizes = (0..<parts).map { max(0, min(chunk, dim - $0 * chunk)) }
        }
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == dim, sizes.count == node.outputs.count else {
            throw node.invalid("split sizes \(sizes) for dimension \(dim) and \(node.outputs.count) outputs")
        }
        let strides = elementStrides(x.shape)
        var start = 0
        return try sizes.map { size in
            var shape = x.shape
            shape[axis] = size
            guard let count = checkedElementCount(shape) else { throw node.invalid("bad split shape") }
            try budget.charge(count, node)
            let index = ConstantFolder.tiledIndices(shape, steps: strides, base: start * strides[axis])
            start += size
            return ConstantFolder.pick(x, index, shape: shape)
        }
    }

    static func topK(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int, _ budget: inout ConstantFolder.Budget) throws -> [ConstantTensor] {
        guard let x = inputs.first ?? nil, !x.shape.isEmpty else { throw node.invalid("missing or scalar input") }
        let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: -1), rank: x.shape.count, node)
        let k: Int
        if opset >= 10 {
            guard inputs.count > 1, let kt = inputs[1], kt.count == 1 else { throw node.invalid("K must be a one-element tensor") }
            k = Int(clamping: kt.ints[0])
        } else {
            k = try node.int("k", default: -1)
        }
        let dim = x.shape[axis]
        guard k >= 0, k <= dim else { throw node.invalid("K = \(k) outside 0...\(dim) (axis \(axis) of \(x.shape))") }
        let largest = try node.int("largest", default: 1) != 0
        var shape = x.shape
        shape[axis] = k
        guard let count = checkedElementCount(shape) else { throw node.invalid("bad shape") }
        try budget.charge(2 * count + x.count, node)
        let outer = uncheckedProduct(x.shape[..<axis]), inner = uncheckedProduct(x.shape[(axis + 1)...])
        let v = x.floats
        var values = [Float](repeating: 0, count: count), indices = [Int64](repeating: 0, count: count)
        var order = [Int](repeating: 0, count: dim)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * dim * inner + i
                for j in 0..<dim { order[j] = j }
                // ONNX Runtime's order: by value, ties by the lower index; NaN counts as largest.
                func before(_ p: Int, _ q: Int) -> Bool {
                    let (a, b) = (v[base + p * inner], v[base + q * inner])
                    if a == b || (a.isNaN && b.isNaN) { return p < q }
                    if a.isNaN { return largest }
                    if b.isNaN { return !largest }
                    return largest ? a > b : a < b
                }
                if k < dim / 4 {
                    // Partial selection: a heap would do; a sort of the top candidates is simpler.
                    var best: [Int] = []
                    best.reserveCapacity(k + 1)
                    for j in 0..<dim {
                        if best.count == k, let last = best.last, !before(j, last) { continue }
                        var lo = 0, hi = best.count
                        while lo < hi { let mid = (lo + hi) / 2; if before(best[mid], j) { lo = mid + 1 } else { hi = mid } }
                        best.insert(j, at: lo)
                        if best.count > k { best.removeLast() }
                    }
                    for (r, j) in best.enumerated() { order[r] = j }
                } else {
                    order.sort(by: before)
                }
                for r in 0..<k {
                    let out = o * k * inner + r * inner + i
                    values[out] = v[base + order[r] * inner]
                    indices[out] = Int64(order[r])
                }
            }
        }
        let valueTensor = x.isFloat ? ConstantTensor(shape: shape, floats: values) : ConstantTensor(shape: shape, ints: values.map { Int64($0) })
        return [valueTensor, ConstantTensor(shape: shape, ints: indices)]
    }

    static func reduceAxes(_ node: ONNXNode, _ inputs: [ConstantTensor?], rank: Int, opset: Int) throws -> [Int] {
        let fromInput = (node.opType == "ReduceSum" && opset >= 13) || opset >= 18
        var list: [Int]?
        if fromInput {
            if inputs.count > 1, let a = inputs[1] { list = a.ints.map { Int(clamping: $0) } }
        } else {
            list = try node.ints("axes")
        }
        if list == nil || list!.isEmpty {
            if try node.int("noop_with_empty_axes", default: 0) != 0 { return [] }
            return Array(0..<rank)
        }
        return try Array(Set(list!.map { try ConstantFolder.normalizedAxis($0, rank: rank, node) })).sorted()
    }

    static func reduce(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int, _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        guard let x = inputs.first ?? nil else { throw node.invalid("missing input") }
        let rank = x.shape.count
        let axes = Set(try reduceAxes(node, inputs, rank: rank, opset: opset))
        let keep = try node.int("keepdims", default: 1) != 0
        let keptShape = x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let outShape = keep ? keptShape : x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        let outCount = uncheckedProduct(keptShape)
        try budget.charge(outCount + x.count, node)
        if axes.isEmpty { return x }
        guard x.count > 0 || node.opType == "ReduceSum" else { throw node.invalid("\(node.opType) of an empty tensor") }
        // Output index of every input element: its coordinates with the reduced axes at 0.
        let outStrides = elementStrides(keptShape)
        let target = ConstantFolder.tiledIndices(x.shape, steps: (0..<rank).map { axes.contains($0) ? 0 : outStrides[$0] })
        if !x.isFloat && node.opType != "ReduceMean" {
            let v = x.ints
            var out = [Int64](repeating: node.opType == "ReduceMin" ? .max : (node.opType == "ReduceMax" ? .min : 0), count: outCount)
            for (e, t) in target.enumerated() {
                switch node.opType {
                case "ReduceMin": out[t] = min(out[t], v[e])
                case "ReduceMax": out[t] = max(out[t], v[e])
                default: out[t] &+= v[e]
                }
            }
            return ConstantTensor(shape: outShape, ints: out)
        }
        let v = x.floats
        var out = [Float](repeating: node.opType == "ReduceMin" ? .infinity : (node.opType == "ReduceMax" ? -.infinity : 0), count: outCount)
        for (e, t) in target.enumerated() {
            switch node.opType {
            case "ReduceMin": out[t] = v[e].isNaN || out[t].isNaN ? .nan : min(out[t], v[e])
            case "ReduceMax": out[t] = v[e].isNaN || out[t].isNaN ? .nan : max(out[t], v[e])
            default: out[t] += v[e]
            }
        }
        if node.opType == "ReduceMean" {
            let n = Float(x.count / max(outCount, 1))
            for t in out.indices { out[t] /= n }
        }
        return ConstantTensor(shape: outShape, floats: out)
    }

    static func argExtreme(_ node: ONNXNode, _ x: ConstantTensor, _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        let rank = x.shape.count
        let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: 0), rank: rank, node)
        let keep = try node.int("keepdims", default: 1) != 0
        let last = try node.int("select_last_index", default: 0) != 0
        let dim = x.shape[axis]
        guard dim > 0 else { throw node.invalid("\(node.opType) over an empty axis") }
        let outer = uncheckedProduct(x.shape[..<axis]), inner = uncheckedProduct(x.shape[(axis + 1)...])
        try budget.charge(outer * inner, node)
        let v = x.floats
        let isMax = node.opType == "ArgMax"
        var out = [Int64](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                for j in 1..<max(dim, 1) {
                    let (a, b) = (v[o * dim * inner + j * inner + i], v[o * dim * inner + best * inner + i])
                    if isMax ? (a > b || (last && a == b)) : (a < b || (last && a == b)) { best = j }
                }
                out[o * inner + i] = Int64(best)
            }
        }
        var shape = x.shape
        if keep { shape[axis] = 1 } else { shape.remove(at: axis) }
        return ConstantTensor(shape: shape, ints: out)
    }

    // MARK: - Products

    static func gemm(_ node: ONNXNode, _ inputs: [ConstantTensor?], dense: DenseKernel?, pool: ThreadPool,
                     _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        guard inputs.count >= 2, let a = inputs[0], let b = inputs[1], a.shape.count == 2, b.shape.count == 2 else {
            throw node.invalid("Gemm needs 2-D A and B")
        }
        let transA = try node.int("transA", default: 0) != 0, transB = try node.int("transB", default: 0) != 0
        let alpha = try node.float("alpha", default: 1), beta = try node.float("beta", default: 1)
        let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (kb, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == kb else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': Gemm of \(a.shape) and \(b.shape)") }
        _ = try checkedCount([m, n], node, &budget)
        if let dense, !transA, dense.k == k, dense.n == n {
            // The kernel holds alpha·B and beta·C (a [N] or scalar C), packed at load time.
            var out = [Float](repeating: 0, count: m * n)
            if m > 0 {
                let av = a.floats
                av.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { y in
                    dense.run(input: x.baseAddress!, output: y.baseAddress!, rows: m, pool: pool)
                } }
            }
            return ConstantTensor(shape: [m, n], floats: out)
        }
        let (av, bv) = (a.floats, b.floats)
        var out = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for p in 0..<k {
                let x = alpha * (transA ? av[p * m + i] : av[i * k + p])
                if x == 0 { continue }
                for j in 0..<n { out[i * n + j] += x * (transB ? bv[j * k + p] : bv[p * n + j]) }
            }
        }
        if inputs.count > 2, let c = inputs[2] {
            let shape = try ConstantFolder.broadcastShape(c.shape, [m, n], node)
            guard shape == [m, n] else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': C of shape \(c.shape) for [\(m), \(n)]") }
            let ci = ConstantFolder.broadcastIndices(from: c.shape, to: [m, n]), cv = c.floats
            for e in 0..<(m * n) { out[e] += beta * cv[ci[e]] }
        }
        return ConstantTensor(shape: [m, n], floats: out)
    }

    static func matmul(_ node: ONNXNode, _ a: ConstantTensor, _ b: ConstantTensor, dense: DenseKernel?, pool: ThreadPool,
                       _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        guard a.shape.count >= 1, b.shape.count >= 1 else { throw node.invalid("MatMul of scalars") }
        let sa = a.shape.count == 1 ? [1] + a.shape : a.shape
        let sb = b.shape.count == 1 ? b.shape + [1] : b.shape
        let (m, k) = (sa[sa.count - 2], sa[sa.count - 1])
        let (kb, n) = (sb[sb.count - 2], sb[sb.count - 1])
        guard k == kb else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': MatMul of \(a.shape) and \(b.shape)") }
        let lead = try ConstantFolder.broadcastShape(Array(sa.dropLast(2)), Array(sb.dropLast(2)), node)
        var shape = lead + [m, n]
        let count = try checkedCount(shape, node, &budget)
        var out = [Float](repeating: 0, count: count)
        if let dense, b.shape.count == 2, dense.k == k, dense.n == n {
            let rows = a.count / max(k, 1)
            if rows > 0 {
                let av = a.floats
                av.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { y in
                    dense.run(input: x.baseAddress!, output: y.baseAddress!, rows: rows, pool: pool)
                } }
            }
        } else {
            let batches = uncheckedProduct(lead)
            let ai = ConstantFolder.broadcastIndices(from: Array(sa.dropLast(2)), to: lead)
            let bi = ConstantFolder.broadcastIndices(from: Array(sb.dropLast(2)), to: lead)
            let (av, bv) = (a.floats, b.floats)
            for t in 0..<batches {
                let (ao, bo, oo) = (ai.isEmpty ? 0 : ai[t] * m * k, bi.isEmpty ? 0 : bi[t] * k * n, t * m * n)
                for i in 0..<m { for p in 0..<k {
                    let x = av[ao + i * k + p]
                    if x == 0 { continue }
                    for j in 0..<n { out[oo + i * n + j] += x * bv[bo + p * n + j] }
                } }
            }
        }
        if a.shape.count == 1 { shape.remove(at: shape.count - 2) }
        if b.shape.count == 1 { shape.removeLast() }
        return ConstantTensor(shape: shape, floats: out)
    }

    static func checkedCount(_ shape: [Int], _ node: ONNXNode, _ budget: inout ConstantFolder.Budget) throws -> Int {
        guard let count = checkedElementCount(shape) else { throw node.invalid("result shape \(shape) is invalid or overflows") }
        try budget.charge(count, node)
        return count
    }

    // MARK: - Convolutions on ROIs (Mask R-CNN's mask head)

    /// 2-D Conv of a run-time-shaped `[N, C, H, W]` (N ROIs) on the engine's convolution kernel for
    /// the per-image geometry (N is its batch): packed once per geometry when the node's weights are
    /// constants (`cache`), else per call.
    static func conv(_ node: ONNXNode, _ inputs: [ConstantTensor?], pool: ThreadPool, cache: TailConvCache? = nil,
                     _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        guard inputs.count >= 2, let x = inputs[0], let w = inputs[1], x.shape.count == 4, w.shape.count == 4 else {
            throw node.unsupported("only 2-D Conv ([N, C, H, W] input, [M, C/group, kH, kW] weights) in the run-time-shaped tail")
        }
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (m, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let group = try node.int("group", default: 1)
        let strides = try node.ints("strides") ?? [1, 1], dilations = try node.ints("dilations") ?? [1, 1]
        var pads = try node.ints("pads") ?? [0, 0, 0, 0]
        let autoPad = try node.string("auto_pad", default: "NOTSET")
        guard group >= 1, c % group == 0, m % group == 0, cg == c / group, strides.count == 2, dilations.count == 2, pads.count == 4,
              strides.allSatisfy({ $0 >= 1 && $0 < 1 << 10 }), dilations.allSatisfy({ $0 >= 1 && $0 < 1 << 10 }),
              pads.allSatisfy({ $0 >= 0 && $0 < 1 << 10 }), kh >= 1, kw >= 1 else {
            throw node.invalid("Conv of \(x.shape) with weights \(w.shape), group \(group), strides \(strides), pads \(pads)")
        }
        if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            for (axis, size) in [(0, h), (1, wd)] {
                let out = (size + strides[axis] - 1) / strides[axis]
                let k = ((axis == 0 ? kh : kw) - 1) * dilations[axis] + 1
                let total = max((out - 1) * strides[axis] + k - size, 0)
                pads[axis] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                pads[axis + 2] = total - pads[axis]
            }
        } else if autoPad == "VALID" { pads = [0, 0, 0, 0] }
        let outH = (h + pads[0] + pads[2] - ((kh - 1) * dilations[0] + 1)) / strides[0] + 1
        let outW = (wd + pads[1] + pads[3] - ((kw - 1) * dilations[1] + 1)) / strides[1] + 1
        guard outH >= 1, outW >= 1 else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': kernel larger than the padded input \(x.shape)") }
        let count = try checkedCount([n, m, outH, outW], node, &budget)
        if n == 0 { return ConstantTensor(shape: [0, m, outH, outW], floats: []) }
        let geometry = Conv2DGeometry(inChannels: c, inHeight: h, inWidth: wd, outChannels: m, outHeight: outH, outWidth: outW,
                                      kernelHeight: kh, kernelWidth: kw, strideH: strides[0], strideW: strides[1],
                                      dilationH: dilations[0], dilationW: dilations[1], padTop: pads[0], padLeft: pads[1], groups: group)
        let bias = inputs.count > 2 ? inputs[2]?.floats : nil
        guard bias == nil || bias!.count == m else { throw node.invalid("bias of \(bias!.count) values for \(m) channels") }
        let kernel = cache?.kernel(for: geometry) { Conv2DKernel(geometry: geometry, weights: w.floats, bias: bias, activation: .none) }
            ?? Conv2DKernel(geometry: geometry, weights: w.floats, bias: bias, activation: .none)
        let scratchCount = kernel.scratchFloatsPerThread * pool.threadCount
        guard scratchCount <= ImportLimits.maxScratchFloats else { throw node.unsupported("Conv scratch of \(scratchCount) floats") }
        try budget.charge(scratchCount, node)
        var out = [Float](repeating: 0, count: count)
        var scratch = [Float](repeating: 0, count: max(scratchCount, 1))
        let xv = x.floats
        xv.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { yp in scratch.withUnsafeMutableBufferPointer { sp in
            kernel.run(input: xp.baseAddress!, residual: nil, output: yp.baseAddress!, batch: n, scratch: sp.baseAddress!, pool: pool)
        } } }
        return ConstantTensor(shape: [n, m, outH, outW], floats: out)
    }

    /// 2-D ConvTranspose (group 1, dilation 1) as one product per image — the weights `[C, M·kH·kW]`
    /// on the channel-last input (a kernel packed at load when they are constant) — and col2im.
    static func convTranspose(_ node: ONNXNode, _ inputs: [ConstantTensor?], dense: DenseKernel?, pool: ThreadPool,
                              _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        guard inputs.count >= 2, let x = inputs[0], let w = inputs[1], x.shape.count == 4, w.shape.count == 4, x.shape[1] == w.shape[0] else {
            throw node.unsupported("only 2-D ConvTranspose ([N, C, H, W] input, [C, M, kH, kW] weights) in the run-time-shaped tail")
        }
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (m, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
        guard try node.int("group", default: 1) == 1, (try node.ints("dilations") ?? [1, 1]) == [1, 1],
              try node.string("auto_pad", default: "NOTSET") == "NOTSET", node.attributes["output_shape"] == nil else {
            throw node.unsupported("ConvTranspose with groups, dilation, auto_pad or output_shape")
        }
        let strides = try node.ints("strides") ?? [1, 1], pads = try node.ints("pads") ?? [0, 0, 0, 0]
        let outputPadding = try node.ints("output_padding") ?? [0, 0]
        guard strides.count == 2, pads.count == 4, outputPadding.count == 2, strides.allSatisfy({ $0 >= 1 && $0 < 1 << 10 }),
              pads.allSatisfy({ $0 >= 0 && $0 < 1 << 10 }), outputPadding.allSatisfy({ $0 >= 0 && $0 < 1 << 10 }) else {
            throw node.invalid("strides \(strides), pads \(pads), output_padding \(outputPadding)")
        }
        let outH = strides[0] * (h - 1) + outputPadding[0] + kh - pads[0] - pads[2]
        let outW = strides[1] * (wd - 1) + outputPadding[1] + kw - pads[1] - pads[3]
        guard outH >= 1, outW >= 1 else { throw node.invalid("output \(outH) × \(outW)") }
        let count = try checkedCount([n, m, outH, outW], node, &budget)
        let cols = m * kh * kw, plane = h * wd
        let chunk = max(1, min(n, (1 << 22) / max(plane * cols, 1)))
        try budget.charge(chunk * plane * (c + cols), node)
        let kernel = dense.flatMap { $0.k == c && $0.n == cols ? $0 : nil } ?? DenseKernel(weights: w.floats, k: c, n: cols, transposed: false)
        let bias = inputs.count > 2 ? inputs[2]?.floats : nil
        guard bias == nil || bias!.count == m else { throw node.invalid("bias of \(bias!.count) values for \(m) channels") }
        // Images go through the product in chunks (one packed product of chunk·plane rows, not
        // one per ROI), bounded to about 4 M floats of product per chunk. col2im then adds each
        // product row's m·kH·kW values into the output planes; Mask R-CNN's 2 × 2 stride-2 kernel
        // writes every output pixel exactly once.
        var out = [Float](repeating: 0, count: count)
        var rows = [Float](repeating: 0, count: chunk * plane * c), product = [Float](repeating: 0, count: chunk * plane * cols)
        let (sy, sx, py, px) = (strides[0], strides[1], pads[0], pads[1])
        let outPlane = outH * outW
        x.floats.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
        rows.withUnsafeMutableBufferPointer { rp in product.withUnsafeMutableBufferPointer { pp in
            var first = 0
            while first < n {
                let images = min(chunk, n - first)
                for image in 0..<images {
                    let source = xp.baseAddress! + (first + image) * c * plane
                    let target = rp.baseAddress! + image * plane * c
                    for ch in 0..<c { for p in 0..<plane { target[p * c + ch] = source[ch * plane + p] } }
                }
                kernel.run(input: UnsafePointer(rp.baseAddress!), output: pp.baseAddress!, rows: images * plane, pool: pool)
                for image in 0..<images {
                    let base = op.baseAddress! + (first + image) * m * outPlane
                    let products = UnsafePointer(pp.baseAddress! + image * plane * cols)
                    for y in 0..<h { for xx in 0..<wd {
                        let row = products + (y * wd + xx) * cols
                        for ky in 0..<kh {
                            let oy = y * sy - py + ky
                            guard oy >= 0, oy < outH else { continue }
                            for kx in 0..<kw {
                                let ox = xx * sx - px + kx
                                guard ox >= 0, ox < outW else { continue }
                                let target = base + oy * outW + ox
                                let tap = row + ky * kw + kx
                                for o in 0..<m { target[o * outPlane] += tap[o * kh * kw] }
                            }
                        }
                    } }
                    if let bias { for o in 0..<m { let b = bias[o]; for p in 0..<outPlane { base[o * outPlane + p] += b } } }
                }
                first += images
            }
        } } } }
        return ConstantTensor(shape: [n, m, outH, outW], floats: out)
    }

    // MARK: - Detection operators

    /// ONNX NonMaxSuppression as ONNX Runtime computes it: per batch and class, candidates above
    /// `score_threshold` by decreasing score (ties: lower box index first), greedily kept unless
    /// their IoU with a kept box exceeds `iou_threshold`; boxes of zero area never suppress.
    static func nonMaxSuppression(_ node: ONNXNode, _ inputs: [ConstantTensor?], _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        guard inputs.count >= 2, let boxes = inputs[0], let scores = inputs[1] else { throw node.invalid("needs boxes and scores") }
        guard boxes.shape.count == 3, boxes.shape[2] == 4, scores.shape.count == 3,
              scores.shape[0] == boxes.shape[0], scores.shape[2] == boxes.shape[1] else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': boxes \(boxes.shape) and scores \(scores.shape)")
        }
        let maxPerClass: Int64 = inputs.count > 2 ? (inputs[2]?.ints.first ?? 0) : 0
        let iouThreshold: Float = inputs.count > 3 ? (inputs[3]?.floats.first ?? 0) : 0
        let scoreThreshold: Float? = inputs.count > 4 ? inputs[4]?.floats.first : nil
        let centerPoint = try node.int("center_point_box", default: 0) != 0
        let (batches, count, classes) = (boxes.shape[0], boxes.shape[1], scores.shape[1])
        try budget.charge(batches * classes * count * 2, node)
        let b = boxes.floats, s = scores.floats
        var selected: [Int64] = []
        guard maxPerClass > 0 else { return ConstantTensor(shape: [0, 3], ints: []) }
        func corners(_ box: Int, _ batch: Int) -> (Float, Float, Float, Float) {
            let o = (batch * count + box) * 4
            if centerPoint {
                let (cx, cy, w, h) = (b[o], b[o + 1], b[o + 2], b[o + 3])
                return (cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2)
            }
            return (min(b[o], b[o + 2]), min(b[o + 1], b[o + 3]), max(b[o], b[o + 2]), max(b[o + 1], b[o + 3]))
        }
        for batch in 0..<batches {
            let c = (0..<count).map { corners($0, batch) }
            for cls in 0..<classes {
                let base = (batch * classes + cls) * count
                // ONNX Runtime pops candidates from a std::priority_queue ordered by score alone
                // (pushed in box order): equal scores come out in the order of that binary heap,
                // which the queue below reproduces, so ties pick the same boxes.
                var queue = ScoreHeap()
                for i in 0..<count where scoreThreshold == nil || s[base + i] > scoreThreshold! { queue.push(s[base + i], i) }
                var kept: [Int] = []
                while let i = queue.pop() {
                    if Int64(kept.count) >= maxPerClass { break }
                    let (y1, x1, y2, x2) = c[i]
                    let area = (y2 - y1) * (x2 - x1)
                    var suppressed = false
                    for j in kept {
                        let (v1, u1, v2, u2) = c[j]
                        let iy = min(y2, v2) - max(y1, v1), ix = min(x2, u2) - max(x1, u1)
                        guard iy > 0, ix > 0, area > 0 else { continue }
                        let other = (v2 - v1) * (u2 - u1)
                        guard other > 0 else { continue }
                        let inter = iy * ix
                        let union = area + other - inter
                        if union > 0 && inter / union > iouThreshold { suppressed = true; break }
                    }
                    if !suppressed { kept.append(i) }
                }
                for i in kept { selected += [Int64(batch), Int64(cls), Int64(i)] }
            }
        }
        return ConstantTensor(shape: [selected.count / 3, 3], ints: selected)
    }

    /// ONNX RoiAlign (average or max) as ONNX Runtime samples it: `sampling_ratio` points per bin
    /// side (adaptive when 0), bilinear taps clamped to the feature map, boxes `[x1, y1, x2, y2]`.
    static func roiAlign(_ node: ONNXNode, _ x: ConstantTensor, _ rois: ConstantTensor, _ batchIndices: ConstantTensor, opset: Int,
                         pool: ThreadPool, _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        guard x.shape.count == 4, rois.shape.count == 2, rois.shape[1] == 4, batchIndices.count == rois.shape[0] else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': X \(x.shape), rois \(rois.shape), batch_indices \(batchIndices.shape)")
        }
        let (n, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let outH = try node.int("output_height", default: 1), outW = try node.int("output_width", default: 1)
        let ratio = try node.int("sampling_ratio", default: 0)
        let scale = try node.float("spatial_scale", default: 1)
        let isMax = try node.string("mode", default: "avg") == "max"
        let transform = try node.string("coordinate_transformation_mode", default: "half_pixel")
        let halfPixel = opset >= 16 && transform == "half_pixel"
        guard outH >= 1, outW >= 1, outH < 1 << 12, outW < 1 << 12, ratio >= 0, ratio < 1 << 8 else {
            throw node.invalid("output \(outH)×\(outW), sampling_ratio \(ratio)")
        }
        let numRois = rois.shape[0]
        let count = try checkedCount([numRois, channels, outH, outW], node, &budget)
        let rv = rois.floats, bi = batchIndices.ints
        let offset: Float = halfPixel ? 0.5 : 0
        // First the bilinear taps of every ROI's sample points (shared by its channels), then
        // the channels of all ROIs in parallel: each (ROI, channel) sums its taps in ONNX
        // Runtime's order (w1·x1 + w2·x2 + w3·x3 + w4·x4 per point, points in bin order).
        typealias Tap = (Int, Int, Int, Int, Float, Float, Float, Float)
        var taps: [Tap] = []
        var roiBatch = [Int](repeating: 0, count: numRois), roiFirstTap = [Int](repeating: 0, count: numRois + 1)
        var roiSamples = [Int](repeating: 1, count: numRois)
        for r in 0..<numRois {
            let batch = Int(clamping: bi[r])
            guard batch >= 0, batch < n else { throw node.invalid("batch index \(bi[r]) out of range \(n)") }
            let startW = rv[r * 4] * scale - offset, startH = rv[r * 4 + 1] * scale - offset
            let endW = rv[r * 4 + 2] * scale - offset, endH = rv[r * 4 + 3] * scale - offset
            var roiW = endW - startW, roiH = endH - startH
            // A NaN or infinite box samples nothing (its bins read 0) instead of trapping below.
            if !roiW.isFinite || !roiH.isFinite || !startW.isFinite || !startH.isFinite { roiW = 0; roiH = 0 }
            if !halfPixel { roiW = max(roiW, 1); roiH = max(roiH, 1) }
            let binH = roiH / Float(outH), binW = roiW / Float(outW)
            let gridH = ratio > 0 ? ratio : Int(min(max((roiH / Float(outH)).rounded(.up), 0), Float(1024)))
            let gridW = ratio > 0 ? ratio : Int(min(max((roiW / Float(outW)).rounded(.up), 0), Float(1024)))
            let samples = max(gridH * gridW, 1)
            // The sampling points of this ROI (and their reads, per channel) count as work: a
            // huge output size times an adaptive grid would otherwise allocate without bound.
            guard let points = checkedElementCount([outH, outW, samples]), let reads = checkedMultiply(points, max(channels, 1)) else {
                throw node.unsupported("RoiAlign of \(outH) × \(outW) bins of \(samples) samples is too large")
            }
            try budget.charge(points, node)
            try budget.charge(reads / 16, node)
            roiBatch[r] = batch
            roiSamples[r] = samples
            for ph in 0..<outH { for pw in 0..<outW { for iy in 0..<gridH {
                let yy = startH + Float(ph) * binH + (Float(iy) + 0.5) * binH / Float(gridH)
                for ix in 0..<gridW {
                    let xx = startW + Float(pw) * binW + (Float(ix) + 0.5) * binW / Float(gridW)
                    taps.append(bilinearTap(yy, xx, height: height, width: width))
                }
            } } }
            roiFirstTap[r + 1] = taps.count
        }
        var out = [Float](repeating: 0, count: count)
        let items = numRois * channels, bins = outH * outW
        if items > 0 {
            x.floats.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in taps.withUnsafeBufferPointer { tp in
                let (xv, outBase, tapBase) = (xp.baseAddress!, op.baseAddress!, tp.baseAddress!)
                let tasks = items * bins < 16_384 ? 1 : min(pool.threadCount * 4, items)
                let work = { (task: Int) in
                    for item in (items * task / tasks)..<(items * (task + 1) / tasks) {
                        let (r, c) = item.quotientAndRemainder(dividingBy: channels)
                        let plane = xv + (roiBatch[r] * channels + c) * height * width
                        let perBin = (roiFirstTap[r + 1] - roiFirstTap[r]) / bins
                        var t = tapBase + roiFirstTap[r]
                        let target = outBase + item * bins
                        for bin in 0..<bins {
                            var acc: Float = 0
                            var best = -Float.infinity
                            for _ in 0..<perBin {
                                let (p1, p2, p3, p4, w1, w2, w3, w4) = t.pointee
                                t += 1
                                if isMax {
                                    // ONNX Runtime's max mode: the largest weighted tap.
                                    best = max(best, max(max(w1 * plane[p1], w2 * plane[p2]), max(w3 * plane[p3], w4 * plane[p4])))
                                } else {
                                    acc += w1 * plane[p1] + w2 * plane[p2] + w3 * plane[p3] + w4 * plane[p4]
                                }
                            }
                            target[bin] = isMax ? (perBin > 0 ? best : 0) : acc / Float(roiSamples[r])
                        }
                    }
                }
                if tasks <= 1 { work(0) } else { pool.parallelFor(tasks, work) }
            } } }
        }
        return ConstantTensor(shape: [numRois, channels, outH, outW], floats: out)
    }

    @inline(__always)
    static func bilinearTap(_ yIn: Float, _ xIn: Float, height: Int, width: Int) -> (Int, Int, Int, Int, Float, Float, Float, Float) {
        var y = yIn, x = xIn
        if y < -1 || y > Float(height) || x < -1 || x > Float(width) || y.isNaN || x.isNaN { return (0, 0, 0, 0, 0, 0, 0, 0) }
        if y <= 0 { y = 0 }
        if x <= 0 { x = 0 }
        var yLow = Int(y), xLow = Int(x), yHigh: Int, xHigh: Int
        if yLow >= height - 1 { yLow = height - 1; yHigh = yLow; y = Float(yLow) } else { yHigh = yLow + 1 }
        if xLow >= width - 1 { xLow = width - 1; xHigh = xLow; x = Float(xLow) } else { xHigh = xLow + 1 }
        let ly = y - Float(yLow), lx = x - Float(xLow), hy = 1 - ly, hx = 1 - lx
        return (yLow * width + xLow, yLow * width + xHigh, yHigh * width + xLow, yHigh * width + xHigh, hy * hx, hy * lx, ly * hx, ly * lx)
    }

    static func scatterElements(_ node: ONNXNode, _ data: ConstantTensor, _ indices: ConstantTensor, _ updates: ConstantTensor,
                                _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        let rank = data.shape.count
        let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: 0), rank: rank, node)
        guard indices.shape == updates.shape, indices.shape.count == rank else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': indices \(indices.shape), updates \(updates.shape), data \(data.shape)")
        }
        let reduction = try node.string("reduction", default: "none")
        try budget.charge(data.count + updates.count, node)
        if axis == 0, reduction == "none", rank >= 1, data.isFloat == updates.isFloat, indices.shape.dropFirst() == data.shape.dropFirst() {
            return try scatterRows(node, data, indices, updates)
        }
        let dataStrides = elementStrides(data.shape)
        let coordinates = ConstantFolder.tiledIndices(indices.shape, steps: (0..<rank).map { $0 == axis ? 0 : dataStrides[$0] })
        let idx = indices.ints
        let dim = data.shape[axis]
        var targets = [Int](repeating: 0, count: idx.count)
        for e in 0..<idx.count {
            var i = Int(clamping: idx[e])
            if i < 0 { i += dim }
            guard i >= 0, i < dim else { throw node.invalid("index \(idx[e]) out of range for dimension \(dim)") }
            targets[e] = coordinates[e] + i * dataStrides[axis]
        }
        guard ["none", "add", "mul", "max", "min"].contains(reduction) else { throw node.unsupported("reduction '\(reduction)'") }
        if data.isFloat || updates.isFloat {
            var out = data.floats
            let u = updates.floats
            for e in 0..<targets.count {
                let t = targets[e]
                switch reduction {
                case "none": out[t] = u[e]
                case "add": out[t] += u[e]
                case "mul": out[t] *= u[e]
                case "max": out[t] = max(out[t], u[e])
                default: out[t] = min(out[t], u[e])
                }
            }
            return ConstantTensor(shape: data.shape, floats: out)
        }
        var out = data.ints
        let u = updates.ints
        for e in 0..<targets.count {
            let t = targets[e]
            switch reduction {
            case "none": out[t] = u[e]
            case "add": out[t] &+= u[e]
            case "mul": out[t] &*= u[e]
            case "max": out[t] = max(out[t], u[e])
            default: out[t] = min(out[t], u[e])
            }
        }
        return ConstantTensor(shape: data.shape, ints: out)
    }

    /// ScatterElements along axis 0 whose indices have the data's trailing shape (Faster/Mask
    /// R-CNN's MultiScaleRoIAlign: each level's pooled ROIs put back in ROI order, indices an
    /// `Expand` of one ROI number per row): element `e` of index row k goes to
    /// `index · inner + e % inner`. A row whose indices are all equal is one block copy. The general
    /// path built two index arrays the size of the features (2 × 24 M Ints on R50).
    static func scatterRows(_ node: ONNXNode, _ data: ConstantTensor, _ indices: ConstantTensor, _ updates: ConstantTensor) throws -> ConstantTensor {
        let idx = indices.ints
        if data.isFloat {
            var out = data.floats
            try scatterRows(node, &out, shape: data.shape, idx, updates.floats)
            return ConstantTensor(shape: data.shape, floats: out)
        }
        var out = data.ints
        try scatterRows(node, &out, shape: data.shape, idx, updates.ints)
        return ConstantTensor(shape: data.shape, ints: out)
    }

    /// `scatterRows` into `out` (the data's values, shape `shape`; `indices` and `updates` of the
    /// shape the caller checked): rows whose indices agree are block copies.
    static func scatterRows<T>(_ node: ONNXNode, _ out: inout [T], shape: [Int], _ indices: [Int64], _ updates: [T]) throws {
        let dim = shape[0]
        let inner = uncheckedProduct(shape.dropFirst())
        guard inner > 0 else { return }
        let rows = indices.count / inner
        try indices.withUnsafeBufferPointer { ip in try updates.withUnsafeBufferPointer { up in try out.withUnsafeMutableBufferPointer { op in
            for k in 0..<rows {
                let row = k * inner
                let first = ip[row]
                var uniform = true
                for e in 1..<inner where ip[row + e] != first { uniform = false; break }
                if uniform {
                    var i = Int(clamping: first)
                    if i < 0 { i += dim }
                    guard i >= 0, i < dim else { throw node.invalid("index \(first) out of range for dimension \(dim)") }
                    (op.baseAddress! + i * inner).update(from: up.baseAddress! + row, count: inner)
                    continue
                }
                for e in 0..<inner {
                    var i = Int(clamping: ip[row + e])
                    if i < 0 { i += dim }
                    guard i >= 0, i < dim else { throw node.invalid("index \(ip[row + e]) out of range for dimension \(dim)") }
                    op[i * inner + e] = up[row + e]
                }
            }
        } } }
    }

    static func gatherND(_ node: ONNXNode, _ data: ConstantTensor, _ indices: ConstantTensor, _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        let b = try node.int("batch_dims", default: 0)
        guard let k = indices.shape.last, b >= 0, b < indices.shape.count, b + k <= data.shape.count,
              Array(data.shape[..<b]) == Array(indices.shape[..<b]) else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': data \(data.shape), indices \(indices.shape), batch_dims \(b)")
        }
        let sliceShape = Array(data.shape[(b + k)...])
        let slice = uncheckedProduct(sliceShape)
        let shape = Array(indices.shape.dropLast()) + sliceShape
        let count = try checkedCount(shape, node, &budget)
        let strides = elementStrides(data.shape)
        let batchCount = uncheckedProduct(data.shape[..<b])
        let tuplesPerBatch = uncheckedProduct(indices.shape[b..<(indices.shape.count - 1)])
        let idx = indices.ints
        var source: [Int] = []
        source.reserveCapacity(count)
        for batch in 0..<batchCount {
            let batchOffset = batch * (b > 0 ? strides[b - 1] : 0)
            for t in 0..<tuplesPerBatch {
                var offset = batchOffset
                for j in 0..<k {
                    let dim = data.shape[b + j]
                    var i = Int(clamping: idx[(batch * tuplesPerBatch + t) * k + j])
                    if i < 0 { i += dim }
                    guard i >= 0, i < dim else { throw node.invalid("index out of range for dimension \(dim)") }
                    offset += i * strides[b + j]
                }
                for e in 0..<slice { source.append(offset + e) }
            }
        }
        return ConstantFolder.pick(data, source, shape: shape)
    }

    static func gatherElements(_ node: ONNXNode, _ data: ConstantTensor, _ indices: ConstantTensor, _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        let rank = data.shape.count
        let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: 0), rank: rank, node)
        guard indices.shape.count == rank else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': indices \(indices.shape), data \(data.shape)") }
        _ = try checkedCount(indices.shape, node, &budget)
        let strides = elementStrides(data.shape)
        let base = ConstantFolder.tiledIndices(indices.shape, steps: (0..<rank).map { $0 == axis ? 0 : strides[$0] })
        let idx = indices.ints, dim = data.shape[axis]
        let source = try (0..<idx.count).map { e -> Int in
            var i = Int(clamping: idx[e])
            if i < 0 { i += dim }
            guard i >= 0, i < dim else { throw node.invalid("index \(idx[e]) out of range for dimension \(dim)") }
            return base[e] + i * strides[axis]
        }
        return ConstantFolder.pick(data, source, shape: indices.shape)
    }

    // MARK: - Resize and Pad

    static func resize(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int, _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        guard let x = inputs.first ?? nil else { throw node.invalid("missing input") }
        let rank = x.shape.count
        let plan = try ResizePlan(node, inputShape: x.shape, inputs: inputs.map { $0 }, opset: opset)
        var current = x.floats
        var shape = x.shape
        try budget.charge(uncheckedProduct(plan.outputShape), node)
        // Only the last two axes change (Mask R-CNN's paste: a 28 × 28 mask to its box): ONNX
        // Runtime's 2-D kernel, whose bilinear sum rounds differently from two 1-D passes.
        if rank >= 2, (0..<(rank - 2)).allSatisfy({ plan.outputShape[$0] == shape[$0] && plan.axes[$0].isIdentity }) {
            let kernel = Resize2DKernel(plan: plan, heightAxis: rank - 2, widthAxis: rank - 1, inHeight: shape[rank - 2],
                                        inWidth: shape[rank - 1], nearest: try node.string("mode", default: "nearest") == "nearest")
            let planes = uncheckedProduct(shape[..<(rank - 2)])
            var out = [Float](repeating: 0, count: uncheckedProduct(plan.outputShape))
            if planes > 0, !out.isEmpty, !current.isEmpty {
                current.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { yp in
                    kernel.run(input: xp.baseAddress!, output: yp.baseAddress!, planes: planes, pool: .serial())
                } }
            }
            return ConstantTensor(shape: plan.outputShape, floats: out)
        }
        for axis in 0..<rank where plan.outputShape[axis] != shape[axis] || !plan.axes[axis].isIdentity {
            let taps = plan.axes[axis]
            var next = shape
            next[axis] = plan.outputShape[axis]
            let outer = uncheckedProduct(shape[..<axis]), inner = uncheckedProduct(shape[(axis + 1)...])
            let (inLen, outLen) = (shape[axis], next[axis])
            try budget.charge(uncheckedProduct(next), node)
            var out = [Float](repeating: 0, count: uncheckedProduct(next))
            for o in 0..<outer { for j in 0..<outLen {
                let (i0, i1, w) = taps.taps[j]
                let (s0, s1, d) = ((o * inLen + i0) * inner, (o * inLen + i1) * inner, (o * outLen + j) * inner)
                for i in 0..<inner { out[d + i] = current[s0 + i] * (1 - w) + current[s1 + i] * w }
            } }
            current = out
            shape = next
        }
        return ConstantTensor(shape: shape, floats: current)
    }

    static func pad(_ node: ONNXNode, _ inputs: [ConstantTensor?], opset: Int, _ budget: inout ConstantFolder.Budget) throws -> ConstantTensor {
        guard let x = inputs.first ?? nil else { throw node.invalid("missing input") }
        let rank = x.shape.count
        guard try node.string("mode", default: "constant") == "constant" else { throw node.unsupported("only constant padding") }
        var pads: [Int]
        var value: Float = 0
        if opset < 11 {
            pads = try node.ints("pads") ?? []
            value = try node.float("value", default: 0)
        } else {
            guard inputs.count > 1, let p = inputs[1] else { throw node.invalid("missing pads") }
            pads = p.ints.map { Int(clamping: $0) }
            if inputs.count > 2, let v = inputs[2] { value = v.floats.first ?? 0 }
            if inputs.count > 3, inputs[3] != nil { throw node.unsupported("Pad with an axes input") }
        }
        guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 && $0 < 1 << 20 }) else { throw node.unsupported("pads \(pads) for rank \(rank)") }
        let shape = (0..<rank).map { x.shape[$0] + pads[$0] + pads[$0 + rank] }
        let count = try checkedCount(shape, node, &budget)
        let outStrides = elementStrides(shape)
        let target = ConstantFolder.tiledIndices(x.shape, steps: outStrides, base: (0..<rank).reduce(0) { $0 + pads[$1] * outStrides[$1] })
        if !x.isFloat {
            var out = [Int64](repeating: Int64(value), count: count)
            for (e, v) in x.ints.enumerated() { out[target[e]] = v }
            return ConstantTensor(shape: shape, ints: out)
        }
        var out = [Float](repeating: value, count: count)
        for (e, v) in x.floats.enumerated() { out[target[e]] = v }
        return ConstantTensor(shape: shape, floats: out)
    }
}

/// A max-heap of (score, index) compared by score only, with the sift rules of libstdc++'s
/// `std::push_heap` / `std::pop_heap` (the hole moves to the larger child, the right one on
/// ties; the last element then sifts up from the hole), so that equal scores leave it in the same
/// order as from the `std::priority_queue` of ONNX Runtime's NonMaxSuppression.
struct ScoreHeap {
    private var items: [(score: Float, index: Int)] = []

    mutating func push(_ score: Float, _ index: Int) {
        items.append((score, index))
        siftUp(from: items.count - 1, (score, index))
    }

    private mutating func siftUp(from start: Int, _ value: (score: Float, index: Int)) {
        var hole = start
        while hole > 0 {
            let parent = (hole - 1) / 2
            guard items[parent].score < value.score else { break }
            items[hole] = items[parent]
            hole = parent
        }
        items[hole] = value
    }

    mutating func pop() -> Int? {
        guard let top = items.first else { return nil }
        let value = items.removeLast()
        let length = items.count
        guard length > 0 else { return top.index }
        var hole = 0, child = 0
        while child < (length - 1) / 2 {
            child = 2 * (child + 1)
            if items[child].score < items[child - 1].score { child -= 1 }
            items[hole] = items[child]
            hole = child
        }
        if length & 1 == 0 && child == (length - 2) / 2 {
            child = 2 * (child + 1)
            items[hole] = items[child - 1]
            hole = child - 1
        }
        siftUp(from: hole, value)
        return top.index
    }
}

/// ONNX Resize (nearest and linear, the coordinate modes exporters emit) as separable 1-D
/// interpolations: per axis, for every output index, two input indices and the weight of the
/// second. Shared by the planned prefix (lowered to per-axis dense products) and the tail.
struct ResizePlan {
    struct Axis {
        var taps: [(Int, Int, Float)]
        var isIdentity: Bool
    }
    var outputShape: [Int]
    var axes: [Axis]

    init(_ node: ONNXNode, inputShape: [Int], inputs: [ConstantTensor?], opset: Int) throws {
        let rank = inputShape.count
        let mode = try node.string("mode", default: "nearest")
        guard mode == "nearest" || mode == "linear" else { throw node.unsupported("Resize mode '\(mode)' (nearest and linear are supported)") }
        let transform = opset >= 11 ? try node.string("coordinate_transformation_mode", default: "half_pixel") : "asymmetric"
        let nearestMode = opset >= 11 ? try node.string("nearest_mode", default: "round_prefer_floor") : "floor"
        if try node.int("antialias", default: 0) != 0 { throw node.unsupported("Resize with antialias") }
        if node.attributes["axes"] != nil { throw node.unsupported("Resize with an axes attribute") }
        if try node.string("keep_aspect_ratio_policy", default: "stretch") != "stretch" { throw node.unsupported("keep_aspect_ratio_policy") }
        var scales: [Float]?
        var sizes: [Int]?
        let scaleIndex = opset >= 11 ? 2 : 1
        if opset >= 11, inputs.count > 3, let s = inputs[3], s.count > 0 { sizes = s.ints.map { Int(clamping: $0) } }
        if sizes == nil, inputs.count > scaleIndex, let s = inputs[scaleIndex], s.count > 0 { scales = s.floats }
        if sizes == nil && scales == nil, opset < 10, let s = node.attributes["scales"], case .floats(let v) = s { scales = v }
        var outputShape: [Int]
        var axisScales: [Float]
        if let sizes {
            guard sizes.count == rank, sizes.allSatisfy({ $0 >= 1 && $0 < 1 << 20 }) else { throw node.invalid("sizes \(sizes) for rank \(rank)") }
            outputShape = sizes
            axisScales = (0..<rank).map { Float(sizes[$0]) / Float(inputShape[$0]) }
        } else if let scales {
            guard scales.count == rank, scales.allSatisfy({ $0.isFinite && $0 > 0 && $0 < 4096 }) else { throw node.invalid("scales \(scales) for rank \(rank)") }
            outputShape = (0..<rank).map { max(Int((Float(inputShape[$0]) * scales[$0]).rounded(.down)), 1) }
            axisScales = scales
        } else {
            throw node.invalid("Resize needs scales or sizes")
        }
        guard outputShape.allSatisfy({ $0 < 1 << 20 }) else { throw node.unsupported("Resize output \(outputShape) is too large") }
        self.outputShape = outputShape
        axes = try (0..<rank).map { axis in
            let (inLen, outLen, scale) = (inputShape[axis], outputShape[axis], axisScales[axis])
            var taps: [(Int, Int, Float)] = []
            taps.reserveCapacity(outLen)
            for j in 0..<outLen {
                let x = Float(j)
                var original: Float
                switch transform {
                case "half_pixel": original = (x + 0.5) / scale - 0.5
                case "pytorch_half_pixel": original = outLen > 1 ? (x + 0.5) / scale - 0.5 : 0
                case "align_corners": original = outLen == 1 ? 0 : x * Float(inLen - 1) / Float(outLen - 1)
                case "asymmetric": original = x / scale
                case "tf_half_pixel_for_nn": original = (x + 0.5) / scale
                default: throw node.unsupported("coordinate_transformation_mode '\(transform)'")
                }
                if mode == "nearest" {
                    var i: Float
                    switch nearestMode {
                    case "round_prefer_floor": i = original == original.rounded(.down) + 0.5 ? original.rounded(.down) : original.rounded()
                    case "round_prefer_ceil": i = original.rounded()
                    case "floor": i = original.rounded(.down)
                    case "ceil": i = original.rounded(.up)
                    default: throw node.unsupported("nearest_mode '\(nearestMode)'")
                    }
                    let index = Int(min(max(i, 0), Float(inLen - 1)))
                    taps.append((index, index, 0))
                } else {
                    original = min(max(original, 0), Float(inLen - 1))
                    let i0 = Int(original.rounded(.down))
                    let i1 = min(i0 + 1, inLen - 1)
                    taps.append((i0, i1, original - Float(i0)))
                }
            }
            let identity = inLen == outLen && taps.enumerated().allSatisfy { $0.element.0 == $0.offset && $0.element.2 == 0 }
            return Axis(taps: taps, isIdentity: identity)
        }
    }
}

// MARK: - In place (tail values at their last use)

extension TailOps {
    /// Evaluates `node` in the buffer of its first input where it can, or returns nil (the caller
    /// then runs `evaluate`). `TailProgram` takes a register out of the file before the node that
    /// reads it last runs, so `inputs` then holds the only reference and Swift's copy-on-write
    /// leaves the buffer where it is; where another reference remains (a constant of the
    /// program, an input read twice) the first write copies it, as before. This removed copies
    /// of Mask R-CNN's 12.5 M-element pooled features (`ScatterElements` ×4 in MultiScaleRoIAlign)
    /// and of every activation's input (issue 13). Charges the budget as `evaluate` does.
    static func evaluateInPlace(_ node: ONNXNode, _ inputs: inout [ConstantTensor?], budget: inout ConstantFolder.Budget,
                                pool: ThreadPool) throws -> ConstantTensor? {
        switch node.opType {
        case "Relu", "Sigmoid", "Tanh":
            // The engine's vector activations (ONNX Runtime's are vectorised too; sigmoid and
            // tanh agree with `expf`-based ones to a few ulp, see `exp16`).
            guard inputs.count == 1, let shape = inputs[0]?.shape, let count = checkedElementCount(shape),
                  case .float(var values)? = inputs[0]?.storage, values.count == count else { return nil }
            inputs[0] = nil
            try budget.charge(count, node)
            let activation: Activation = node.opType == "Relu" ? .relu : node.opType == "Sigmoid" ? .sigmoid : .tanh
            values.withUnsafeMutableBufferPointer { p in
                if let base = p.baseAddress { runActivation(activation, input: base, output: base, count: count, pool: pool) }
            }
            return ConstantTensor(shape: shape, floats: values)
        case "ScatterElements":
            // No local copy of the data tensor: it would hold a second reference to the buffer.
            guard inputs.count == 3, let shape = inputs[0]?.shape, inputs[0]?.isFloat == true, let indices = inputs[1], let updates = inputs[2],
                  updates.isFloat, try node.int("axis", default: 0) == 0, try node.string("reduction", default: "none") == "none",
                  shape.count >= 1, indices.shape == updates.shape, indices.shape.count == shape.count,
                  indices.shape.dropFirst() == shape.dropFirst(), !indices.isFloat else { return nil }
            try budget.charge(uncheckedProduct(shape) + updates.count, node)
            guard case .float(var out)? = inputs[0]?.storage, case .int64(let idx) = indices.storage,
                  case .float(let u) = updates.storage else { return nil }
            inputs[0] = nil
            try scatterRows(node, &out, shape: shape, idx, u)
            return ConstantTensor(shape: shape, floats: out)
        default:
            return nil
        }
    }
}

extension TailOps {
    /// ScatterElements along axis 0 whose indices are `Expand(rowIndex, expandShape)` with one
    /// index per row (`rowIndex` of shape `[n, 1, …, 1]`; see `TailProgram.deferRowIndexExpands`):
    /// row k of `updates` is copied to row `rowIndex[k]` of the data, in the data's buffer when
    /// this node holds the only reference. Nil when the shapes are not of that form (the caller
    /// then expands the indices and runs the general operator). Charges the budget as
    /// `scatterElements` does.
    static func scatterExpandedRows(_ node: ONNXNode, _ inputs: inout [ConstantTensor?], rowIndex: ConstantTensor,
                                    expandShape: ConstantTensor, budget: inout ConstantFolder.Budget) throws -> ConstantTensor? {
        // No local copy of the data tensor: it would hold a second reference to the buffer.
        guard inputs.count == 3, let shape = inputs[0]?.shape, inputs[0]?.isFloat == true, let updates = inputs[2],
              case .float(let u) = updates.storage,
              case .int64(let idx) = rowIndex.storage, !rowIndex.isSymbolic, !expandShape.isFloat, !expandShape.isSymbolic,
              try node.int("axis", default: 0) == 0, try node.string("reduction", default: "none") == "none",
              shape.count >= 1, updates.shape.count == shape.count, updates.shape.dropFirst() == shape.dropFirst(),
              expandShape.shape.count == 1, expandShape.ints.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }),
              rowIndex.shape.count <= updates.shape.count else { return nil }
        let rank = updates.shape.count
        let padded = Array(repeating: 1, count: rank - rowIndex.shape.count) + rowIndex.shape
        guard padded.dropFirst().allSatisfy({ $0 == 1 }), padded[0] == updates.shape[0],
              (try? ConstantFolder.broadcastShape(rowIndex.shape, expandShape.ints.map { Int($0) }, node)) == updates.shape else { return nil }
        try budget.charge(uncheckedProduct(shape) + updates.count, node)
        let dim = shape[0], inner = uncheckedProduct(shape.dropFirst()), rows = updates.shape[0]
        guard case .float(var out)? = inputs[0]?.storage else { return nil }
        inputs[0] = nil
        if inner > 0 {
            try u.withUnsafeBufferPointer { up in try out.withUnsafeMutableBufferPointer { op in
                for k in 0..<rows {
                    var i = Int(clamping: idx[k])
                    if i < 0 { i += dim }
                    guard i >= 0, i < dim else { throw node.invalid("index \(idx[k]) out of range for dimension \(dim)") }
                    (op.baseAddress! + i * inner).update(from: up.baseAddress! + k * inner, count: inner)
                }
            } }
        }
        return ConstantTensor(shape: shape, floats: out)
    }
}
