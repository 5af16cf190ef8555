/// Load-time rewrites that remove whole passes over memory:
/// BatchNormalization folded into the preceding Conv, residual Add folded into the Conv that
/// produces one of its operands, and activations (Relu, Clip/Relu6, Sigmoid, SiLU, …) fused
/// into the Conv/Gemm/elementwise node before them.
extension Graph {
    mutating func fuse() {
        fuseTransformerPatterns()  // Graph+TransformerFusion.swift
        foldAffineIntoConvolutions()
        fuseResidualAdds()
        fuseSiLU()
        fuseActivations()
        fuseConcatIntoAffine()
    }

    /// What one rewrite did: node `survivor` absorbed the nodes `removed` and now writes the
    /// value the last of them wrote.
    private struct Merge {
        var survivor: Int
        var removed: [Int]
    }

    /// The state a rewrite reads: who reads and who writes each value, and the graph outputs.
    private struct FusionContext {
        var consumers: [[Int]]
        var producers: [Int?]
        var outputs: Set<ValueID>

        /// True when `value` feeds exactly one node and is not a graph output, so the node
        /// producing it may absorb that consumer.
        func isPrivate(_ value: ValueID) -> Bool {
            consumers[value].count == 1 && !outputs.contains(value)
        }
    }

    /// Runs `rewrite` once on each node, in order, and drops the nodes it made redundant.
    ///
    /// One forward pass keeps the import linear in the graph's size (the former loop restarted
    /// from the first node after every change and rebuilt the consumer lists each time:
    /// quadratic, minutes for 160 000 fusable nodes). After a merge the survivor writes the
    /// absorbed node's output, so `producers` is updated for that value and later nodes see the
    /// merged node: chains (Conv → BN → BN, a BN then a Relu) still collapse in the one pass.
    /// Consumer lists stay valid: an absorbed node's input is read by nobody else (`isPrivate`),
    /// and a residual moves from the Add to the Conv, one reader for another.
    private mutating func rewriteInOnePass(_ rewrite: (inout Graph, Int, FusionContext) -> Merge?) {
        var context = FusionContext(consumers: consumers(), producers: producers(), outputs: Set(outputs))
        var removed = [Bool](repeating: false, count: nodes.count)
        var anyRemoved = false
        for index in nodes.indices where !removed[index] {
            guard let merge = rewrite(&self, index, context) else { continue }
            for r in merge.removed { removed[r] = true }
            anyRemoved = true
            context.producers[nodes[merge.survivor].output] = merge.survivor
        }
        if anyRemoved {
            nodes = nodes.indices.filter { !removed[$0] }.map { nodes[$0] }
        }
    }

    /// Conv → BatchNormalization becomes one Conv with scaled weights and a shifted bias.
    private mutating func foldAffineIntoConvolutions() {
        rewriteInOnePass { graph, index, context in
            guard case .channelAffine(let scale, let shift, .none) = graph.nodes[index].operation,
                  let p = context.producers[graph.nodes[index].inputs[0]],
                  case .conv(let geometry, var weights, let bias, .none) = graph.nodes[p].operation,
                  graph.nodes[p].inputs.count == 1, context.isPrivate(graph.nodes[p].output),
                  scale.count == geometry.outChannels, geometry.outChannels > 0 else { return nil }
            // The node gives up its reference first, so the weights are scaled in place: a copy
            // here held every convolution's weights twice while loading (a 100 MB ResNet-50 with
            // its BatchNormalizations peaked at 348 MB, 100 MB above the same model folded).
            graph.nodes[p].operation = .alias
            let perChannel = weights.count / geometry.outChannels
            for channel in 0..<geometry.outChannels {
                for k in 0..<perChannel { weights[channel * perChannel + k] *= scale[channel] }
            }
            let newBias = (0..<geometry.outChannels).map { (bias?[$0] ?? 0) * scale[$0] + shift[$0] }
            graph.nodes[p].operation = .conv(geometry: geometry, weights: weights, bias: newBias, activation: .none)
            graph.nodes[p].output = graph.nodes[index].output
            return Merge(survivor: p, removed: [index])
        }
    }

    /// Add(conv(x), skip) becomes conv(x) with `skip` as its residual input, added in the
    /// convolution's epilogue (ResNet's block output). `skip` must be computed before the conv.
    private mutating func fuseResidualAdds() {
        rewriteInOnePass { graph, index, context in
            guard case .binary(.add, .value(let a), .value(let b), .none) = graph.nodes[index].operation, a != b else { return nil }
            let output = graph.values[graph.nodes[index].output].shape
            let candidates = [(a, b), (b, a)].compactMap { convValue, skip -> (Int, ValueID)? in
                guard let p = context.producers[convValue], case .conv(_, _, _, .none) = graph.nodes[p].operation,
                      graph.nodes[p].inputs.count == 1, context.isPrivate(convValue),
                      graph.values[convValue].shape == output, graph.values[skip].shape == output,
                      (context.producers[skip] ?? -1) < p else { return nil }
                return (p, skip)
            }
            guard let (p, skip) = candidates.max(by: { $0.0 < $1.0 }) else { return nil }
            graph.nodes[p].inputs.append(skip)
            graph.nodes[p].output = graph.nodes[index].output
            return Merge(survivor: p, removed: [index])
        }
    }

    /// x · sigmoid(x), with x from a Conv, becomes the Conv with a SiLU epilogue.
    private mutating func fuseSiLU() {
        rewriteInOnePass { graph, index, context in
            guard case .activation(.sigmoid) = graph.nodes[index].operation else { return nil }
            let x = graph.nodes[index].inputs[0], sigmoidOut = graph.nodes[index].output
            guard let p = context.producers[x], case .conv(let geometry, let weights, let bias, .none) = graph.nodes[p].operation,
                  !context.outputs.contains(x), context.consumers[x].count == 2, context.isPrivate(sigmoidOut),
                  let m = context.consumers[sigmoidOut].first, context.consumers[x].contains(m),
                  case .binary(.mul, let lhs, let rhs, .none) = graph.nodes[m].operation else { return nil }
            let operands = [lhs, rhs].compactMap { operand -> ValueID? in
                if case .value(let id) = operand { return id } else { return nil }
            }
            guard Set(operands) == [x, sigmoidOut] else { return nil }
            graph.nodes[p].operation = .conv(geometry: geometry, weights: weights, bias: bias, activation: .silu)
            graph.nodes[p].output = graph.nodes[m].output
            return Merge(survivor: p, removed: [index, m])
        }
    }

    /// An activation node folds into the Conv, Gemm, affine or elementwise node before it.
    private mutating func fuseActivations() {
        rewriteInOnePass { graph, index, context in
            guard case .activation(let activation) = graph.nodes[index].operation,
                  let p = context.producers[graph.nodes[index].inputs[0]],
                  context.isPrivate(graph.nodes[index].inputs[0]) else { return nil }
            switch graph.nodes[p].operation {
            case .conv(let geometry, let weights, let bias, .none):
                graph.nodes[p].operation = .conv(geometry: geometry, weights: weights, bias: bias, activation: activation)
            case .dense(let inFeatures, let outFeatures, let weights, let bias, .none):
                graph.nodes[p].operation = .dense(inFeatures: inFeatures, outFeatures: outFeatures, weights: weights, bias: bias, activation: activation)
            case .channelAffine(let scale, let shift, .none):
                graph.nodes[p].operation = .channelAffine(scale: scale, shift: shift, activation: activation)
            case .binary(let kind, let lhs, let rhs, .none):
                graph.nodes[p].operation = .binary(kind, lhs: lhs, rhs: rhs, activation: activation)
            default:
                return nil
            }
            graph.nodes[p].output = graph.nodes[index].output
            return Merge(survivor: p, removed: [index])
        }
    }

    /// Concat (along the channels) → BatchNormalization (+ activation) becomes one affine node
    /// reading the Concat's inputs: DenseNet normalises the concatenation of all earlier features
    /// before every dense layer, and that concatenation has no other reader, so writing it and
    /// reading it back was a whole copy pass per layer (DenseNet-121: 58 of them, up to 1 000
    /// channels each). Runs after `fuseActivations`, so the ReLU is already in the affine node.
    private mutating func fuseConcatIntoAffine() {
        rewriteInOnePass { graph, index, context in
            guard case .channelAffine = graph.nodes[index].operation, graph.nodes[index].inputs.count == 1,
                  let p = context.producers[graph.nodes[index].inputs[0]],
                  case .concat(axis: 1) = graph.nodes[p].operation, !graph.nodes[p].inputs.isEmpty,
                  context.isPrivate(graph.nodes[p].output),
                  graph.nodes[p].inputs.allSatisfy({ graph.values[$0].shape.count == graph.values[graph.nodes[p].output].shape.count })
            else { return nil }
            // The affine node survives (its name and position: every Concat input is computed by then).
            graph.nodes[index].inputs = graph.nodes[p].inputs
            return Merge(survivor: index, removed: [p])
        }
    }
}
