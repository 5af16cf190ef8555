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

    init(graph: Graph) {
        var root = Array(graph.values.indices)
        for node in graph.nodes {
            if case .alias = node.operation { root[node.output] = root[node.inputs[0]] }
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

    /// Buffers start on 64-byte boundaries (16 floats) for aligned vector loads.
    static func paddedSize(_ floats: Int) -> Int { (floats + 15) & ~15 }

    func offset(of value: Graph.ValueID) -> Int { offset[root[value]] }
}
