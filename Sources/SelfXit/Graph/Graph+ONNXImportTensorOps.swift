/// Lowering of the operators that transformer and mobile exports bring (issue 13): slicing and
/// splitting activations, gathers, reductions over any axes, pointwise functions, LayerNorm,
/// Expand/Tile, and constants that join activations (ViT's class token).
///
/// Per-sample shapes: a tensor's ONNX axis `a ≥ 1` is per-sample axis `a − 1`; axis 0 is the
/// batch, which these operators may not touch (they are refused naming the node).
extension GraphImporter {
    /// Handles `node` when it is one of the operators below (appending its nodes and setting
    /// its outputs' symbols); returns false for any other operator.
    mutating func importTensorOp(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> Bool {
        switch node.opType {
        case "Slice": try importSlice(node, inputs)
        case "Split": try importSplit(node, inputs)
        case "Gather": try importGather(node, inputs)
        case "Expand": try importExpand(node, inputs)
        case "Tile": try importTile(node, inputs)
        case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL2", "ReduceL1", "ReduceLogSumExp":
            try importReduce(node, inputs)
        case "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Sin", "Cos", "Softplus", "Sign", "Round", "Gelu":
            try importUnary(node, inputs)
        case "Pow": try importPow(node, inputs)
        case "LayerNormalization": try importLayerNorm(node, inputs)
        case "Concat":
            // Concat of activations only is the importer's own; constants joining activations here.
            guard inputs.contains(where: { if case .constant = $0 { return true } else { return false } }) else { return false }
            try importConcatWithConstants(node, inputs)
        default:
            return false
        }
        return true
    }

    // MARK: - Helpers

    /// Appends a node computing `outputName` with the checks `importNode` applies to every node.
    mutating func emit(_ node: ONNXNode, _ operation: Graph.Operation, _ inputIDs: [Graph.ValueID], _ shape: [Int],
                       output outputName: String) throws {
        guard shape.count <= 5, shape.allSatisfy({ $0 > 0 }), shape.reduce(1.0, { $0 * Double($1) }) < Double(1 << 28),
              inputIDs.allSatisfy({ graph.values[$0].shape.count <= 5 }) else {
            throw node.unsupported("output shape \(shape) (per sample) is empty, above rank 6 with the batch, or too large")
        }
        let output = graph.addValue(outputName, shape: shape)
        graph.nodes.append(Graph.Node(name: node.displayName, opType: node.opType, operation: operation, inputs: inputIDs, output: output))
        symbols[outputName] = .activation(output)
    }

    /// Per-sample axis of ONNX axis `axis` of activation `x` (refusing the batch axis).
    func sampleAxis(_ node: ONNXNode, _ x: Graph.ValueID, _ axis: Int, what: String) throws -> Int {
        let a = try ConstantFolder.normalizedAxis(axis, rank: shape(x).count + 1, node)
        guard a >= 1 else { throw node.unsupported("\(what) along the batch dimension") }
        return a - 1
    }

    /// A strided copy of a per-sample window: `begin`/`step`/`length` per sample axis.
    func window(_ s: [Int], begin: [Int], step: [Int], length: [Int]) -> StridedCopy {
        let strides = elementStrides(s)
        return StridedCopy(outShape: length, inStrides: (0..<s.count).map { strides[$0] * step[$0] },
                           offset: (0..<s.count).reduce(0) { $0 + begin[$1] * strides[$1] })
    }

    // MARK: - Slicing

    mutating func importSlice(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let x = try activation(node, inputs, 0)
        let s = shape(x)
        var starts: [Int64], ends: [Int64], axes: [Int64]?, steps: [Int64]?
        var endsSymbolic: [Bool] = []
        if opset < 10 {
            starts = (try node.ints("starts") ?? []).map(Int64.init)
            ends = (try node.ints("ends") ?? []).map(Int64.init)
            axes = try node.ints("axes")?.map(Int64.init)
        } else {
            guard let st = try constant(node, inputs, 1), let en = try constant(node, inputs, 2) else { throw node.invalid("missing starts/ends") }
            guard !st.isSymbolic else { throw node.unsupported("slicing from the batch size") }
            starts = st.ints; ends = en.ints
            endsSymbolic = en.batchSymbolic
            axes = try constant(node, inputs, 3)?.ints
            steps = try constant(node, inputs, 4)?.ints
        }
        let axisList = try (axes ?? (0..<Int64(starts.count)).map { $0 }).map {
            try ConstantFolder.normalizedAxis(Int(clamping: $0), rank: s.count + 1, node)
        }
        guard starts.count == axisList.count, ends.count == axisList.count, steps.map({ $0.count == axisList.count }) ?? true,
              Set(axisList).count == axisList.count else {
            throw node.invalid("starts/ends/axes/steps do not match")
        }
        var begin = [Int](repeating: 0, count: s.count), step = [Int](repeating: 1, count: s.count), length = s
        for (k, axis) in axisList.enumerated() {
            let rawStep = steps?[k] ?? 1
            guard rawStep != 0 else { throw node.invalid("zero step") }
            if axis == 0 {
                // The whole batch only: start 0, step 1, end at or past the batch size.
                let endIsBatch = !endsSymbolic.isEmpty && endsSymbolic[k]
                guard starts[k] == 0, rawStep == 1, endIsBatch || ends[k] >= Int64(Int32.max) || ends[k] == Int64(fixedBatch ?? -1) else {
                    throw node.unsupported("slicing the batch dimension")
                }
                continue
            }
            if !endsSymbolic.isEmpty && endsSymbolic[k] { throw node.unsupported("the batch size as a slice bound of a non-batch axis") }
            let a = axis - 1, dim = s[a]
            let magnitude = Int(clamping: min(rawStep.magnitude, UInt64(dim) + 1))
            let stepValue = rawStep > 0 ? magnitude : -magnitude
            func clampIndex(_ raw: Int64, low: Int, high: Int) -> Int {
                var value = Int(clamping: raw)
                if value < 0 { value += dim }
                return min(max(value, low), high)
            }
            let start = stepValue > 0 ? clampIndex(starts[k], low: 0, high: dim) : clampIndex(starts[k], low: -1, high: dim - 1)
            let end = stepValue > 0 ? clampIndex(ends[k], low: 0, high: dim) : clampIndex(ends[k], low: -1, high: dim - 1)
            begin[a] = start; step[a] = stepValue
            length[a] = stepValue > 0 ? max(0, (end - start + stepValue - 1) / stepValue) : max(0, (start - end - stepValue - 1) / -stepValue)
        }
        try emit(node, .stridedCopy(window(s, begin: begin, step: step, length: length)), [x], length, output: node.outputs[0])
    }

    mutating func importSplit(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let x = try activation(node, inputs, 0)
        let s = shape(x)
        let a = try sampleAxis(node, x, try node.int("axis", default: 0), what: "splitting")
        let outputs = node.outputs
        var sizes: [Int]
        if opset >= 13, let split = try constant(node, inputs, 1) {
            sizes = split.ints.map { Int(clamping: $0) }
        } else if opset < 13, let split = try node.ints("split") {
            sizes = split
        } else {
            let parts = opset >= 18 ? try node.int("num_outputs", default: outputs.count) : outputs.count
            guard parts > 0 else { throw node.invalid("no outputs") }
            let chunk = (s[a] + parts - 1) / parts
            sizes = (0..<parts).map { min(chunk, max(s[a] - $0 * chunk, 0)) }
        }
        guard sizes.count == outputs.count, sizes.allSatisfy({ $0 >= 0 && $0 <= s[a] }), sizes.reduce(0, +) == s[a] else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': split sizes \(sizes) do not divide axis of size \(s[a]) into \(outputs.count) outputs")
        }
        var offset = 0
        for (size, name) in zip(sizes, outputs) {
            var begin = [Int](repeating: 0, count: s.count), length = s
            begin[a] = offset; length[a] = size
            offset += size
            if name.isEmpty { continue }
            try emit(node, .stridedCopy(window(s, begin: begin, step: [Int](repeating: 1, count: s.count), length: length)), [x], length, output: name)
        }
    }

    mutating func importGather(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let x = try activation(node, inputs, 0)
        guard let indexTensor = try constant(node, inputs, 1) else { throw node.invalid("missing indices") }
        guard !indexTensor.isSymbolic else { throw node.unsupported("gathering with the batch size as an index") }
        let s = shape(x)
        let a = try sampleAxis(node, x, try node.int("axis", default: 0), what: "gathering")
        let indices = try indexTensor.ints.map { raw -> Int in
            let i = raw < 0 ? Int(clamping: raw) + s[a] : Int(clamping: raw)
            guard i >= 0, i < s[a] else { throw node.invalid("index \(raw) out of range for an axis of size \(s[a])") }
            return i
        }
        if indexTensor.shape.isEmpty {
            // One index: the axis goes away; a strided view.
            var begin = [Int](repeating: 0, count: s.count), length = s
            begin[a] = indices[0]; length[a] = 1
            let copy = window(s, begin: begin, step: [Int](repeating: 1, count: s.count), length: length)
            var out = s
            out.remove(at: a)
            try emit(node, .stridedCopy(copy), [x], out, output: node.outputs[0])
            return
        }
        let gather = IndexGather(outer: s[..<a].reduce(1, *), axisLength: s[a], inner: s[(a + 1)...].reduce(1, *), indices: indices)
        try emit(node, .indexGather(gather), [x], Array(s[..<a]) + indexTensor.shape + Array(s[(a + 1)...]), output: node.outputs[0])
    }

    // MARK: - Broadcasting copies

    mutating func importExpand(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let x = try activation(node, inputs, 0)
        guard let target = try constant(node, inputs, 1) else { throw node.invalid("missing shape") }
        let full = [1] + shape(x)
        var dims = target.ints.map { Int(clamping: $0) }
        guard dims.count <= full.count else { throw node.unsupported("expanding to a higher rank than the input (a new leading axis before the batch)") }
        dims = [Int](repeating: 1, count: full.count - dims.count) + dims
        let symbolicOffset = full.count - target.count
        for (i, dim) in dims.enumerated() where i == 0 {
            let isBatch = (i - symbolicOffset >= 0 && target.isBatch(i - symbolicOffset)) || dim == 1 || dim == fixedBatch
            guard isBatch else { throw node.unsupported("expanding the batch dimension to \(dim)") }
        }
        let s = shape(x)
        var out = s
        for a in 0..<s.count {
            let d = dims[a + 1]
            guard d == s[a] || d == 1 || s[a] == 1 else {
                throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot expand \(full) to \(target.ints)")
            }
            out[a] = s[a] == 1 ? d : s[a]
        }
        // Sized before anything is built from it: a file's dims can multiply past Int.
        guard out.allSatisfy({ $0 > 0 }), out.reduce(1.0, { $0 * Double($1) }) < Double(1 << 28) else {
            throw node.unsupported("expanding to \(target.ints): the per-sample result is empty or too large")
        }
        let strides = elementStrides(s)
        let copy = StridedCopy(outShape: out, inStrides: (0..<s.count).map { s[$0] == 1 ? 0 : strides[$0] }, offset: 0)
        try emit(node, .stridedCopy(copy), [x], out, output: node.outputs[0])
    }

    mutating func importTile(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let x = try activation(node, inputs, 0)
        guard let repeatsTensor = try constant(node, inputs, 1) else { throw node.invalid("missing repeats") }
        let s = shape(x)
        let repeats = repeatsTensor.ints.map { Int(clamping: $0) }
        guard repeats.count == s.count + 1, repeats.allSatisfy({ $0 >= 1 && $0 < 1 << 16 }) else {
            throw node.invalid("repeats \(repeats) for rank \(s.count + 1)")
        }
        guard repeats[0] == 1 else { throw node.unsupported("tiling the batch dimension") }
        var outElements: Double = 1
        for a in 0..<s.count { outElements *= Double(s[a]) * Double(repeats[a + 1]) }
        guard outElements < Double(1 << 28) else {
            throw node.unsupported("tiling by \(repeats): the per-sample result is too large")
        }
        // Each axis becomes (repeat, size) with strides (0, stride): a strided copy of double rank.
        let strides = elementStrides(s)
        var outShape: [Int] = [], inStrides: [Int] = []
        for a in 0..<s.count {
            outShape += [repeats[a + 1], s[a]]
            inStrides += [0, strides[a]]
        }
        let out = (0..<s.count).map { s[$0] * repeats[$0 + 1] }
        try emit(node, .stridedCopy(StridedCopy(outShape: outShape, inStrides: inStrides, offset: 0)), [x], out, output: node.outputs[0])
    }

    /// A Concat where constants join activations: each constant (its leading dimension 1, the
    /// same for every sample, as ViT's class token expanded over the batch) becomes a
    /// constant-fill node, then the ordinary Concat runs.
    mutating func importConcatWithConstants(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        guard let rank = inputs.compactMap({ symbol -> Int? in
            if case .activation(let id)? = symbol { return shape(id).count + 1 } else { return nil }
        }).first else { throw node.unsupported("operator on constant inputs cannot be folded") }
        var ids: [Graph.ValueID] = []
        for (index, symbol) in inputs.enumerated() {
            switch symbol {
            case .activation(let id)?: ids.append(id)
            case .constant(let tensor)?:
                guard !tensor.isSymbolic, tensor.shape.count == rank, tensor.shape[0] == 1 else {
                    throw node.unsupported("input \(index): a constant of shape \(tensor.shape) joining activations of rank \(rank) (needs a leading dimension 1)")
                }
                let name = "\(node.outputs[0])#constant\(index)"
                let sample = Array(tensor.shape.dropFirst())
                try emit(node, .constantFill(tensor.floats), [], sample, output: name)
                ids.append(graph.values.count - 1)
            case nil: throw node.invalid("missing input \(index)")
            }
        }
        let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: 1), rank: rank, node)
        guard axis >= 1 else { throw node.unsupported("concatenation along the batch dimension") }
        var out = shape(ids[0])
        for id in ids.dropFirst() {
            let s = shape(id)
            guard s.count == out.count, (0..<s.count).allSatisfy({ $0 == axis - 1 || s[$0] == out[$0] }) else {
                throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot concatenate \(ids.map { shape($0) })")
            }
            out[axis - 1] += s[axis - 1]
        }
        try emit(node, .concat(axis: axis), ids, out, output: node.outputs[0])
    }

    // MARK: - Reductions and pointwise functions

    mutating func importReduce(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let x = try activation(node, inputs, 0)
        let s = shape(x)
        guard let kind = ReduceKind(rawValue: node.opType) else { throw node.unsupported("reduction") }
        // Axes: an attribute before opset 18 (ReduceSum: before 13), an input after.
        let axesFromInput = opset >= 18 || (kind == .sum && opset >= 13)
        let axesList = axesFromInput ? (try constant(node, inputs, 1))?.ints.map { Int(clamping: $0) } : try node.ints("axes")
        let keep = try node.int("keepdims", default: 1) != 0
        var axes: Set<Int>
        if let axesList, !axesList.isEmpty {
            axes = try Set(axesList.map { try ConstantFolder.normalizedAxis($0, rank: s.count + 1, node) })
        } else if try node.int("noop_with_empty_axes", default: 0) != 0 {
            try emit(node, .alias, [x], s, output: node.outputs[0])
            return
        } else {
            axes = Set(0...s.count)
        }
        guard !axes.contains(0) else { throw node.unsupported("reducing over the batch dimension") }
        let sampleAxes = Set(axes.map { $0 - 1 })
        let out = keep ? s.enumerated().map { sampleAxes.contains($0.offset) ? 1 : $0.element }
                       : s.enumerated().filter { !sampleAxes.contains($0.offset) }.map(\.element)
        let outShape = out.isEmpty ? [1] : out
        if kind == .mean, s.count == 3, sampleAxes == [1, 2] {
            // Global average pooling (mnasnet's x.mean([2, 3])): the pooling kernel.
            try emit(node, .globalAveragePool, [x], outShape, output: node.outputs[0])
            return
        }
        try emit(node, .reduce(Reduce(kind: kind, shape: s, axes: sampleAxes)), [x], outShape, output: node.outputs[0])
    }

    mutating func importUnary(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let x = try activation(node, inputs, 0)
        let function: UnaryFunction
        switch node.opType {
        case "Erf": function = .erf
        case "Sqrt": function = .sqrt
        case "Exp": function = .exp
        case "Log": function = .log
        case "Neg": function = .neg
        case "Abs": function = .abs
        case "Reciprocal": function = .reciprocal
        case "Floor": function = .floor
        case "Ceil": function = .ceil
        case "Sin": function = .sin
        case "Cos": function = .cos
        case "Softplus": function = .softplus
        case "Sign": function = .sign
        case "Round": function = .round
        default: // Gelu (opset 20)
            guard try node.string("approximate", default: "none") == "none" else { throw node.unsupported("tanh-approximated GELU") }
            function = .gelu
        }
        try emit(node, .unary(function), [x], shape(x), output: node.outputs[0])
    }

    mutating func importPow(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let x = try activation(node, inputs, 0)
        guard let exponent = try constant(node, inputs, 1), exponent.count == 1 else {
            throw node.unsupported("Pow needs a scalar constant exponent")
        }
        let e = exponent.floats[0]
        try emit(node, .unary(e == 2 ? .square : .pow(e)), [x], shape(x), output: node.outputs[0])
    }

    mutating func importLayerNorm(_ node: ONNXNode, _ inputs: [Symbol?]) throws {
        let x = try activation(node, inputs, 0)
        let s = shape(x)
        let a = try sampleAxis(node, x, try node.int("axis", default: -1), what: "layer normalisation")
        if node.outputs.count > 1, node.outputs.dropFirst().contains(where: { !$0.isEmpty }) {
            throw node.unsupported("LayerNormalization's mean and inverse standard deviation outputs")
        }
        let length = s[a...].reduce(1, *)
        func parameter(_ index: Int) throws -> [Float]? {
            guard let t = try constant(node, inputs, index) else { return nil }
            if t.count == length { return t.floats }
            if t.count == 1 { return [Float](repeating: t.floats[0], count: length) }
            throw node.unsupported("parameter \(index) of shape \(t.shape) for normalised shape \(Array(s[a...]))")
        }
        let norm = LayerNorm(length: length, epsilon: try node.float("epsilon", default: 1e-5), scale: try parameter(1), bias: try parameter(2))
        try emit(node, .layerNorm(norm), [x], s, output: node.outputs[0])
    }
}
