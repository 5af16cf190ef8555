/// Per-sample floating-point operation counts (a multiply-add counts as 2), used for exit
/// planning (the paper's C1/C2 in Eq. 4) and statistics.
extension Graph {
    func flops(of node: Node) -> Int {
        let out = values[node.output].elementsPerSample
        switch node.operation {
        case .conv(let g, _, _, _):
            return 2 * out * (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth + (node.inputs.count > 1 ? out : 0)
        case .dense(let inFeatures, _, _, _, _):
            return 2 * out * inFeatures
        case .matmul:
            return 2 * out * (values[node.inputs[0]].shape.last ?? 1)
        case .maxPool(let g), .averagePool(let g):
            return out * g.kernelHeight * g.kernelWidth
        case .globalAveragePool:
            return values[node.inputs[0]].elementsPerSample
        case .softmax:
            return 5 * out
        case .channelAffine, .binary, .activation:
            return out
        case .transpose, .concat, .pad, .alias:
            return 0
        }
    }

    /// FLOPs per sample of the whole graph.
    var totalFLOPs: Int { nodes.reduce(0) { $0 + flops(of: $1) } }
}
