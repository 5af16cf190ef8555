/// Per-sample floating-point operation counts (a multiply-add counts as 2), used for exit
/// planning (the paper's C1/C2 in Eq. 4) and statistics.
///
/// Counts saturate at `flopsCeiling` (2^56) instead of trapping: every factor is bounded by the
/// importer, but a hostile file's products and sums (a large weight tensor on a large plane, a
/// million nodes) could still leave `Int`; the ceiling leaves room for the exit planner's own
/// sums of a few such counts.
extension Graph {
    func flops(of node: Node) -> Int {
        let out = values[node.output].elementsPerSample
        switch node.operation {
        case .conv(let g, _, _, _):
            return saturatingProduct([2, out, g.inChannels / max(g.groups, 1), g.kernelHeight, g.kernelWidth])
                .addingSaturated(node.inputs.count > 1 ? out : 0)
        case .dense(let inFeatures, _, _, _, _):
            return saturatingProduct([2, out, inFeatures])
        case .matmul:
            return saturatingProduct([2, out, values[node.inputs[0]].shape.last ?? 1])
        case .maxPool(let g), .averagePool(let g):
            return saturatingProduct([out, g.kernelHeight, g.kernelWidth])
        case .globalAveragePool:
            return values[node.inputs[0]].elementsPerSample
        case .softmax:
            return saturatingProduct([5, out])
        case .channelAffine, .binary, .activation:
            return out
        case .transpose, .concat, .pad, .alias, .stridedCopy, .indexGather, .constantFill:
            return 0
        case .reduce:
            return values[node.inputs[0]].elementsPerSample
        case .unary:
            return saturatingProduct([4, out])
        case .layerNorm:
            return saturatingProduct([6, out])
        case .resize2D(let kernel):
            return kernel.nearest ? 0 : saturatingProduct([7, out])
        }
    }

    /// FLOPs per sample of the whole graph.
    var totalFLOPs: Int { nodes.reduce(0) { $0.addingSaturated(flops(of: $1)) } }
}

let flopsCeiling = 1 << 56

/// Product of non-negative factors, at most `flopsCeiling`.
func saturatingProduct(_ factors: [Int]) -> Int {
    var product = 1
    for f in factors {
        guard let p = checkedMultiply(product, f), p <= flopsCeiling else { return flopsCeiling }
        product = p
    }
    return product
}

extension Int {
    /// `self + other` for non-negative FLOP counts, at most `flopsCeiling`.
    func addingSaturated(_ other: Int) -> Int {
        guard let sum = checkedAdd(self, other), sum <= flopsCeiling else { return flopsCeiling }
        return sum
    }
}
