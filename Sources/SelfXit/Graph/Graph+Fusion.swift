/// Load-time rewrites that remove whole passes over memory:
/// BatchNormalization folded into the preceding Conv, residual Add folded into the Conv that
/// produces one of its operands, and activations (Relu, Clip/Relu6, Sigmoid, SiLU, …) fused
/// into the Conv/Gemm/elementwise node before them.
extension Graph {
    mutating func fuse() {
        foldAffineIntoConvolutions()
        fuseResidualAdds()
        fuseSiLU()
        fuseActivations()
    }

    /// True when `value` feeds exactly one node and is not a graph output, so the node
    /// producing it may absorb that consumer.
    private func isPrivate(_ value: ValueID, _ consumers: [[Int]]) -> Bool {
        consumers[value].count == 1 && !outputs.contains(value)
    }

    /// Runs `rewrite` on each node until it stops changing the graph; `rewrite` returns the
    /// indices of nodes it made redundant.
    private mutating func rewriteToFixpoint(_ rewrite: (inout Graph, Int, [[Int]], [Int?]) -> [Int]) {
        var changed = true
        while changed {
            changed = false
            let consumers = consumers(), producers = producers()
            for index in nodes.indices {
                let removed = rewrite(&self, index, consumers, producers)
                if !removed.isEmpty {
                    nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
                    changed = true
                    break
                }
            }
        }
    }

    /// Conv → BatchNormalization becomes one Conv with scaled weights and a shifted bias.
    private mutating func foldAffineIntoConvolutions() {
        rewriteToFixpoint { graph, index, consumers, producers in
            guard case .channelAffine(let scale, let shift, .none) = graph.nodes[index].operation,
                  let p = producers[graph.nodes[index].inputs[0]],
                  case .conv(let geometry, var weights, let bias, .none) = graph.nodes[p].operation,
                  graph.nodes[p].inputs.count == 1, graph.isPrivate(graph.nodes[p].output, consumers) else { return [] }
            let perChannel = weights.count / geometry.outChannels
            for channel in 0..<geometry.outChannels {
                for k in 0..<perChannel { weights[channel * perChannel + k] *= scale[channel] }
            }
            let newBias = (0..<geometry.outChannels).map { (bias?[$0] ?? 0) * scale[$0] + shift[$0] }
            graph.nodes[p].operation = .conv(geometry: geometry, weights: weights, bias: newBias, activation: .none)
            graph.nodes[p].output = graph.nodes[index].output
            return [index]
        }
    }

    /// Add(conv(x), skip) becomes conv(x) with `skip` as its residual input, added in the
    /// convolution's epilogue (ResNet's block output). `skip` must be computed before the conv.
    private mutating func fuseResidualAdds() {
        rewriteToFixpoint { graph, index, consumers, producers in
            guard case .binary(.add, .value(let a), .value(let b), .none) = graph.nodes[index].operation, a != b else { return [] }
            let output = graph.values[graph.nodes[index].output].shape
            let candidates = [(a, b), (b, a)].compactMap { convValue, skip -> (Int, ValueID)? in
                guard let p = producers[convValue], case .conv(_, _, _, .none) = graph.nodes[p].operation,
                      graph.nodes[p].inputs.count == 1, graph.isPrivate(convValue, consumers),
                      graph.values[convValue].shape == output, graph.values[skip].shape == output,
                      (producers[skip] ?? -1) < p else { return nil }
                return (p, skip)
            }
            guard let (p, skip) = candidates.max(by: { $0.0 < $1.0 }) else { return [] }
            graph.nodes[p].inputs.append(skip)
            graph.nodes[p].output = graph.nodes[index].output
            return [index]
        }
    }

    /// x · sigmoid(x), with x from a Conv, becomes the Conv with a SiLU epilogue.
    private mutating func fuseSiLU() {
        rewriteToFixpoint { graph, index, consumers, producers in
            guard case .activation(.sigmoid) = graph.nodes[index].operation else { return [] }
            let x = graph.nodes[index].inputs[0], sigmoidOut = graph.nodes[index].output
            guard let p = producers[x], case .conv(let geometry, let weights, let bias, .none) = graph.nodes[p].operation,
                  !graph.outputs.contains(x), consumers[x].count == 2, graph.isPrivate(sigmoidOut, consumers),
                  let m = consumers[sigmoidOut].first, consumers[x].contains(m),
                  case .binary(.mul, let lhs, let rhs, .none) = graph.nodes[m].operation else { return [] }
            let operands = [lhs, rhs].compactMap { operand -> ValueID? in
                if case .value(let id) = operand { return id } else { return nil }
            }
            guard Set(operands) == [x, sigmoidOut] else { return [] }
            graph.nodes[p].operation = .conv(geometry: geometry, weights: weights, bias: bias, activation: .silu)
            graph.nodes[p].output = graph.nodes[m].output
            return [index, m]
        }
    }

    /// An activation node folds into the Conv, Gemm, affine or elementwise node before it.
    private mutating func fuseActivations() {
        rewriteToFixpoint { graph, index, consumers, producers in
            guard case .activation(let activation) = graph.nodes[index].operation,
                  let p = producers[graph.nodes[index].inputs[0]],
                  graph.isPrivate(graph.nodes[index].inputs[0], consumers) else { return [] }
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
                return []
            }
            graph.nodes[p].output = graph.nodes[index].output
            return [index]
        }
    }
}
