/// Load-time rewrites for transformer exports (issue 13):
///   - the opset-13 LayerNorm decomposition (ReduceMean → Sub → Pow 2 → ReduceMean → Add ε →
///     Sqrt → Div, then optional Mul γ and Add β) becomes one LayerNorm kernel: one pass over
///     each row instead of nine over the tensor;
///   - torch's erf GELU (Div √2 → Erf → Add 1 → Mul x → Mul ½) becomes one pointwise GELU.
/// Every absorbed intermediate must be read only inside the pattern and not be a graph output.
extension Graph {
    mutating func fuseTransformerPatterns() {
        var consumers = consumers()
        var producers = producers()
        let outputSet = Set(outputs)
        var removed = [Bool](repeating: false, count: nodes.count)

        func privateValue(_ value: ValueID, readers: Int = 1) -> Bool {
            consumers[value].count == readers && !outputSet.contains(value)
        }
        func scalar(_ operand: Operand) -> Float? {
            if case .constant(let c) = operand, c.values.count == 1 { return c.values[0] }
            return nil
        }
        /// The node reading `value` when it has exactly one reader that is not removed.
        func soleReader(_ value: ValueID) -> Int? {
            guard privateValue(value), let reader = consumers[value].first, !removed[reader] else { return nil }
            return reader
        }
        /// `.binary(kind)` of `value` with a constant (either side): the constant.
        func binaryWithConstant(_ index: Int, _ kind: BinaryKind, of value: ValueID) -> ConstantOperand? {
            guard case .binary(let k, let lhs, let rhs, .none) = nodes[index].operation, k == kind else { return nil }
            switch (lhs, rhs) {
            case (.value(let v), .constant(let c)) where v == value: return c
            case (.constant(let c), .value(let v)) where v == value && kind != .sub && kind != .div: return c
            default: return nil
            }
        }

        for index in nodes.indices where !removed[index] {
            // GELU: Div(x, √2) → Erf → Add 1 → Mul(x, ·) → Mul ½
            if let c = binaryWithConstant(index, .div, of: nodes[index].inputs.first ?? -1), c.values.count == 1,
               abs(c.values[0] - 1.4142135) < 1e-5 {
                let x = nodes[index].inputs[0]
                if let erf = soleReader(nodes[index].output), case .unary(.erf) = nodes[erf].operation,
                   let add = soleReader(nodes[erf].output), let one = binaryWithConstant(add, .add, of: nodes[erf].output),
                   one.values == [1], let mul = soleReader(nodes[add].output),
                   case .binary(.mul, let l, let r, .none) = nodes[mul].operation,
                   Set([l, r].compactMap { if case .value(let v) = $0 { return v } else { return nil } }) == [x, nodes[add].output],
                   let half = soleReader(nodes[mul].output), let h = binaryWithConstant(half, .mul, of: nodes[mul].output), h.values == [0.5] {
                    nodes[half].operation = .unary(.gelu)
                    nodes[half].inputs = [x]
                    for r in [index, erf, add, mul] { removed[r] = true }
                    consumers[x].append(half)
                    producers[nodes[half].output] = half
                    continue
                }
            }
            // LayerNorm: mean = ReduceMean(x) over the trailing axes
            guard case .reduce(let meanReduce) = nodes[index].operation, meanReduce.kind == .mean,
                  let x = nodes[index].inputs.first else { continue }
            let shape = values[x].shape
            let trailing = Set((shape.count - meanReduce.axes.count)..<shape.count)
            guard meanReduce.axes == trailing, !trailing.isEmpty else { continue }
            let mean = nodes[index].output
            guard privateValue(mean), let sub = consumers[mean].first, !removed[sub],
                  case .binary(.sub, .value(let sx), .value(let sm), .none) = nodes[sub].operation, sx == x, sm == mean else { continue }
            let centred = nodes[sub].output
            guard privateValue(centred, readers: 2) else { continue }
            let readers = consumers[centred]
            guard let pow = readers.first(where: { if case .unary(.square) = nodes[$0].operation { return true }; if case .unary(.pow(2)) = nodes[$0].operation { return true }; return false }),
                  let div = readers.first(where: { $0 != pow }), !removed[pow], !removed[div],
                  let varianceIndex = soleReader(nodes[pow].output), case .reduce(let vr) = nodes[varianceIndex].operation,
                  vr.kind == .mean, vr.axes == meanReduce.axes,
                  let addEps = soleReader(nodes[varianceIndex].output),
                  let eps = binaryWithConstant(addEps, .add, of: nodes[varianceIndex].output), eps.values.count == 1,
                  let sqrt = soleReader(nodes[addEps].output), case .unary(.sqrt) = nodes[sqrt].operation,
                  soleReader(nodes[sqrt].output) == div,
                  case .binary(.div, .value(let dn), .value(let dd), .none) = nodes[div].operation, dn == centred, dd == nodes[sqrt].output
            else { continue }
            let length = trailing.reduce(1) { $0 * shape[$1] }
            var last = div
            var scale: [Float]?, bias: [Float]?
            func expand(_ c: ConstantOperand) -> [Float]? {
                // Broadcast over the rows: a constant over the normalised axes only.
                let leading = c.shape.dropLast(trailing.count)
                guard leading.allSatisfy({ $0 == 1 }) else { return nil }
                if c.values.count == length { return c.values }
                if c.values.count == 1 { return [Float](repeating: c.values[0], count: length) }
                return nil
            }
            if let m = soleReader(nodes[last].output), let g = binaryWithConstant(m, .mul, of: nodes[last].output), let gv = expand(g) {
                scale = gv; removed[last] = true; last = m
                if let a = soleReader(nodes[last].output), let b = binaryWithConstant(a, .add, of: nodes[last].output), let bv = expand(b) {
                    bias = bv; removed[last] = true; last = a
                }
            }
            nodes[last].operation = .layerNorm(LayerNorm(length: length, epsilon: eps.values[0], scale: scale, bias: bias))
            nodes[last].inputs = [x]
            for r in [index, sub, pow, varianceIndex, addEps, sqrt, div] where r != last { removed[r] = true }
            consumers[x].append(last)
            producers[nodes[last].output] = last
        }
        if removed.contains(true) {
            nodes = nodes.indices.filter { !removed[$0] }.map { nodes[$0] }
        }
        _ = producers
    }
}
