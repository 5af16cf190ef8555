/// Where every activation lives in the arena.
///
/// Offsets are planned per sample: a workspace built for `capacity` batch rows places the
/// buffer of value v at `offset(v) * capacity` and uses its first `rows * elementsPerSample`
/// floats. Shrinking the batch mid-pass (an early exit) therefore never moves a buffer: the
/// surviving rows are compacted inside it.
struct MemoryPlan {
    /// For every value, the value owning its buffer (aliases — Reshape, Flatten, … — share
    /// their input's buffer).
    let root: [Graph.ValueID]
    /// Per-sample float offset of each root value's buffer (undefined for non-roots).
    let offset: [Int]
    /// Per-sample floats of the arena.
    let floatsPerSample: Int
    /// Per value: the node writing it (−1: the graph input) and the last node reading it
    /// (`graph.nodes.count` for graph outputs, −1 if none).
    let producer: [Int]
    let lastRead: [Int]

    init(graph: Graph) {
        var root = Array(graph.values.indices)
        var producer = [Int](repeating: -1, count: graph.values.count)
        var lastRead = [Int](repeating: -1, count: graph.values.count)
        for (index, node) in graph.nodes.enumerated() {
            producer[node.output] = index
            for input in node.inputs { lastRead[input] = index }
        }
        for output in graph.outputs { lastRead[output] = graph.nodes.count }
        self.producer = producer
        self.lastRead = lastRead
        // Last read of each buffer so far, over the values sharing it.
        var bufferLastRead = lastRead
        for (index, node) in graph.nodes.enumerated() {
            if case .alias = node.operation {
                root[node.output] = root[node.inputs[0]]
            } else if Self.writesResidualInPlace(node, graph: graph, root: root, bufferLastRead: bufferLastRead, at: index) {
                root[node.output] = root[node.inputs[1]]
            } else {
                continue
            }
            let r = root[node.output]
            bufferLastRead[r] = max(bufferLastRead[r], lastRead[node.output])
        }
        // Lifetime of each buffer in node positions: [first write, last read]; the input is
        // written before node 0, graph outputs are read after the last node.
        let end = graph.nodes.count
        var first = [Int](repeating: Int.max, count: graph.values.count)
        var last = [Int](repeating: -1, count: graph.values.count)
        first[root[graph.input]] = -1
        last[root[graph.input]] = -1
        for (index, node) in graph.nodes.enumerated() {
            let r = root[node.output]
            first[r] = min(first[r], index)
            last[r] = max(last[r], index)
            for input in node.inputs { last[root[input]] = max(last[root[input]], index) }
        }
        for output in graph.outputs { last[root[output]] = end }
        let buffers = graph.values.indices.filter { root[$0] == $0 && first[$0] != Int.max }
            .sorted { graph.values[$0].elementsPerSample > graph.values[$1].elementsPerSample }
        var offset = [Int](repeating: 0, count: graph.values.count)
        var placed: [Graph.ValueID] = []
        var total = 0
        for buffer in buffers {
            let size = Self.paddedSize(graph.values[buffer].elementsPerSample)
            // Buffers alive at the same time, by increasing offset; take the first gap that fits.
            let conflicts = placed.filter { !(last[$0] < first[buffer] || last[buffer] < first[$0]) }
                .sorted { offset[$0] < offset[$1] }
            var candidate = 0
            for other in conflicts {
                if candidate + size <= offset[other] { break }
                candidate = max(candidate, offset[other] + Self.paddedSize(graph.values[other].elementsPerSample))
            }
            offset[buffer] = candidate
            placed.append(buffer)
            total = max(total, candidate + size)
        }
        self.root = root
        self.offset = offset
        self.floatsPerSample = total
    }

    /// Whether a convolution with a fused residual writes its sum over the residual, which no
    /// later node reads: the kernel then adds the product into a buffer it reads anyway, instead
    /// of reading the residual from one buffer and filling another (a third less memory traffic
    /// on a ResNet's expanding 1×1 convolutions). The graph input keeps its own buffer.
    private static func writesResidualInPlace(_ node: Graph.Node, graph: Graph, root: [Graph.ValueID],
                                              bufferLastRead: [Int], at index: Int) -> Bool {
        // Ungrouped only: their GEMM kernels accumulate into C; the grouped ones write before adding.
        guard case .conv(let geometry, _, _, _) = node.operation, geometry.groups == 1, node.inputs.count > 1 else { return false }
        let residual = root[node.inputs[1]]
        return residual != root[graph.input] && residual != root[node.inputs[0]]
            && bufferLastRead[residual] == index
            && graph.values[residual].elementsPerSample == graph.values[node.output].elementsPerSample
    }

    /// Buffers start on 64-byte boundaries (16 floats) for aligned vector loads.
    static func paddedSize(_ floats: Int) -> Int { (floats + 15) & ~15 }

    func offset(of value: Graph.ValueID) -> Int { offset[root[value]] }
}
