/// Tensors whose batch axis the model moved (issue 13): transformer exports transpose the batch
/// away from axis 0 (nn.MultiheadAttention works on [L, B, E]) and merge it with other axes
/// (heads: [L, B·heads, d]; Swin's windows: [B·windows, N, C]; [L·B, E] before a Gemm).
///
/// The engine keeps every sample's data contiguous (the arena's per-sample rows), so such a
/// tensor is still stored as one block per sample; only the *logical* ONNX view differs. A
/// `BatchLayout` records that view: the logical dims, the axis holding the batch and how the
/// batch sits in it (`pre` · B · `post`, B in the middle, row-major). Reshapes that keep B a clean
/// factor and transposes are then free or a per-sample transpose, and the ops on such tensors
/// (MatMul, Gemm, elementwise, Softmax, LayerNorm, Slice/Gather) run on each sample's block.
/// The graph IR stays per-sample and physical: layouts live only in the importer.
struct BatchLayout: Equatable {
    /// Logical dims without the batch: `dims[axis]` is the per-sample factor of the batch axis.
    var dims: [Int]
    var axis: Int
    /// The batch axis' index is `i_pre · B · post + b · post + i_post` with `pre · post = dims[axis]`.
    var pre: Int
    var post: Int { dims[axis] / pre }

    static func standard(_ shape: [Int]) -> BatchLayout { BatchLayout(dims: [1] + shape, axis: 0, pre: 1) }

    /// The batch alone in axis 0: the engine's ordinary per-sample shape.
    var isStandard: Bool { axis == 0 && dims[0] == 1 }

    /// Per-sample physical shape: the logical dims, the batch axis split into its factors
    /// (size-1 factors dropped), and the atom range of each logical dim.
    var atoms: (shape: [Int], ranges: [Range<Int>]) {
        var shape: [Int] = [], ranges: [Range<Int>] = []
        for (j, d) in dims.enumerated() {
            let start = shape.count
            if j == axis {
                if pre > 1 { shape.append(pre) }
                if post > 1 { shape.append(post) }
            } else {
                shape.append(d)
            }
            ranges.append(start..<shape.count)
        }
        return (shape, ranges)
    }
}

extension GraphImporter {
    func layout(of id: Graph.ValueID) -> BatchLayout { layouts[id] ?? .standard(shape(id)) }

    /// Appends a node whose output has logical layout `layout` (its physical shape the layout's atoms).
    mutating func emit(_ node: ONNXNode, _ operation: Graph.Operation, _ inputIDs: [Graph.ValueID], layout: BatchLayout,
                       output name: String) throws {
        try emit(node, operation, inputIDs, layout.atoms.shape, output: name)
        if !layout.isStandard { layouts[graph.values.count - 1] = layout }
    }

    /// The symbolic shape of `id` as `Shape` sees it: the batch axis holds its coefficient times
    /// the batch (stored as coefficient × the representative batch, marked symbolic).
    func logicalShapeTensor(_ id: Graph.ValueID) -> (values: [Int64], symbolic: [Bool]) {
        let l = layout(of: id)
        let batch = Int64(fixedBatch ?? 1)
        return (l.dims.enumerated().map { $0.offset == l.axis ? Int64($0.element) * batch : Int64($0.element) },
                l.dims.indices.map { $0 == l.axis })
    }

    /// Handles nodes that need batch layouts: any node reading a moved tensor, a Transpose that
    /// moves the batch, a Reshape that merges the batch with other axes. False otherwise.
    mutating func importWithLayout(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> Bool {
        let activations = inputs.compactMap { symbol -> Graph.ValueID? in
            if case .activation(let id)? = symbol { return id } else { return nil }
        }
        let moved = activations.contains { layouts[$0] != nil }
        switch node.opType {
        case "Einsum":
            // Products of two activations (attention); an Einsum with a constant operand (a
            // classifier written as one) stays unimplemented.
            guard activations.count == 2, inputs.count == 2 else { return false }
            try importEinsum(node, inputs)
            return true
        case "Transpose":
            guard let x = activations.first else { return false }
            let perm = try node.ints("perm") ?? Array((0..<layout(of: x).dims.count).reversed())
            guard moved || perm.first != 0 else { return false }
            try importTransposeMovingBatch(node, x, perm)
            return true
        case "Reshape":
            guard let x = activations.first, let target = try constant(node, inputs, 1) else { return false }
            let ints = target.ints
            // A -1 that takes the batch together with per-sample dims ([B·64, 3, 49, 49] → [-1, 3, 49, 49]).
            let inferredMerge = !target.isSymbolic && ints.first == -1 && !ints.dropFirst().contains(-1)
                && !ints.dropFirst().contains(0) && ints.dropFirst().reduce(1, &*) != Int64(graph.values[x].elementsPerSample)
            let mergesBatch = target.batchSymbolic.dropFirst().contains(true)
                || (target.isBatch(0) && target.ints[0] != Int64(fixedBatch ?? 1)) || inferredMerge
            guard moved || mergesBatch else { return false }
            try importReshapeWithLayout(node, x, target)
            return true
        default:
            break
        }
        guard moved else { return false }
        guard let x = activations.first else { return false }
        let l = layout(of: x)
        let rank = l.dims.count
        switch node.opType {
        case "Identity", "Dropout", "Cast":
            if node.opType == "Cast" { guard try node.int("to", default: 1) == 1 else { throw node.unsupported("cast of an activation to a non-float type") } }
            try emit(node, .alias, [x], layout: l, output: node.outputs[0])
        case "Flatten":
            let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: 1), rank: rank + 1, node)
            let outer = l.dims[..<axis].reduce(1, *), inner = l.dims[axis...].reduce(1, *)
            let batchFirst = l.axis < axis
            try reshape(node, x, to: [outer, inner], batchAxis: batchFirst ? 0 : 1)
        case "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip", "Tanh":
            try emit(node, .activation(try activationKind(node, inputs)), [x], layout: l, output: node.outputs[0])
        case "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Pow", "Gelu":
            _ = try importTensorOp(node, inputs)
            layouts[graph.values.count - 1] = l
        case "Softmax":
            let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: opset < 13 ? 1 : -1), rank: rank, node)
            guard axis == rank - 1, l.axis != axis else { throw node.unsupported("softmax over an axis other than the last of a tensor whose batch axis moved") }
            try emit(node, .softmax(length: l.dims[axis]), [x], layout: l, output: node.outputs[0])
        case "LayerNormalization":
            let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: -1), rank: rank, node)
            guard axis > l.axis else { throw node.unsupported("layer normalisation over the batch axis") }
            let length = l.dims[axis...].reduce(1, *)
            func parameter(_ index: Int) throws -> [Float]? {
                guard let t = try constant(node, inputs, index) else { return nil }
                if t.count == length { return t.floats }
                if t.count == 1 { return [Float](repeating: t.floats[0], count: length) }
                throw node.unsupported("parameter \(index) of shape \(t.shape)")
            }
            let norm = LayerNorm(length: length, epsilon: try node.float("epsilon", default: 1e-5), scale: try parameter(1), bias: try parameter(2))
            try emit(node, .layerNorm(norm), [x], layout: l, output: node.outputs[0])
        case "Add", "Sub", "Mul", "Div":
            try importBinaryWithLayout(node, inputs)
        case "MatMul":
            try importMatMulWithLayout(node, inputs)
        case "Gemm":
            guard rank == 2, l.axis == 0 else { throw node.unsupported("Gemm on a tensor whose batch is not in its rows") }
            let (operation, ids, _) = try lowerGemmRows(node, inputs, x, features: l.dims[1])
            var out = l
            if case .dense(_, let n, _, _, _) = operation { out.dims[1] = n }
            try emit(node, operation, ids, layout: out, output: node.outputs[0])
        case "Slice", "Gather":
            try importSliceGatherWithLayout(node, inputs, x, l)
        default:
            throw node.unsupported("operator on a tensor whose batch axis the model moved (\(l.dims.count)-D, batch in axis \(l.axis)) is not supported")
        }
        return true
    }

    // MARK: - Transpose and Reshape

    mutating func importTransposeMovingBatch(_ node: ONNXNode, _ x: Graph.ValueID, _ perm: [Int], output: String? = nil) throws {
        let outputName = output ?? node.outputs[0]
        let l = layout(of: x)
        let rank = l.dims.count
        guard perm.count == rank, Set(perm) == Set(0..<rank) else { throw node.invalid("bad permutation \(perm)") }
        var out = BatchLayout(dims: perm.map { l.dims[$0] }, axis: perm.firstIndex(of: l.axis)!, pre: l.pre)
        if out.dims[out.axis] == 1 { out.pre = 1 }
        let (atoms, ranges) = l.atoms
        // The atoms in their new order; the data moves only if that order changes.
        let atomPerm = perm.flatMap { Array(ranges[$0]) }
        let significant = atomPerm.filter { atoms[$0] != 1 }
        if significant == significant.sorted() {
            try emit(node, .alias, [x], layout: out, output: outputName)
        } else {
            guard atoms.count <= 5 else { throw node.unsupported("transpose of a \(atoms.count)-D per-sample tensor (at most 5)") }
            try emit(node, .transpose(permutation: [0] + atomPerm.map { $0 + 1 }), [x], layout: out, output: outputName)
        }
    }

    mutating func importReshapeWithLayout(_ node: ONNXNode, _ x: Graph.ValueID, _ target: ConstantTensor) throws {
        let l = layout(of: x)
        let allowZero = try node.int("allowzero", default: 0) != 0
        let batch = Int64(fixedBatch ?? 1)
        var dims: [Int] = []
        var batchAxis: Int?
        var inferred: Int?
        for (k, raw) in target.ints.enumerated() {
            if target.isBatch(k) {
                guard batchAxis == nil, raw % batch == 0 else { throw node.unsupported("a reshape that names the batch size twice") }
                batchAxis = k
                dims.append(Int(clamping: raw / batch))
            } else if raw == 0 && !allowZero {
                guard k < l.dims.count else { throw node.invalid("0 in dimension \(k) beyond the input's rank") }
                if k == l.axis { batchAxis = k }
                dims.append(l.dims[k])
            } else if raw == -1 {
                guard inferred == nil else { throw node.invalid("two -1 dimensions") }
                inferred = k
                dims.append(1)
            } else {
                guard raw > 0 else { throw node.invalid("dimension \(raw)") }
                guard raw < 1 << 31 else {
                    throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot reshape \(l.dims) (with the batch) to \(target.ints)")
                }
                dims.append(Int(raw))
            }
        }
        let total = l.dims.reduce(1, *)
        guard let known = checkedElementCount(dims), known <= total else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot reshape \(l.dims) (with the batch) to \(target.ints)")
        }
        if let k = inferred {
            guard known > 0, total % known == 0 else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot reshape \(l.dims) (with the batch) to \(target.ints)") }
            dims[k] = total / known
            if batchAxis == nil { batchAxis = k }
        }
        guard let axis = batchAxis else { throw node.unsupported("a reshape that drops the batch size from the shape") }
        try reshape(node, x, to: dims, batchAxis: axis)
    }

    /// Reshape of `x` to logical `dims` (batch factor in `dims[batchAxis]`): free when the batch
    /// stays a clean factor — the same number of elements before it and after it.
    mutating func reshape(_ node: ONNXNode, _ x: Graph.ValueID, to dims: [Int], batchAxis: Int) throws {
        let l = layout(of: x)
        let before = l.dims[..<l.axis].reduce(1, *) * l.pre
        let after = l.post * l.dims[(l.axis + 1)...].reduce(1, *)
        guard let count = checkedElementCount(dims), count == l.dims.reduce(1, *), dims.allSatisfy({ $0 > 0 }) else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot reshape \(l.dims) (batch in axis \(l.axis)) to \(dims) (batch in axis \(batchAxis))")
        }
        let outerDims = dims[..<batchAxis].reduce(1, *)
        guard outerDims > 0, before % outerDims == 0 else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot reshape \(l.dims) (batch in axis \(l.axis)) to \(dims) (batch in axis \(batchAxis))")
        }
        let pre = before / outerDims
        guard dims[batchAxis] % pre == 0, dims[batchAxis] / pre * dims[(batchAxis + 1)...].reduce(1, *) == after else {
            throw node.unsupported("a reshape that interleaves the batch with other dimensions (\(l.dims) → \(dims))")
        }
        let out = BatchLayout(dims: dims, axis: batchAxis, pre: pre)
        guard out.atoms.shape.count <= 5 else { throw node.unsupported("reshape to a \(out.atoms.shape.count)-D per-sample tensor (at most 5)") }
        try emit(node, .alias, [x], layout: out, output: node.outputs[0])
    }

    // MARK: - Arithmetic

    /// A constant of logical shape `shape` against layout `l`: its physical (atom) shape, or nil
    /// when it varies along the batch axis.
    func atomShape(ofConstant shape: [Int], against l: BatchLayout) -> [Int]? {
        let rank = l.dims.count
        guard shape.count <= rank else { return nil }
        let padded = [Int](repeating: 1, count: rank - shape.count) + shape
        let ranges = l.atoms.ranges
        var atoms: [Int] = []
        for j in 0..<rank {
            if j == l.axis {
                guard padded[j] == 1 else { return nil }
                atoms += [Int](repeating: 1, count: ranges[j].count)
            } else {
                atoms.append(padded[j])
            }
        }
        return atoms
    }

    mutating func importBinaryWithLayout(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        guard inputs.count == 2, let kind = Graph.BinaryKind(rawValue: node.opType) else { throw node.invalid("needs two inputs") }
        var reference: BatchLayout?
        for symbol in inputs { if case .activation(let id)? = symbol, layouts[id] != nil { reference = layouts[id]; break } }
        guard let l = reference else { throw node.invalid("no moved input") }
        var operands: [Graph.Operand] = [], ids: [Graph.ValueID] = [], shapes: [[Int]] = []
        var outDims = l.dims
        for symbol in inputs {
            switch symbol {
            case .activation(let id)?:
                let m = layout(of: id)
                guard m.dims.count == l.dims.count, m.axis == l.axis, m.pre == l.pre, m.dims[m.axis] == l.dims[l.axis] else {
                    throw node.unsupported("arithmetic between tensors whose batch axes differ (\(m.dims) batch in \(m.axis), \(l.dims) batch in \(l.axis))")
                }
                for j in 0..<outDims.count where j != l.axis {
                    guard m.dims[j] == outDims[j] || m.dims[j] == 1 || outDims[j] == 1 else {
                        throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot broadcast \(m.dims) with \(outDims)")
                    }
                    outDims[j] = max(outDims[j], m.dims[j])
                }
                operands.append(.value(id)); ids.append(id); shapes.append(shape(id))
            case .constant(let tensor)?:
                guard !tensor.isSymbolic, let atoms = atomShape(ofConstant: tensor.shape, against: l) else {
                    throw node.unsupported("a constant of shape \(tensor.shape) that varies along the batch axis")
                }
                for (j, d) in ([Int](repeating: 1, count: l.dims.count - tensor.shape.count) + tensor.shape).enumerated() where j != l.axis {
                    guard d == outDims[j] || d == 1 || outDims[j] == 1 else {
                        throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot broadcast \(tensor.shape) with \(outDims)")
                    }
                    outDims[j] = max(outDims[j], d)
                }
                operands.append(.constant(Graph.ConstantOperand(shape: atoms, values: tensor.floats))); shapes.append(atoms)
            case nil:
                throw node.invalid("missing input")
            }
        }
        let out = BatchLayout(dims: outDims, axis: l.axis, pre: l.pre)
        let physical = try ConstantFolder.broadcastShape(shapes[0], shapes[1], node)
        guard physical == out.atoms.shape else { throw node.unsupported("broadcast of \(shapes) against a moved batch axis") }
        try emit(node, .binary(kind, lhs: operands[0], rhs: operands[1], activation: .none), ids, layout: out, output: node.outputs[0])
    }

    mutating func importMatMulWithLayout(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let a = try activation(node, inputs, 0)
        let la = layout(of: a)
        let rank = la.dims.count
        if inputs.count > 1, case .constant(let b)? = inputs[1] {
            guard la.axis != rank - 1 else { throw node.unsupported("MatMul over the batch axis") }
            guard b.shape.count == 2, b.shape[0] == la.dims[rank - 1] else { throw node.unsupported("MatMul with constant B of shape \(b.shape) (only 2-D [K, N])") }
            let (k, n) = (b.shape[0], b.shape[1])
            let bv = b.floats
            let weights = (0..<(n * k)).map { i in bv[(i % k) * n + i / k] }
            var out = la
            out.dims[rank - 1] = n
            try emit(node, .dense(inFeatures: k, outFeatures: n, weights: weights, bias: nil, activation: .none), [a], layout: out, output: node.outputs[0])
            return
        }
        try emitBatchedMatMul(node, a, try activation(node, inputs, 1), output: node.outputs[0])
    }

    /// `a · b` of two activations with the batch among their leading (broadcast-free) dims.
    mutating func emitBatchedMatMul(_ node: ONNXNode, _ a: Graph.ValueID, _ b: Graph.ValueID, output: String) throws {
        let la = layout(of: a)
        let rank = la.dims.count
        let lb = layout(of: b)
        guard lb.dims.count == rank, rank >= 3, la.axis < rank - 2, lb.axis == la.axis, la.pre == lb.pre,
              la.dims[la.axis] == lb.dims[lb.axis], la.dims[rank - 1] == lb.dims[rank - 2],
              (0..<(rank - 2)).allSatisfy({ la.dims[$0] == lb.dims[$0] }) else {
            throw node.unsupported("MatMul of tensors \(la.dims) (batch in axis \(la.axis)) and \(lb.dims) (batch in axis \(lb.axis))")
        }
        var out = la
        out.dims[rank - 1] = lb.dims[rank - 1]
        try emit(node, .matmul, [a, b], layout: out, output: output)
    }

    /// Gemm on rows (`[rows, features]` per sample, the rows holding the batch).
    func lowerGemmRows(_ node: ONNXNode, _ inputs: [Symbol?], _ a: Graph.ValueID, features: Int) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        guard try node.int("transA", default: 0) == 0 else { throw node.unsupported("transA=1 (the batch would move)") }
        guard let b = try constant(node, inputs, 1), b.shape.count == 2 else { throw node.unsupported("Gemm needs a constant 2-D B") }
        let transB = try node.int("transB", default: 0) != 0
        let alpha = try node.float("alpha", default: 1), beta = try node.float("beta", default: 1)
        let (n, k) = transB ? (b.shape[0], b.shape[1]) : (b.shape[1], b.shape[0])
        guard k == features else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': input has \(features) features, B is \(b.shape)") }
        let bv = b.floats
        let weights = transB ? bv.map { $0 * alpha } : (0..<(n * k)).map { i in bv[(i % k) * n + i / k] * alpha }
        var bias: [Float]?
        if let c = try constant(node, inputs, 2) {
            switch c.count {
            case 1: bias = Array(repeating: c.floats[0] * beta, count: n)
            case n where c.shape.last == n: bias = c.floats.map { $0 * beta }
            default: throw node.unsupported("bias C of shape \(c.shape) (only [N], [1,N] or scalar)")
            }
        }
        return (.dense(inFeatures: k, outFeatures: n, weights: weights, bias: bias, activation: .none), [a], [])
    }

    // MARK: - Slice and Gather on a non-batch axis

    mutating func importSliceGatherWithLayout(_ node: ONNXNode, _ inputs: [Symbol?], _ x: Graph.ValueID, _ l: BatchLayout) throws {
        let rank = l.dims.count
        let (atoms, ranges) = l.atoms
        func atomAxis(_ axis: Int) throws -> Int {
            guard axis != l.axis else { throw node.unsupported("\(node.opType) along the batch axis") }
            return ranges[axis].lowerBound
        }
        let ones = [Int](repeating: 1, count: atoms.count)
        if node.opType == "Gather" {
            guard let indexTensor = try constant(node, inputs, 1), !indexTensor.isSymbolic, indexTensor.shape.isEmpty else {
                throw node.unsupported("Gather of an index list on a tensor whose batch axis moved")
            }
            let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: 0), rank: rank, node)
            let a = try atomAxis(axis)
            var index = Int(clamping: indexTensor.ints[0])
            if index < 0 { index += atoms[a] }
            guard index >= 0, index < atoms[a] else { throw node.invalid("index \(indexTensor.ints[0]) out of range") }
            var begin = [Int](repeating: 0, count: atoms.count), length = atoms
            begin[a] = index; length[a] = 1
            var out = l
            out.dims.remove(at: axis)
            if axis < l.axis { out.axis -= 1 }
            try emit(node, .stridedCopy(window(atoms, begin: begin, step: ones, length: length)), [x], layout: out, output: node.outputs[0])
            return
        }
        guard opset >= 10, let st = try constant(node, inputs, 1), let en = try constant(node, inputs, 2), !st.isSymbolic, !en.isSymbolic else {
            throw node.unsupported("Slice with batch-size bounds on a tensor whose batch axis moved")
        }
        let axesList = try (try constant(node, inputs, 3)?.ints ?? (0..<Int64(st.count)).map { $0 }).map {
            try ConstantFolder.normalizedAxis(Int(clamping: $0), rank: rank, node)
        }
        let steps = try constant(node, inputs, 4)?.ints
        guard st.count == axesList.count, en.count == axesList.count, steps.map({ $0.count == axesList.count }) ?? true else {
            throw node.invalid("starts/ends/axes/steps do not match")
        }
        var begin = [Int](repeating: 0, count: atoms.count), length = atoms, step = ones
        var out = l
        for (k, axis) in axesList.enumerated() {
            let a = try atomAxis(axis)
            let dim = atoms[a]
            guard (steps?[k] ?? 1) == 1 else { throw node.unsupported("strided Slice on a tensor whose batch axis moved") }
            func clampIndex(_ raw: Int64) -> Int { var v = Int(clamping: raw); if v < 0 { v += dim }; return min(max(v, 0), dim) }
            let s = clampIndex(st.ints[k]), e = clampIndex(en.ints[k])
            begin[a] = s; length[a] = max(e - s, 0); step[a] = 1
            out.dims[axis] = length[a]
        }
        try emit(node, .stridedCopy(window(atoms, begin: begin, step: step, length: length)), [x], layout: out, output: node.outputs[0])
    }

    // MARK: - Einsum

    /// Two-operand Einsum that is a batched matrix product (MaxViT's attention:
    /// `BGHID,BGHJD->BGHIJ` and `BGHIJ,BGHJD->BGHID`): operands transposed to
    /// [batch…, M, K] and [batch…, K, N], then one batched MatMul, then the output order.
    mutating func importEinsum(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let equation = try node.string("equation", default: "").filter { !$0.isWhitespace }
        let sides = equation.split(separator: "-", maxSplits: 1)
        guard sides.count == 2, sides[1].hasPrefix(">"), !equation.contains(".") else {
            throw node.unsupported("Einsum equation '\(equation)' (only explicit two-operand products)")
        }
        let operands = sides[0].split(separator: ",").map { Array($0) }
        let out = Array(sides[1].dropFirst())
        guard operands.count == 2, inputs.count == 2 else { throw node.unsupported("Einsum with \(operands.count) operands (only 2)") }
        let (a, b) = (try activation(node, inputs, 0), try activation(node, inputs, 1))
        let (ta, tb) = (operands[0], operands[1])
        guard Set(ta).count == ta.count, Set(tb).count == tb.count, Set(out).count == out.count,
              ta.count == layout(of: a).dims.count, tb.count == layout(of: b).dims.count else {
            throw node.unsupported("Einsum equation '\(equation)' repeats an index or does not match the operand ranks")
        }
        let batch = out.filter { ta.contains($0) && tb.contains($0) }
        let m = out.filter { ta.contains($0) && !tb.contains($0) }
        let n = out.filter { tb.contains($0) && !ta.contains($0) }
        let k = ta.filter { tb.contains($0) && !out.contains($0) }
        guard m.count == 1, n.count == 1, k.count == 1, batch.count + 2 == out.count,
              ta.count == batch.count + 2, tb.count == batch.count + 2 else {
            throw node.unsupported("Einsum equation '\(equation)' is not a batched matrix product")
        }
        func transposed(_ x: Graph.ValueID, _ have: [Character], _ want: [Character], _ tag: String) throws -> Graph.ValueID {
            let perm = want.map { have.firstIndex(of: $0)! }
            if perm == Array(0..<perm.count) { return x }
            try importTransposeMovingBatch(node, x, perm, output: "\(node.outputs[0])#\(tag)")
            return graph.values.count - 1
        }
        let a2 = try transposed(a, ta, batch + m + k, "a")
        let b2 = try transposed(b, tb, batch + k + n, "b")
        let product = batch + m + n
        if product == out {
            try emitBatchedMatMul(node, a2, b2, output: node.outputs[0])
        } else {
            try emitBatchedMatMul(node, a2, b2, output: "\(node.outputs[0])#product")
            try importTransposeMovingBatch(node, graph.values.count - 1, out.map { product.firstIndex(of: $0)! })
        }
    }
}
