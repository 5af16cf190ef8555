/// A graph compiled for execution: kernels built (weights packed) once, memory planned once,
/// and the node list runnable in *segments* — any contiguous range of nodes, on any number of
/// leading batch rows. Early exits (paper, Algorithm 1) run the backbone segment by segment,
/// shrinking the batch between segments.
///
/// The plan is immutable and shared by all threads; each pass brings its own `Workspace`.
final class ExecutionPlan {
    let graph: Graph
    let memory: MemoryPlan
    let pool: ThreadPool
    private let steps: [Step]
    /// Scratch floats a workspace needs (per-thread kernel buffers, all threads).
    let scratchFloats: Int

    /// A compiled node: runs on `rows` batch rows of a workspace.
    struct Step {
        let run: (Workspace, Int) -> Void
        let scratchFloatsPerThread: Int
    }

    init(graph: Graph, pool: ThreadPool) throws {
        configureBLASForExternalThreading()
        self.graph = graph
        self.pool = pool
        let memory = MemoryPlan(graph: graph)
        self.memory = memory
        let steps = try graph.nodes.map { try Self.compile($0, graph: graph, memory: memory, pool: pool) }
        self.steps = steps
        scratchFloats = (steps.map(\.scratchFloatsPerThread).max() ?? 0) * pool.threadCount
    }

    func makeWorkspace(capacity: Int) -> Workspace {
        Workspace(capacity: capacity, floatsPerSample: memory.floatsPerSample, scratchFloats: scratchFloats)
    }

    /// Pointer to the first row of `value` in `workspace`.
    @inline(__always)
    func pointer(_ value: Graph.ValueID, in workspace: Workspace) -> UnsafeMutablePointer<Float> {
        workspace.arena + memory.offset(of: value) * workspace.capacity
    }

    /// Runs nodes `range` (positions in `graph.nodes`) on the first `rows` rows.
    /// Precondition: 1 ≤ rows ≤ workspace.capacity, and the inputs of the range are in place.
    func run(_ range: Range<Int>, rows: Int, in workspace: Workspace) {
        for index in range { steps[index].run(workspace, rows) }
    }

    /// Moves the rows listed in `keep` (ascending) of `value` to the front, in order, so the
    /// pass can go on with `keep.count` rows.
    func compact(_ value: Graph.ValueID, keeping keep: [Int], in workspace: Workspace) {
        let base = pointer(value, in: workspace)
        let width = graph.values[value].elementsPerSample
        for (target, source) in keep.enumerated() where target != source {
            (base + target * width).update(from: base + source * width, count: width)
        }
    }

    // MARK: - Compiling nodes to kernels

    private static func compile(_ node: Graph.Node, graph: Graph, memory: MemoryPlan, pool: ThreadPool) throws -> Step {
        let outputID = node.output
        let outputWidth = graph.values[outputID].elementsPerSample
        let inputIDs = node.inputs
        func ptr(_ value: Graph.ValueID, _ ws: Workspace) -> UnsafeMutablePointer<Float> {
            ws.arena + memory.offset(of: value) * ws.capacity
        }
        func fullShape(_ value: Graph.ValueID, rows: Int) -> [Int] { [rows] + graph.values[value].shape }

        switch node.operation {
        case .conv(let geometry, let weights, let bias, let activation):
            let kernel = Conv2DKernel(geometry: geometry, weights: weights, bias: bias, activation: activation)
            let hasResidual = inputIDs.count > 1
            return Step(run: { ws, rows in
                kernel.run(input: ptr(inputIDs[0], ws), residual: hasResidual ? UnsafePointer(ptr(inputIDs[1], ws)) : nil,
                           output: ptr(outputID, ws), batch: rows, scratch: ws.scratch, pool: pool)
            }, scratchFloatsPerThread: kernel.scratchFloatsPerThread)

        case .dense(let inFeatures, let outFeatures, let weights, let bias, let activation):
            // Applied to the last axis: leading per-sample dims fold into the rows.
            let rowsPerSample = outputWidth / outFeatures
            let kernel = DenseKernel(weights: weights, k: inFeatures, n: outFeatures, transposed: true,
                                     bias: bias.map { .row($0) } ?? .none, activation: activation)
            return Step(run: { ws, rows in
                kernel.run(input: ptr(inputIDs[0], ws), output: ptr(outputID, ws), rows: rows * rowsPerSample, pool: pool)
            }, scratchFloatsPerThread: 0)

        case .channelAffine(let scale, let shift, let activation):
            let channels = scale.count
            let plane = outputWidth / max(channels, 1)
            return Step(run: { ws, rows in
                channelAffine(input: ptr(inputIDs[0], ws), output: ptr(outputID, ws), scale: scale, shift: shift,
                              batch: rows, channels: channels, plane: plane, activation: activation, pool: pool)
            }, scratchFloatsPerThread: 0)

        case .binary(let kind, let lhs, let rhs, let activation):
            let outShape = graph.values[outputID].shape
            let operation: ElementwiseOperation = {
                switch kind {
                case .add: return .add
                case .sub: return .sub
                case .mul: return .mul
                case .div: return .div
                }
            }()
            let lhsConstant = ConstantBuffer(lhs), rhsConstant = ConstantBuffer(rhs)
            func operandShape(_ operand: Graph.Operand, rows: Int) -> [Int] {
                switch operand {
                case .value(let id): return fullShape(id, rows: rows)
                case .constant(let c): return [1] + c.shape
                }
            }
            return Step(run: { ws, rows in
                let a = lhsConstant?.pointer ?? UnsafePointer(ptr(lhs.valueID!, ws))
                let b = rhsConstant?.pointer ?? UnsafePointer(ptr(rhs.valueID!, ws))
                elementwiseBinary(operation, a, shape: operandShape(lhs, rows: rows), b, shape: operandShape(rhs, rows: rows),
                                  output: ptr(outputID, ws), shape: [rows] + outShape, activation: activation, pool: pool)
            }, scratchFloatsPerThread: 0)

        case .activation(let activation):
            return Step(run: { ws, rows in
                let (x, y) = (ptr(inputIDs[0], ws), ptr(outputID, ws))
                y.update(from: x, count: rows * outputWidth)
                applyActivation(activation, y, count: rows * outputWidth)
            }, scratchFloatsPerThread: 0)

        case .maxPool(let g), .averagePool(let g):
            let isMax: Bool = { if case .maxPool = node.operation { return true } else { return false } }()
            let geometry = PoolGeometry(g)
            return Step(run: { ws, rows in
                if isMax {
                    maxPool2D(input: ptr(inputIDs[0], ws), output: ptr(outputID, ws), batch: rows, geometry: geometry, pool: pool)
                } else {
                    averagePool2D(input: ptr(inputIDs[0], ws), output: ptr(outputID, ws), batch: rows, geometry: geometry, pool: pool)
                }
            }, scratchFloatsPerThread: 0)

        case .globalAveragePool:
            let channels = graph.values[inputIDs[0]].shape[0]
            let plane = graph.values[inputIDs[0]].elementsPerSample / max(channels, 1)
            return Step(run: { ws, rows in
                globalAveragePool(input: ptr(inputIDs[0], ws), output: ptr(outputID, ws), batch: rows, channels: channels, plane: plane, pool: pool)
            }, scratchFloatsPerThread: 0)

        case .softmax(let length):
            return Step(run: { ws, rows in
                softmaxRows(input: ptr(inputIDs[0], ws), output: ptr(outputID, ws), rows: rows * outputWidth / length, length: length)
            }, scratchFloatsPerThread: 0)

        case .transpose(let permutation):
            return Step(run: { ws, rows in
                transpose(input: ptr(inputIDs[0], ws), shape: fullShape(inputIDs[0], rows: rows), permutation: permutation, output: ptr(outputID, ws))
            }, scratchFloatsPerThread: 0)

        case .concat(let axis):
            return Step(run: { ws, rows in
                concat(inputs: inputIDs.map { UnsafePointer(ptr($0, ws)) }, shapes: inputIDs.map { fullShape($0, rows: rows) },
                       axis: axis, output: ptr(outputID, ws))
            }, scratchFloatsPerThread: 0)

        case .pad(let pads, let value):
            return Step(run: { ws, rows in
                padConstant(input: ptr(inputIDs[0], ws), shape: fullShape(inputIDs[0], rows: rows), pads: pads, value: value, output: ptr(outputID, ws))
            }, scratchFloatsPerThread: 0)

        case .matmul:
            return Step(run: { ws, rows in
                batchedMatMul(ptr(inputIDs[0], ws), shape: fullShape(inputIDs[0], rows: rows), ptr(inputIDs[1], ws),
                              shape: fullShape(inputIDs[1], rows: rows), output: ptr(outputID, ws), pool: pool)
            }, scratchFloatsPerThread: 0)

        case .alias:
            return Step(run: { _, _ in }, scratchFloatsPerThread: 0)
        }
    }
}

/// A constant operand kept at a stable address for the plan's lifetime.
private final class ConstantBuffer {
    let pointer: UnsafePointer<Float>
    private let storage: UnsafeMutablePointer<Float>

    init?(_ operand: Graph.Operand) {
        guard case .constant(let constant) = operand else { return nil }
        storage = .allocate(capacity: max(constant.values.count, 1))
        storage.initialize(from: constant.values, count: constant.values.count)
        pointer = UnsafePointer(storage)
    }

    deinit { storage.deallocate() }
}

extension Graph.Operand {
    var valueID: Graph.ValueID? {
        if case .value(let id) = self { return id }
        return nil
    }
}
