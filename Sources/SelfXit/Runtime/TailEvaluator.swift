/// The run-time-shaped tail of a model (issue 13, point 2): the part of a detector whose shapes
/// depend on the data (post-TopK/NMS boxes, ROI heads, mask pasting).
///
/// The engine plans memory per sample for every activation whose shape follows from the input
/// shape (the *prefix*: the backbone, FPN and heads — every exit candidate lives there). Nodes the
/// planner cannot run (a reshape to a number of boxes, NonZero, NonMaxSuppression, RoiAlign …)
/// and every node reading their results form the tail: ONNX nodes evaluated in file order on
/// `ConstantTensor`s whose shapes are computed at run time, one image at a time. The tail reuses
/// the constant folder's evaluators (Shape/Gather/Slice/Concat/Reshape/Where/… on float and
/// int64 tensors) and adds the detection operators (`TailOps`); heavy products call the
/// engine's kernels (`DenseKernel` for Gemm/MatMul with constant weights).
///
/// Every tail tensor is sized and charged to a per-call budget (`ConstantFolder.Budget`, at most
/// `maxTensorElements` elements each) before it is allocated: a hostile model or input
/// gets a `SelfXitError` naming the node, never a trap.
struct TailProgram: @unchecked Sendable {
    struct Node {
        var onnx: ONNXNode
        /// Register of each input (−1: absent optional input).
        var inputs: [Int]
        /// Register of each output (−1: an output nobody reads).
        var outputs: [Int]
        /// Registers whose last reader this node is (freed after it runs).
        var frees: [Int] = []
        /// An `If`'s then and else branches (nodes in the same register file).
        var branches: [Branch] = []
        /// A Conv with constant weights and bias: its kernels, packed once per geometry.
        var convCache: TailConvCache? = nil

        /// An `Expand` not run: its only reader, a ScatterElements, reads its input instead (`rowIndices`).
        var deferred = false
        /// A ScatterElements whose indices are a deferred `Expand` of one index per row: that
        /// Expand (node and input registers), evaluated only if the row form does not apply.
        var rowIndices: (node: ONNXNode, inputs: [Int])? = nil

        /// Every register this node reads, its branches' reads included.
        var reads: [Int] {
            inputs.filter { $0 >= 0 } + (rowIndices?.inputs ?? []) + branches.flatMap { b in b.nodes.flatMap(\.reads) + b.outputs }
        }
    }

    /// One branch of an `If`: its nodes, and the registers holding its outputs when it is done.
    struct Branch {
        var nodes: [Node] = []
        var outputs: [Int] = []
        /// A Loop body's inputs (iteration number, condition, loop-carried values), set per iteration.
        var inputs: [Int] = []
    }

    /// Iterations one Loop may run at most.
    static let maxLoopIterations = 1 << 16

    /// A prefix activation read by the tail, with its ONNX shape at batch 1.
    struct PrefixInput {
        var register: Int
        var value: Graph.ValueID
        var shape: [Int]
    }

    var opset: Int
    /// Initial register file: the constants the tail reads, nil elsewhere.
    var registers: [ConstantTensor?] = []
    var registerNames: [String] = []
    var prefixInputs: [PrefixInput] = []
    var nodes: [Node] = []
    /// The model's outputs, in the model's order: their registers.
    var outputs: [(name: String, register: Int)] = []
    /// The shapes the file declares for them (−1: known only at run time).
    var outputShapes: [[Int]] = []
    /// Kernels built at load time for nodes with constant weights (node index → kernel).
    var denseKernels: [Int: DenseKernel] = [:]

    /// Elements all tensors of one tail evaluation may produce together (1 G: seconds of work).
    static let maxWorkPerCall = 1 << 30
    /// Elements one tail tensor may have (64 M floats, 256 MB): Faster R-CNN R50's pooled ROI
    /// pooling (ScatterElements into [ROIs, 256, 7, 7]) makes 24.4 M elements on the conformance
    /// frame of a calibrated model — over the load-time folding limit (16.7 M) that bounded them before.
    static let maxTensorElements = 1 << 26

    /// Works out which registers each node frees (outputs are never freed).
    mutating func finish() {
        deferRowIndexExpands()
        var last = [Int](repeating: -1, count: registers.count)
        for (index, node) in nodes.enumerated() { for r in node.reads { last[r] = index } }
        for (_, r) in outputs { last[r] = Int.max }
        for (r, index) in last.enumerated() where index >= 0 && index < nodes.count { nodes[index].frees.append(r) }
    }

    /// Faster/Mask R-CNN's MultiScaleRoIAlign puts each level's pooled ROIs back in ROI order with
    /// `ScatterElements(zeros, Expand(roi index [n, 1, 1, 1] → [n, 256, 7, 7]), pooled)`: the Expand
    /// makes an int64 tensor as large as the features (100 MB on the box head) only to say "row k
    /// goes to row index[k]". Such an Expand, read by nothing else, is not run; the scatter reads
    /// its input and copies whole rows (`TailOps.scatterExpandedRows`), and evaluates the Expand
    /// itself when the shapes are not of that form.
    private mutating func deferRowIndexExpands() {
        var readers = [Int](repeating: 0, count: registers.count)
        for node in nodes { for r in node.reads { readers[r] += 1 } }
        for (_, r) in outputs { readers[r] += 2 }
        var producer: [Int: Int] = [:]
        for (j, node) in nodes.enumerated() { for r in node.outputs where r >= 0 { producer[r] = j } }
        for i in nodes.indices where nodes[i].onnx.opType == "ScatterElements" && nodes[i].inputs.count == 3 {
            let r = nodes[i].inputs[1]
            guard r >= 0, readers[r] == 1, let j = producer[r], j < i, nodes[j].onnx.opType == "Expand",
                  nodes[j].inputs.count == 2, nodes[j].inputs.allSatisfy({ $0 >= 0 }), nodes[j].outputs == [r] else { continue }
            nodes[j].deferred = true
            nodes[i].rowIndices = (nodes[j].onnx, nodes[j].inputs)
        }
    }

    /// Evaluates the tail for one image. `prefix(value)` points at that image's row of a prefix
    /// activation. Returns the model's outputs in order.
    func run(prefix: (Graph.ValueID) -> UnsafePointer<Float>, pool: ThreadPool) throws -> [ConstantTensor] {
        var file = registers
        for input in prefixInputs {
            let count = uncheckedProduct(input.shape)
            file[input.register] = ConstantTensor(shape: input.shape, floats: Array(UnsafeBufferPointer(start: prefix(input.value), count: count)))
        }
        var budget = ConstantFolder.Budget()
        budget.elementsLeft = Self.maxWorkPerCall
        budget.maxElements = Self.maxTensorElements
        budget.atRunTime = true
        try run(nodes, topLevel: true, &file, &budget, pool: pool)
        return try outputs.map { name, r in
            guard let value = file[r] else { throw SelfXitError.internalError("tail output '\(name)' was not computed") }
            return value
        }
    }

    /// ONNX Loop: the body runs in the same register file while the trip count and the condition
    /// allow; loop-carried values go round, scan outputs are stacked along a new first axis.
    private func runLoop(_ node: Node, _ inputs: [ConstantTensor?], _ file: inout [ConstantTensor?], _ budget: inout ConstantFolder.Budget,
                         pool: ThreadPool) throws -> [ConstantTensor] {
        guard let body = node.branches.first, body.inputs.count >= 2, body.outputs.count >= 1 else {
            throw node.onnx.invalid("Loop without a readable body")
        }
        let carriedCount = body.inputs.count - 2
        guard inputs.count == carriedCount + 2, body.outputs.count >= carriedCount + 1 else {
            throw node.onnx.invalid("Loop with \(inputs.count - 2) initial values for a body of \(carriedCount) loop-carried values")
        }
        let tripLimit = inputs[0].map { $0.count == 1 ? $0.ints[0] : 0 } ?? Int64.max
        var condition = inputs[1].map { $0.count == 1 && ($0.isFloat ? $0.floats[0] != 0 : $0.ints[0] != 0) } ?? true
        var carried = try (0..<carriedCount).map { k -> ConstantTensor in
            guard let value = inputs[k + 2] else { throw node.onnx.invalid("Loop initial value \(k) is missing") }
            return value
        }
        let scanCount = body.outputs.count - 1 - carriedCount
        var scans = [[ConstantTensor]](repeating: [], count: scanCount)
        var iteration: Int64 = 0
        while iteration < tripLimit && condition {
            guard iteration < Int64(Self.maxLoopIterations) else {
                throw node.onnx.unsupported("Loop ran \(Self.maxLoopIterations) iterations (the limit)")
            }
            file[body.inputs[0]] = ConstantTensor(shape: [], ints: [iteration])
            file[body.inputs[1]] = ConstantTensor(shape: [], ints: [condition ? 1 : 0])
            for k in 0..<carriedCount { file[body.inputs[k + 2]] = carried[k] }
            try run(body.nodes, topLevel: false, &file, &budget, pool: pool)
            let outputs = try body.outputs.map { r -> ConstantTensor in
                guard let value = file[r] else { throw SelfXitError.internalError("Loop body output '\(registerNames[r])' was not computed") }
                return value
            }
            condition = outputs[0].count == 1 && (outputs[0].isFloat ? outputs[0].floats[0] != 0 : outputs[0].ints[0] != 0)
            carried = Array(outputs[1...carriedCount])
            for k in 0..<scanCount { scans[k].append(outputs[1 + carriedCount + k]) }
            iteration += 1
        }
        let stacked = try scans.map { parts -> ConstantTensor in
            guard let first = parts.first else { return ConstantTensor(shape: [0], floats: []) }
            guard parts.allSatisfy({ $0.shape == first.shape }) else { throw node.onnx.invalid("Loop scan output changes shape between iterations") }
            try budget.charge(first.count * parts.count, node.onnx)
            if first.isFloat { return ConstantTensor(shape: [parts.count] + first.shape, floats: parts.flatMap(\.floats)) }
            return ConstantTensor(shape: [parts.count] + first.shape, ints: parts.flatMap(\.ints))
        }
        return carried + stacked
    }

    /// Evaluates `list` in order in `file` (top level: with dense kernels and register frees).
    private func run(_ list: [Node], topLevel: Bool, _ file: inout [ConstantTensor?], _ budget: inout ConstantFolder.Budget,
                     pool: ThreadPool) throws {
        for (index, node) in list.enumerated() {
            if node.deferred {
                for r in node.frees { file[r] = nil }
                continue
            }
            var inputs = node.inputs.map { $0 >= 0 ? file[$0] : nil }
            for (k, r) in node.inputs.enumerated() where r >= 0 && inputs[k] == nil && !(k == 1 && node.rowIndices != nil) {
                throw SelfXitError.internalError("tail node '\(node.onnx.displayName)' reads '\(registerNames[r])' before it is computed")
            }
            let results: [ConstantTensor]
            if node.onnx.opType == "If" {
                // The branch the condition picks runs in the same register file (its nodes read
                // the outer tensors directly); its outputs are the If's.
                guard let condition = inputs.first ?? nil, condition.count == 1, node.branches.count == 2 else {
                    throw node.onnx.invalid("If needs a one-element condition and two branches")
                }
                let taken = node.branches[(condition.isFloat ? condition.floats[0] != 0 : condition.ints[0] != 0) ? 0 : 1]
                try run(taken.nodes, topLevel: false, &file, &budget, pool: pool)
                results = try taken.outputs.map { r in
                    guard let value = file[r] else { throw SelfXitError.internalError("If branch output '\(registerNames[r])' was not computed") }
                    return value
                }
            } else if node.onnx.opType == "Loop" {
                results = try runLoop(node, inputs, &file, &budget, pool: pool)
            } else {
                // Registers this node reads for the last time leave the file now, so that an
                // operator holding the only reference updates the buffer in place
                // (`TailOps.evaluateInPlace`) instead of copying it.
                for r in node.frees where node.inputs.contains(r) { file[r] = nil }
                if let deferred = node.rowIndices {
                    let expandInputs = deferred.inputs.map { file[$0] }
                    guard let x = expandInputs[0], let shape = expandInputs[1] else {
                        throw SelfXitError.internalError("tail node '\(node.onnx.displayName)' reads its indices' Expand inputs before they are computed")
                    }
                    if let result = try TailOps.scatterExpandedRows(node.onnx, &inputs, rowIndex: x, expandShape: shape, budget: &budget) {
                        results = [result]
                        for (k, r) in node.outputs.enumerated() where r >= 0 {
                            try results[k].checkConsistent { "node '\(node.onnx.displayName)' (\(node.onnx.opType)): result" }
                            file[r] = results[k]
                        }
                        for r in node.frees { file[r] = nil }
                        continue
                    }
                    inputs[1] = try ConstantFolder.evaluate(deferred.node, expandInputs, opset: opset, budget: &budget)
                }
                if let result = try TailOps.evaluateInPlace(node.onnx, &inputs, budget: &budget, pool: pool) {
                    results = [result]
                } else {
                    results = try TailOps.evaluate(node.onnx, inputs, opset: opset, budget: &budget,
                                                   dense: topLevel ? denseKernels[index] : nil, pool: pool, convCache: node.convCache)
                }
            }
            guard results.count >= node.outputs.filter({ $0 >= 0 }).count else {
                throw node.onnx.invalid("produced \(results.count) outputs, \(node.outputs.count) expected")
            }
            for (k, r) in node.outputs.enumerated() where r >= 0 {
                try results[k].checkConsistent { "node '\(node.onnx.displayName)' (\(node.onnx.opType)): result" }
                file[r] = results[k]
            }
            for r in node.frees { file[r] = nil }
        }
    }
}
