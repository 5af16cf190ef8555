import Foundation

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
        // The kernels keep their own packed copies of the weights; the graph the plan keeps
        // (for shapes, names and FLOPs) need not hold a second one.
        self.graph = graph.withoutWeights()
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

    /// Runs every node once on `rows` rows and returns each node's wall time in seconds.
    func profile(rows: Int, in workspace: Workspace) -> [Double] {
        steps.map { step in
            let start = DispatchTime.now().uptimeNanoseconds
            step.run(workspace, rows)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
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
            // Shapes are planned per sample; a value operand advances by its per-sample size
            // for each row, a constant stays put.
            let operation: BinaryOp = {
                switch kind {
                case .add: return .add
                case .sub: return .sub
                case .mul: return .mul
                case .div: return .div
                }
            }()
            func operandShape(_ operand: Graph.Operand) -> [Int] {
                switch operand {
                case .value(let id): return graph.values[id].shape
                case .constant(let c): return c.shape
                }
            }
            let kernel = BroadcastBinary(operation, aShape: operandShape(lhs), bShape: operandShape(rhs), activation: activation)
            let lhsOperand = StepOperand(lhs, graph: graph), rhsOperand = StepOperand(rhs, graph: graph)
            return Step(run: { ws, rows in
                let (a, b, y) = (lhsOperand.pointer(ws, memory), rhsOperand.pointer(ws, memory), ptr(outputID, ws))
                for row in 0..<rows {
                    kernel.run(a: a + row * lhsOperand.stride, b: b + row * rhsOperand.stride, output: y + row * outputWidth, pool: pool)
                }
            }, scratchFloatsPerThread: 0)

        case .activation(let activation):
            return Step(run: { ws, rows in
                let (x, y) = (ptr(inputIDs[0], ws), ptr(outputID, ws))
                y.update(from: x, count: rows * outputWidth)
                applyActivation(activation, y, count: rows * outputWidth)
            }, scratchFloatsPerThread: 0)

        case .maxPool(let g), .averagePool(let g):
            let geometry = Pool2DGeometry(
                channels: g.channels, inHeight: g.inHeight, inWidth: g.inWidth, outHeight: g.outHeight, outWidth: g.outWidth,
                kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth, strideH: g.strideH, strideW: g.strideW,
                padTop: g.padTop, padLeft: g.padLeft, padBottom: g.padBottom, padRight: g.padRight,
                dilationH: g.dilationH, dilationW: g.dilationW)
            if case .maxPool = node.operation {
                return Step(run: { ws, rows in
                    maxPool2D(geometry, input: ptr(inputIDs[0], ws), output: ptr(outputID, ws), batch: rows, pool: pool)
                }, scratchFloatsPerThread: 0)
            }
            return Step(run: { ws, rows in
                averagePool2D(geometry, countIncludePad: g.countIncludePad, input: ptr(inputIDs[0], ws), output: ptr(outputID, ws),
                              batch: rows, pool: pool)
            }, scratchFloatsPerThread: 0)

        case .globalAveragePool:
            let channels = graph.values[inputIDs[0]].shape[0]
            let plane = graph.values[inputIDs[0]].elementsPerSample / max(channels, 1)
            return Step(run: { ws, rows in
                globalAveragePool(input: ptr(inputIDs[0], ws), output: ptr(outputID, ws), planes: rows * channels, planeSize: plane, pool: pool)
            }, scratchFloatsPerThread: 0)

        case .softmax(let length):
            return Step(run: { ws, rows in
                softmax(input: ptr(inputIDs[0], ws), output: ptr(outputID, ws), rows: rows * outputWidth / length, n: length, pool: pool)
            }, scratchFloatsPerThread: 0)

        case .transpose(let permutation):
            // The batch axis stays first (checked at import): transpose each sample.
            let kernel = Transpose(shape: graph.values[inputIDs[0]].shape, perm: permutation.dropFirst().map { $0 - 1 })
            let inputWidth = graph.values[inputIDs[0]].elementsPerSample
            return Step(run: { ws, rows in
                let (x, y) = (ptr(inputIDs[0], ws), ptr(outputID, ws))
                for row in 0..<rows { kernel.run(input: x + row * inputWidth, output: y + row * outputWidth, pool: pool) }
            }, scratchFloatsPerThread: 0)

        case .concat(let axis):
            // Along a non-batch axis: the batch is one more outer dimension.
            let kernel = Concat(shapes: inputIDs.map { [1] + graph.values[$0].shape }, axis: axis)
            let widths = inputIDs.map { graph.values[$0].elementsPerSample }
            return Step(run: { ws, rows in
                let inputs = inputIDs.map { UnsafePointer(ptr($0, ws)) }
                let y = ptr(outputID, ws)
                for row in 0..<rows {
                    kernel.run(inputs: zip(inputs, widths).map { $0 + row * $1 }, output: y + row * outputWidth, pool: pool)
                }
            }, scratchFloatsPerThread: 0)

        case .pad(let pads, let value):
            // Pads of the batch axis are 0 (checked at import); the kernel pads 4-D tensors.
            let shape = [1] + graph.values[inputIDs[0]].shape
            guard shape.count == 4 else {
                throw SelfXitError.unsupportedOperator(op: node.opType, node: node.name, detail: "padding is supported for 4-D tensors")
            }
            let kernel = ConstantPad4D(shape: shape, pads: pads, value: value)
            let inputWidth = graph.values[inputIDs[0]].elementsPerSample
            return Step(run: { ws, rows in
                let (x, y) = (ptr(inputIDs[0], ws), ptr(outputID, ws))
                for row in 0..<rows { kernel.run(input: x + row * inputWidth, output: y + row * outputWidth, pool: pool) }
            }, scratchFloatsPerThread: 0)

        case .matmul:
            let kernel = BatchedMatMul(aShape: graph.values[inputIDs[0]].shape, bShape: graph.values[inputIDs[1]].shape)
            let (aWidth, bWidth) = (graph.values[inputIDs[0]].elementsPerSample, graph.values[inputIDs[1]].elementsPerSample)
            return Step(run: { ws, rows in
                let (a, b, y) = (ptr(inputIDs[0], ws), ptr(inputIDs[1], ws), ptr(outputID, ws))
                for row in 0..<rows {
                    kernel.run(a: a + row * aWidth, b: b + row * bWidth, output: y + row * outputWidth, pool: pool)
                }
            }, scratchFloatsPerThread: 0)

        case .alias:
            return Step(run: { _, _ in }, scratchFloatsPerThread: 0)
        }
    }
}

/// An elementwise operand resolved for execution: a value in the arena (advancing by its
/// per-sample size per row) or a constant at a stable address (not advancing).
private final class StepOperand {
    private let value: Graph.ValueID?
    private let constant: UnsafeMutablePointer<Float>?
    let stride: Int

    init(_ operand: Graph.Operand, graph: Graph) {
        switch operand {
        case .value(let id):
            value = id
            constant = nil
            stride = graph.values[id].elementsPerSample
        case .constant(let c):
            value = nil
            let storage = UnsafeMutablePointer<Float>.allocate(capacity: max(c.values.count, 1))
            storage.initialize(from: c.values, count: c.values.count)
            constant = storage
            stride = 0
        }
    }

    deinit { constant?.deallocate() }

    func pointer(_ workspace: Workspace, _ memory: MemoryPlan) -> UnsafePointer<Float> {
        if let constant { return UnsafePointer(constant) }
        return UnsafePointer(workspace.arena + memory.offset(of: value ?? 0) * workspace.capacity)
    }
}
