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
        // Placed buffers indexed by lifetime, so the buffers a new one conflicts with are found
        // without scanning every placed buffer (that scan made planning quadratic in the graph's
        // size: 15 s for a 160 000-node chain). Lifetimes are slots first + 1 ... last + 1.
        var index = LifetimeIndex(slots: end + 2)
        var seen = [Int](repeating: -1, count: graph.values.count)
        var conflicts: [Graph.ValueID] = []
        // The first-fit search costs the number of overlapping pairs, which is quadratic when
        // thousands of buffers live at once (a model listing every tensor as an output, a huge
        // fan-out). Past this many pair visits the remaining buffers are stacked above all the
        // others instead: always correct, only less compact, and the plan stays fast to build.
        var pairVisitsLeft = 1 << 24
        var total = 0
        for (serial, buffer) in buffers.enumerated() {
            let size = Self.paddedSize(graph.values[buffer].elementsPerSample)
            if pairVisitsLeft > 0 {
                // Buffers alive at the same time, by increasing offset; take the first gap that fits.
                conflicts.removeAll(keepingCapacity: true)
                index.forEachOverlapping(first[buffer] + 1, last[buffer] + 1) { other in
                    pairVisitsLeft -= 1
                    if seen[other] != serial {
                        seen[other] = serial
                        conflicts.append(other)
                    }
                }
            }
            guard pairVisitsLeft > 0 else {
                offset[buffer] = total
                total += size
                continue
            }
            conflicts.sort { offset[$0] < offset[$1] }
            var candidate = 0
            for other in conflicts {
                if candidate + size <= offset[other] { break }
                candidate = max(candidate, offset[other] + Self.paddedSize(graph.values[other].elementsPerSample))
            }
            offset[buffer] = candidate
            index.insert(buffer, first[buffer] + 1, last[buffer] + 1)
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

/// Closed integer intervals (buffer lifetimes in node slots) in a segment tree: each interval is
/// stored at the O(log n) tree nodes that cover it exactly, and every tree node counts the
/// intervals stored in its subtree. Finding the intervals that overlap a query visits only
/// subtrees holding some, so it costs O(log² n) per interval found (reported once per tree
/// node holding it; callers deduplicate) instead of a scan over all intervals.
private struct LifetimeIndex {
    private let size: Int
    private var stored: [[Graph.ValueID]]
    private var below: [Int]

    init(slots: Int) {
        var size = 1
        while size < slots { size <<= 1 }
        self.size = size
        stored = Array(repeating: [], count: 2 * size)
        below = Array(repeating: 0, count: 2 * size)
    }

    mutating func insert(_ id: Graph.ValueID, _ low: Int, _ high: Int) {
        insert(id, low, high, node: 1, nodeLow: 0, nodeHigh: size - 1)
    }

    @discardableResult
    private mutating func insert(_ id: Graph.ValueID, _ low: Int, _ high: Int, node: Int, nodeLow: Int, nodeHigh: Int) -> Int {
        if high < nodeLow || nodeHigh < low { return 0 }
        var added = 0
        if low <= nodeLow && nodeHigh <= high {
            stored[node].append(id)
            added = 1
        } else {
            let mid = (nodeLow + nodeHigh) / 2
            added = insert(id, low, high, node: 2 * node, nodeLow: nodeLow, nodeHigh: mid)
                + insert(id, low, high, node: 2 * node + 1, nodeLow: mid + 1, nodeHigh: nodeHigh)
        }
        below[node] += added
        return added
    }

    func forEachOverlapping(_ low: Int, _ high: Int, _ body: (Graph.ValueID) -> Void) {
        visit(low, high, node: 1, nodeLow: 0, nodeHigh: size - 1, body)
    }

    private func visit(_ low: Int, _ high: Int, node: Int, nodeLow: Int, nodeHigh: Int, _ body: (Graph.ValueID) -> Void) {
        if below[node] == 0 || high < nodeLow || nodeHigh < low { return }
        // An interval stored here covers this node's whole range, which meets the query.
        for id in stored[node] { body(id) }
        if nodeLow == nodeHigh { return }
        let mid = (nodeLow + nodeHigh) / 2
        visit(low, high, node: 2 * node, nodeLow: nodeLow, nodeHigh: mid, body)
        visit(low, high, node: 2 * node + 1, nodeLow: mid + 1, nodeHigh: nodeHigh, body)
    }
}
