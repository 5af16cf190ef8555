/// Candidate exit points (paper §3.1): tensors whose value alone determines the model's
/// output — every input→output path passes through them — taken at block outputs and not
/// inside the last two compute layers.
extension Graph {
    struct ExitCandidate: Equatable {
        /// Position in `nodes` after which the candidate tensor is complete.
        var afterNode: Int
        var value: ValueID
        /// Per-sample shape [C, H, W] of the tensor.
        var shape: [Int]
        /// Backbone FLOPs per sample up to and including `afterNode`, and after it.
        var flopsBefore: Int
        var flopsAfter: Int
    }

    /// Positions where exactly one activation buffer is live: the graph can be cut there and
    /// resumed from that one tensor. Returns (node index, value) pairs in depth order.
    func cutPoints() -> [(afterNode: Int, value: ValueID)] {
        let memory = MemoryPlan(graph: self)
        var lastUse = [Int](repeating: -1, count: values.count)
        for (index, node) in nodes.enumerated() {
            for input in node.inputs { lastUse[memory.root[input]] = max(lastUse[memory.root[input]], index) }
        }
        for output in outputs { lastUse[memory.root[output]] = nodes.count }
        // Buffers alive after each position, kept as a count with expiry lists (a set filtered at
        // every node cost the sum of live sizes: quadratic for wide graphs). A buffer is live
        // after node i while its last use is later than i.
        var expiring = [[ValueID]](repeating: [], count: nodes.count + 1)
        var isLive = [Bool](repeating: false, count: values.count)
        var liveCount = 0
        func makeLive(_ buffer: ValueID, at index: Int) {
            guard !isLive[buffer], lastUse[buffer] > index else { return }
            isLive[buffer] = true
            liveCount += 1
            expiring[lastUse[buffer]].append(buffer)
        }
        makeLive(memory.root[input], at: -1)
        var result: [(Int, ValueID)] = []
        for (index, node) in nodes.enumerated() {
            makeLive(memory.root[node.output], at: index)
            for buffer in expiring[index] where isLive[buffer] {
                isLive[buffer] = false
                liveCount -= 1
            }
            if liveCount == 1 && isLive[memory.root[node.output]] { result.append((index, node.output)) }
        }
        return result
    }

    /// Exit candidates in depth order. A cut point is a *block output* when its tensor forks
    /// (it feeds a block and its skip connection) or was made by a merge (a residual conv, an
    /// Add, a Concat); plain chains without blocks fall back to every cut point after a
    /// spatial reduction or activation. Tensors must be [C, H, W] for the conv heads.
    func exitCandidates() -> [ExitCandidate] {
        let consumers = consumers()
        let computeNodes = nodes.indices.filter {
            switch nodes[$0].operation {
            case .conv, .dense, .matmul: return true
            default: return false
            }
        }
        // Not inside the last two compute layers: cut before the second-to-last one.
        guard computeNodes.count >= 3 else { return [] }
        let limit = computeNodes[computeNodes.count - 2]
        var prefix = [0]
        for node in nodes { prefix.append(prefix[prefix.count - 1].addingSaturated(flops(of: node))) }
        let total = prefix[prefix.count - 1]
        let outputSet = Set(outputs)  // a model may list many outputs: no linear search per cut
        let cuts = cutPoints().filter { $0.afterNode < limit && values[$0.value].shape.count == 3 && !outputSet.contains($0.value) }
        func isBlockOutput(_ cut: (afterNode: Int, value: ValueID)) -> Bool {
            let node = nodes[cut.afterNode]
            return consumers[cut.value].count >= 2 || node.inputs.count >= 2
        }
        let blockOutputs = cuts.filter(isBlockOutput)
        let chosen = blockOutputs.isEmpty ? cuts : blockOutputs
        return chosen.map { cut in
            ExitCandidate(afterNode: cut.afterNode, value: cut.value, shape: values[cut.value].shape,
                          flopsBefore: prefix[cut.afterNode + 1], flopsAfter: total - prefix[cut.afterNode + 1])
        }
    }
}
