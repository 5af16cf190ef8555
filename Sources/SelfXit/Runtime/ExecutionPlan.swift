import FoundationEssentials
import Glibc

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
    /// The largest scratch any step needs on one thread.
    private let scratchFloatsPerThread: Int
    /// Runs each thread's share of a sample-parallel pass inline.
    private let serialPool = ThreadPool.serial()
    /// Samples a thread takes through a sample-parallel stretch at once (its workspace's rows).
    let samplesPerThreadRun: Int
    /// Whether one thread takes a batch of two or more a sample at a time (`run`).
    let oneThreadSampleWise: Bool
    /// A sample's widest activation (floats) from which one thread takes a batch a sample at a
    /// time: 256 KB, so that 8 samples of it outgrow a 2 MB L2. The 224×224 models (widest
    /// 0.4–0.8 M floats) ran batch 8 at 0.91–0.99 of the node-by-node time that way; models of
    /// small images lost more to the per-sample calls than they won in cache (Fashion-MNIST
    /// ResNet-18 w16, 12.5 K floats: 1.05–1.08 at batches 2, 8 and 64; ResNet-18 w64 on 28×28,
    /// 50 K: 1.01 at batch 32; Intel Xeon EMR, BENCHMARKS §7.27).
    static let oneThreadSampleWiseFloats = 1 << 16

    /// A compiled node: runs on the batch rows, scratch and threads of a `StepContext`.
    struct Step {
        let run: (StepContext) -> Void
        let scratchFloatsPerThread: Int
        /// Whether the step runs faster once on all rows than once per row, because its weights
        /// outweigh its work per row (a classifier's dense layer): run per sample, it would stream
        /// its weights from memory once a sample.
        var prefersWholeBatch = false
    }

    /// `oneThreadSampleWiseFrom`: `oneThreadSampleWiseFloats` but in tests.
    init(graph: Graph, pool: ThreadPool, oneThreadSampleWiseFrom sampleWiseFloats: Int = oneThreadSampleWiseFloats) throws {
        // The kernels keep their own packed copies of the weights; the graph the plan keeps
        // (for shapes, names and FLOPs) need not hold a second one.
        self.graph = graph.withoutWeights()
        self.pool = pool
        let memory = MemoryPlan(graph: graph)
        self.memory = memory
        let steps = try graph.nodes.map { try Self.compile($0, graph: graph, memory: memory) }
        self.steps = steps
        scratchFloatsPerThread = steps.map(\.scratchFloatsPerThread).max() ?? 0
        scratchFloats = scratchFloatsPerThread * pool.threadCount
        samplesPerThreadRun = Self.samplesPerThreadRun(graph: graph, floatsPerSample: memory.floatsPerSample)
        oneThreadSampleWise = (graph.nodes.map { graph.values[$0.output].elementsPerSample }.max() ?? 0) >= sampleWiseFloats
    }

    /// Two samples at a time per thread when the weights outweigh a sample's activations 32 times
    /// or more (ResNet-18 w64 on 28×28: 11 M weights, ~0.2 M floats of activations): one sample at
    /// a time, each thread streamed all 45 MB of weights — more than the L3 — once a sample;
    /// two at a time halve that traffic while a pair's activations still fit in L2. Measured
    /// at batch 32, 2 threads, Zen 4: 146–148 ms → 141 ms. Models with large activations
    /// (ResNet-50, DenseNet-121 and MobileNetV2 at 224², ratios 1–10) ran 1–5 % slower with
    /// two, so they keep one (the cache locality sample-parallel runs are for).
    private static func samplesPerThreadRun(graph: Graph, floatsPerSample: Int) -> Int {
        var weights = 0
        for node in graph.nodes {
            switch node.operation {
            case .conv(_, let w, _, _): weights += w.count
            case .dense(_, _, let w, _, _): weights += w.count
            default: break
            }
        }
        return floatsPerSample > 0 && weights / floatsPerSample >= 32 ? 2 : 1
    }

    /// Throws `outOfMemory` when the workspace for `capacity` rows cannot be allocated.
    func makeWorkspace(capacity: Int) throws -> Workspace {
        try Workspace(capacity: capacity, floatsPerSample: memory.floatsPerSample, scratchFloats: scratchFloats)
    }

    /// Pointer to the first row of `value` in `workspace`.
    @inline(__always)
    func pointer(_ value: Graph.ValueID, in workspace: Workspace) -> UnsafeMutablePointer<Float> {
        workspace.arena + memory.offset(of: value) * workspace.capacity
    }

    /// Runs nodes `range` (positions in `graph.nodes`) on the first `rows` rows.
    /// Precondition: 1 ≤ rows ≤ workspace.capacity, and the inputs of the range are in place.
    ///
    /// With at least as many rows as threads, the threads run the range sample-parallel: each
    /// takes one sample at a time through every node on its own, single-threaded, in a private
    /// one-sample workspace (the range's inputs copied in, its outputs copied back), so no node
    /// waits for the others and each core works in its own cache. Splitting every node of a batch
    /// across the cores instead streams each layer's batch through the shared cache (ResNet-50 at
    /// batch 8: 15–20 % slower per image than at batch 1). One thread takes a batch of two or more
    /// the same way, a sample at a time, where a sample's activations are large
    /// (`oneThreadSampleWise`): node by node, each layer's input was written a batch earlier and
    /// has left L2 (ResNet-50 at batch 8, one thread, Intel Xeon EMR: layer1's 1×1 layers 11–15 %
    /// and layer3's 1×1 1024→256 17–22 % slower per image than at batch 1; BENCHMARKS §7.27).
    /// Rows that do not go round (`rows % threads`) then run node by node on all threads.
    /// A step that prefers the whole batch (`Step.prefersWholeBatch`) runs on all rows at once
    /// between sample-parallel stretches.
    func run(_ range: Range<Int>, rows: Int, in workspace: Workspace) {
        let threads = pool.threadCount
        let parallelRows = rows > 1 && (threads > 1 || oneThreadSampleWise) ? rows / threads * threads : 0
        let wholeBatch = StepContext(workspace: workspace, firstRow: 0, rows: rows, scratch: workspace.scratch, pool: pool)
        guard parallelRows > 0 else {
            for index in range { steps[index].run(wholeBatch) }
            return
        }
        var start = range.lowerBound
        while start < range.upperBound {
            let end = range[start...].first { steps[$0].prefersWholeBatch } ?? range.upperBound
            if start < end, !runSampleParallel(start..<end, parallelRows: parallelRows, rows: rows, in: workspace) {
                // Its per-thread buffers could not be allocated: the same nodes node by node.
                for index in start..<end { steps[index].run(wholeBatch) }
            }
            if end < range.upperBound {
                steps[end].run(wholeBatch)
            }
            start = end + 1
        }
    }

    /// `run` on the calling thread only (node by node, no pool threads): a background exit build
    /// with one thread uses it so inference keeps the other cores (issue 16).
    func runSerial(_ range: Range<Int>, rows: Int, in workspace: Workspace) {
        let context = StepContext(workspace: workspace, firstRow: 0, rows: rows, scratch: workspace.scratch, pool: serialPool)
        for index in range { steps[index].run(context) }
    }

    /// Whether node `index` runs on the whole batch between sample-parallel stretches.
    func prefersWholeBatch(_ index: Int) -> Bool { steps[index].prefersWholeBatch }

    /// `run` with the first `parallelRows` rows (a multiple of the thread count) sample-parallel.
    /// Returns false, having run nothing, when the per-thread workspaces or the staging buffer
    /// cannot be allocated (the caller then runs the range node by node, which needs neither).
    private func runSampleParallel(_ range: Range<Int>, parallelRows: Int, rows: Int, in workspace: Workspace) -> Bool {
        let threads = pool.threadCount
        let (liveIn, liveOut) = boundary(of: range)
        guard let own = workspace.threadWorkspaces(threads, make: {
            try Workspace(capacity: samplesPerThreadRun, floatsPerSample: memory.floatsPerSample, scratchFloats: scratchFloatsPerThread)
        }) else { return false }
        // Samples per item: `samplesPerThreadRun` where each thread's share divides into such
        // groups (else the last group would leave one thread idle), never more than a workspace holds.
        let grouped = min(samplesPerThreadRun, own.map(\.capacity).min() ?? 1)
        let per = (parallelRows / threads) % grouped == 0 ? grouped : 1
        // The range's outputs wait in a staging buffer until every sample is done: written
        // straight back they could land on a buffer the plan reuses, such as the input rows
        // of samples other threads have not read yet.
        let outWidth = liveOut.map(\.1).reduce(0, +)
        guard let staging = workspace.staging(parallelRows * outWidth) else { return false }
        let capacity = workspace.capacity
        pool.parallelForItems((parallelRows + per - 1) / per) { slot, item in
            let sample = own[slot]
            let cap = sample.capacity
            let row0 = item * per, n = min(per, parallelRows - row0)
            for (offset, width) in liveIn {
                (sample.arena + offset * cap).update(from: workspace.arena + offset * capacity + row0 * width, count: n * width)
            }
            let context = StepContext(workspace: sample, firstRow: 0, rows: n, scratch: sample.scratch, pool: serialPool)
            for index in range { steps[index].run(context) }
            for r in 0..<n {
                var target = staging + (row0 + r) * outWidth
                for (offset, width) in liveOut {
                    target.update(from: sample.arena + offset * cap + r * width, count: width)
                    target += width
                }
            }
        }
        // Rows that do not go round run node by node on all threads while the main workspace
        // still holds only the range's inputs, then the staged outputs go back.
        if parallelRows < rows {
            let context = StepContext(workspace: workspace, firstRow: parallelRows, rows: rows - parallelRows,
                                      scratch: workspace.scratch, pool: pool)
            for index in range { steps[index].run(context) }
        }
        pool.parallelFor(threads) { t in
            for row in (parallelRows * t / threads)..<(parallelRows * (t + 1) / threads) {
                var source = UnsafePointer(staging + row * outWidth)
                for (offset, width) in liveOut {
                    (workspace.arena + offset * capacity + row * width).update(from: source, count: width)
                    source += width
                }
            }
        }
        return true
    }

    /// The buffers (per-sample offset and width) a run of `range` reads from before it and
    /// leaves for after it: inputs of its nodes written earlier, and values it writes that are
    /// read later (or are graph outputs).
    private func boundary(of range: Range<Int>) -> (in: [(Int, Int)], out: [(Int, Int)]) {
        var seenIn = Set<Graph.ValueID>(), seenOut = Set<Graph.ValueID>()
        var liveIn: [(Int, Int)] = [], liveOut: [(Int, Int)] = []
        for index in range {
            let node = graph.nodes[index]
            for input in node.inputs where memory.producer[input] < range.lowerBound {
                let root = memory.root[input]
                if seenIn.insert(root).inserted { liveIn.append((memory.offset(of: root), graph.values[root].elementsPerSample)) }
            }
            if memory.lastRead[node.output] >= range.upperBound {
                let root = memory.root[node.output]
                if seenOut.insert(root).inserted { liveOut.append((memory.offset(of: root), graph.values[root].elementsPerSample)) }
            }
        }
        return (liveIn, liveOut)
    }

    /// Runs every node once on `rows` rows and returns each node's wall time in seconds.
    func profile(rows: Int, in workspace: Workspace) -> [Double] {
        steps.map { step in
            let start = MonotonicClock.nanoseconds()
            step.run(StepContext(workspace: workspace, firstRow: 0, rows: rows, scratch: workspace.scratch, pool: pool))
            return Double(MonotonicClock.nanoseconds() - start) / 1e9
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

    private static func compile(_ node: Graph.Node, graph: Graph, memory: MemoryPlan) throws -> Step {
        let outputID = node.output
        let outputWidth = graph.values[outputID].elementsPerSample
        let inputIDs = node.inputs
        func ptr(_ value: Graph.ValueID, _ ctx: StepContext) -> UnsafeMutablePointer<Float> {
            ctx.workspace.arena + memory.offset(of: value) * ctx.workspace.capacity + ctx.firstRow * graph.values[value].elementsPerSample
        }

        // The kernels take 32-bit sizes (BLAS, the C micro-kernels): a convolution or dense layer
        // whose weights or per-sample tensors outgrow them is refused here rather than trapping
        // on a conversion during a call.
        func refuseOver32Bit(_ weightCount: Int) throws {
            let widths = [outputWidth] + inputIDs.map { graph.values[$0].elementsPerSample }
            guard weightCount < Int(Int32.max), widths.allSatisfy({ $0 < Int(Int32.max) }) else {
                throw SelfXitError.unsupportedOperator(op: node.opType, node: node.name,
                                                       detail: "weights or per-sample tensors of 2^31 elements or more")
            }
        }

        // The kernels' preconditions, checked here so that no model file can reach them: a
        // failed one would trap (a host crash) or, at run time, read or write out of bounds.
        // The importer already guarantees all of this; these checks keep a future importer bug
        // a thrown error instead of memory corruption.
        func require(_ condition: Bool, _ detail: @autoclosure () -> String) throws {
            guard condition else {
                throw SelfXitError.invalidModel("node '\(node.name)' (\(node.opType)): \(detail())")
            }
        }
        func shape(_ value: Graph.ValueID) -> [Int] { graph.values[value].shape }
        try require(inputIDs.allSatisfy { graph.values.indices.contains($0) } && graph.values.indices.contains(outputID),
                    "refers to a value that does not exist")
        try require(outputWidth > 0 && inputIDs.allSatisfy { graph.values[$0].elementsPerSample > 0 }, "has an empty tensor")

        switch node.operation {
        case .conv(let geometry, let weights, let bias, let activation):
            let g = geometry
            try require(inputIDs.count == 1 || inputIDs.count == 2, "convolution with \(inputIDs.count) inputs")
            try require(g.groups >= 1 && g.inChannels > 0 && g.outChannels > 0 && g.inChannels % g.groups == 0 && g.outChannels % g.groups == 0,
                        "channels \(g.inChannels) → \(g.outChannels) do not divide into \(g.groups) groups")
            try require([g.kernelHeight, g.kernelWidth, g.strideH, g.strideW, g.dilationH, g.dilationW].allSatisfy { $0 > 0 }
                        && g.padTop >= 0 && g.padLeft >= 0, "bad convolution window")
            try require(shape(inputIDs[0]) == [g.inChannels, g.inHeight, g.inWidth] && outputWidth == g.outChannels * g.outPlane,
                        "convolution geometry does not match its tensors")
            try require(inputIDs.count == 1 || graph.values[inputIDs[1]].elementsPerSample == outputWidth, "residual of the wrong size")
            let perGroup = [g.outChannels, g.inChannels / g.groups, g.kernelHeight, g.kernelWidth]
            try require(checkedElementCount(perGroup) == weights.count, "\(weights.count) weights for \(perGroup)")
            try require(bias == nil || bias?.count == g.outChannels, "bias of the wrong size")
            try refuseOver32Bit(weights.count)
            let kernel = Conv2DKernel(geometry: geometry, weights: weights, bias: bias, activation: activation)
            // Pads and dilations (up to 2^16 each) can make the padded copy or the im2col matrix
            // of one sample enormous; refuse them here rather than allocate gigabytes at the first call.
            guard kernel.scratchFloatsPerThread <= ImportLimits.maxScratchFloats else {
                throw SelfXitError.unsupportedOperator(op: node.opType, node: node.name,
                                                       detail: "the convolution needs \(kernel.scratchFloatsPerThread) floats of scratch per thread (padding or dilation too large)")
            }
            let hasResidual = inputIDs.count > 1
            // A convolution whose weights outweigh its input and output per sample 8 times or
            // more (all of ResNet-50's layer4 but its first 1×1 and its downsample, 4–9.4 MB of
            // weights for 25–125 K floats a sample; ResNet-18 w64's layer4 on 28×28) runs once on the
            // whole batch, as the dense layer below, where the implicit GEMM takes the weights tile
            // by tile over the samples (`DirectConvPlan.run`): sample-parallel, each thread
            // streamed its weights from L3 or memory once per sample. ResNet-50, 2 threads, Intel
            // Xeon EMR: batch 2 0.93, batch 8 0.95–0.99 of the time with only the three 3×3 layers
            // on the whole batch (64× their output, the rule before); with layer3's 3×3 too
            // (5.9×), 1.00 (BENCHMARKS §7.28). Only weights of 4 MB or more (beyond a core's L2):
            // the squeeze-and-excite 1×1 convolutions on 1×1 planes (EfficientNet, MobileNetV3,
            // RegNetY) weigh as much against their activations, but they fit in L2, and running
            // them on the whole batch cut every block into batch-wide steps: EfficientNet-B0 b8
            // 51 → 62 ms (Zen 4, 2 threads).
            let sampleFloats = outputWidth + graph.values[inputIDs[0]].elementsPerSample
            let heavyWeights = weights.count >= 1 << 20 && weights.count >= 8 * sampleFloats
            return Step(run: { ctx in
                kernel.run(input: ptr(inputIDs[0], ctx), residual: hasResidual ? UnsafePointer(ptr(inputIDs[1], ctx)) : nil,
                           output: ptr(outputID, ctx), batch: ctx.rows, scratch: ctx.scratch, pool: ctx.pool)
            }, scratchFloatsPerThread: kernel.scratchFloatsPerThread, prefersWholeBatch: heavyWeights)

        case .dense(let inFeatures, let outFeatures, let weights, let bias, let activation):
            try require(inFeatures > 0 && outFeatures > 0 && checkedMultiply(inFeatures, outFeatures) == weights.count,
                        "\(weights.count) weights for \(inFeatures) × \(outFeatures)")
            try require(bias == nil || bias?.count == outFeatures, "bias of the wrong size")
            try require(shape(inputIDs[0]).last == inFeatures && outputWidth % outFeatures == 0
                        && graph.values[inputIDs[0]].elementsPerSample / inFeatures == outputWidth / outFeatures,
                        "dense layer does not match its tensors")
            try refuseOver32Bit(weights.count)
            // Applied to the last axis: leading per-sample dims fold into the rows.
            let rowsPerSample = outputWidth / outFeatures
            let kernel = DenseKernel(weights: weights, k: inFeatures, n: outFeatures, transposed: true,
                                     bias: bias.map { .row($0) } ?? .none, activation: activation)
            // One output row per sample reads every weight once for a multiply-add: over ~1 MB
            // of weights, a sample at a time would stream them from memory once a sample.
            return Step(run: { ctx in
                kernel.run(input: ptr(inputIDs[0], ctx), output: ptr(outputID, ctx), rows: ctx.rows * rowsPerSample, pool: ctx.pool)
            }, scratchFloatsPerThread: 0, prefersWholeBatch: rowsPerSample == 1 && inFeatures * outFeatures >= 1 << 18)

        case .channelAffine(let scale, let shift, let activation):
            // Several inputs: their concatenation along the channels (a Concat fused in, Graph+Fusion).
            let channels = scale.count
            let inputChannels = inputIDs.map { shape($0).first ?? 0 }
            let plane = outputWidth / max(channels, 1)
            try require(channels > 0 && shift.count == channels && !inputIDs.isEmpty
                        && inputChannels.reduce(0, +) == channels && outputWidth % channels == 0
                        && inputIDs.allSatisfy { graph.values[$0].elementsPerSample == (shape($0).first ?? 0) * plane },
                        "per-channel parameters do not match the tensor")
            return Step(run: { ctx in
                let inputs = inputIDs.indices.map { (UnsafePointer(ptr(inputIDs[$0], ctx)), inputChannels[$0]) }
                concatChannelAffine(inputs: inputs, output: ptr(outputID, ctx), scale: scale, shift: shift,
                                    batch: ctx.rows, plane: plane, activation: activation, pool: ctx.pool)
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
            for operand in [lhs, rhs] {
                switch operand {
                case .value(let id): try require(inputIDs.contains(id), "operand is not an input")
                case .constant(let c):
                    // A constant whose values do not fill its shape would be read past its end.
                    try require(checkedElementCount(c.shape) == c.values.count, "constant of shape \(c.shape) holds \(c.values.count) values")
                }
            }
            let (aShape, bShape) = (operandShape(lhs), operandShape(rhs))
            let rank = max(aShape.count, bShape.count)
            let a = [Int](repeating: 1, count: rank - aShape.count) + aShape, b = [Int](repeating: 1, count: rank - bShape.count) + bShape
            try require(rank <= 6 && zip(a, b).allSatisfy { $0 == $1 || $0 == 1 || $1 == 1 }
                        && zip(a, b).map { $0 == 1 ? $1 : $0 } == shape(outputID), "operands \(aShape) and \(bShape) do not broadcast to \(shape(outputID))")
            let kernel = BroadcastBinary(operation, aShape: aShape, bShape: bShape, activation: activation)
            let lhsOperand = StepOperand(lhs, graph: graph), rhsOperand = StepOperand(rhs, graph: graph)
            return Step(run: { ctx in
                let (a, b, y) = (lhsOperand.pointer(ctx, memory), rhsOperand.pointer(ctx, memory), ptr(outputID, ctx))
                for row in 0..<ctx.rows {
                    kernel.run(a: a + row * lhsOperand.stride, b: b + row * rhsOperand.stride, output: y + row * outputWidth, pool: ctx.pool)
                }
            }, scratchFloatsPerThread: 0)

        case .activation(let activation):
            try require(graph.values[inputIDs[0]].elementsPerSample == outputWidth, "input and output sizes differ")
            return Step(run: { ctx in
                let (x, y) = (ptr(inputIDs[0], ctx), ptr(outputID, ctx))
                y.update(from: x, count: ctx.rows * outputWidth)
                applyActivation(activation, y, count: ctx.rows * outputWidth)
            }, scratchFloatsPerThread: 0)

        case .maxPool(let g), .averagePool(let g):
            try require(shape(inputIDs[0]) == [g.channels, g.inHeight, g.inWidth] && shape(outputID) == [g.channels, g.outHeight, g.outWidth]
                        && [g.kernelHeight, g.kernelWidth, g.strideH, g.strideW, g.dilationH, g.dilationW].allSatisfy { $0 > 0 }
                        && [g.padTop, g.padLeft, g.padBottom, g.padRight].allSatisfy { $0 >= 0 },
                        "pooling geometry does not match its tensors")
            if case .averagePool = node.operation { try require(g.dilationH == 1 && g.dilationW == 1, "dilated average pooling") }
            let geometry = Pool2DGeometry(
                channels: g.channels, inHeight: g.inHeight, inWidth: g.inWidth, outHeight: g.outHeight, outWidth: g.outWidth,
                kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth, strideH: g.strideH, strideW: g.strideW,
                padTop: g.padTop, padLeft: g.padLeft, padBottom: g.padBottom, padRight: g.padRight,
                dilationH: g.dilationH, dilationW: g.dilationW)
            if case .maxPool = node.operation {
                return Step(run: { ctx in
                    maxPool2D(geometry, input: ptr(inputIDs[0], ctx), output: ptr(outputID, ctx), batch: ctx.rows, pool: ctx.pool)
                }, scratchFloatsPerThread: 0)
            }
            return Step(run: { ctx in
                averagePool2D(geometry, countIncludePad: g.countIncludePad, input: ptr(inputIDs[0], ctx), output: ptr(outputID, ctx),
                              batch: ctx.rows, pool: ctx.pool)
            }, scratchFloatsPerThread: 0)

        case .globalAveragePool:
            try require(!shape(inputIDs[0]).isEmpty && outputWidth == shape(inputIDs[0])[0], "global pooling does not match its tensors")
            let channels = graph.values[inputIDs[0]].shape[0]
            let plane = graph.values[inputIDs[0]].elementsPerSample / max(channels, 1)
            return Step(run: { ctx in
                globalAveragePool(input: ptr(inputIDs[0], ctx), output: ptr(outputID, ctx), planes: ctx.rows * channels, planeSize: plane, pool: ctx.pool)
            }, scratchFloatsPerThread: 0)

        case .softmax(let length):
            try require(length > 0 && outputWidth % length == 0, "softmax length \(length) does not divide \(outputWidth)")
            return Step(run: { ctx in
                softmax(input: ptr(inputIDs[0], ctx), output: ptr(outputID, ctx), rows: ctx.rows * outputWidth / length, n: length, pool: ctx.pool)
            }, scratchFloatsPerThread: 0)

        case .transpose(let permutation):
            let rank = shape(inputIDs[0]).count + 1
            try require(rank <= 6 && permutation.count == rank && permutation.first == 0 && Set(permutation) == Set(0..<rank),
                        "bad permutation \(permutation)")
            // The batch axis stays first (checked at import): transpose each sample.
            let kernel = Transpose(shape: graph.values[inputIDs[0]].shape, perm: permutation.dropFirst().map { $0 - 1 })
            let inputWidth = graph.values[inputIDs[0]].elementsPerSample
            return Step(run: { ctx in
                let (x, y) = (ptr(inputIDs[0], ctx), ptr(outputID, ctx))
                for row in 0..<ctx.rows { kernel.run(input: x + row * inputWidth, output: y + row * outputWidth, pool: ctx.pool) }
            }, scratchFloatsPerThread: 0)

        case .concat(let axis):
            // Along a non-batch axis: the batch is one more outer dimension.
            let first = shape(inputIDs.first ?? outputID)
            try require(!inputIDs.isEmpty && axis >= 1 && axis <= first.count
                        && inputIDs.allSatisfy { id in shape(id).count == first.count && shape(id).indices.allSatisfy { $0 == axis - 1 || shape(id)[$0] == first[$0] } },
                        "inputs \(inputIDs.map(shape)) do not concatenate along axis \(axis)")
            let kernel = Concat(shapes: inputIDs.map { [1] + graph.values[$0].shape }, axis: axis)
            let widths = inputIDs.map { graph.values[$0].elementsPerSample }
            return Step(run: { ctx in
                let inputs = inputIDs.map { UnsafePointer(ptr($0, ctx)) }
                let y = ptr(outputID, ctx)
                for row in 0..<ctx.rows {
                    kernel.run(inputs: zip(inputs, widths).map { $0 + row * $1 }, output: y + row * outputWidth, pool: ctx.pool)
                }
            }, scratchFloatsPerThread: 0)

        case .pad(let pads, let value):
            // Pads of the batch axis are 0 (checked at import); the kernel pads 4-D tensors.
            let shape = [1] + graph.values[inputIDs[0]].shape
            guard shape.count == 4 else {
                throw SelfXitError.unsupportedOperator(op: node.opType, node: node.name, detail: "padding is supported for 4-D tensors")
            }
            try require(pads.count == 8 && (0..<4).allSatisfy { shape[$0] + pads[$0] + pads[$0 + 4] > 0 }, "bad pads \(pads)")
            let kernel = ConstantPad4D(shape: shape, pads: pads, value: value)
            let inputWidth = graph.values[inputIDs[0]].elementsPerSample
            return Step(run: { ctx in
                let (x, y) = (ptr(inputIDs[0], ctx), ptr(outputID, ctx))
                for row in 0..<ctx.rows { kernel.run(input: x + row * inputWidth, output: y + row * outputWidth, pool: ctx.pool) }
            }, scratchFloatsPerThread: 0)

        case .matmul:
            let (sa, sb) = (shape(inputIDs[0]), shape(inputIDs[1 < inputIDs.count ? 1 : 0]))
            try require(inputIDs.count == 2 && sa.count >= 2 && sb.count == sa.count && sb[sb.count - 2] == sa[sa.count - 1]
                        && zip(sa.dropLast(2), sb.dropLast(2)).allSatisfy { $0 == $1 || $0 == 1 || $1 == 1 },
                        "cannot multiply \(sa) by \(sb)")
            let kernel = BatchedMatMul(aShape: graph.values[inputIDs[0]].shape, bShape: graph.values[inputIDs[1]].shape)
            let (aWidth, bWidth) = (graph.values[inputIDs[0]].elementsPerSample, graph.values[inputIDs[1]].elementsPerSample)
            return Step(run: { ctx in
                let (a, b, y) = (ptr(inputIDs[0], ctx), ptr(inputIDs[1], ctx), ptr(outputID, ctx))
                for row in 0..<ctx.rows {
                    kernel.run(a: a + row * aWidth, b: b + row * bWidth, output: y + row * outputWidth, pool: ctx.pool)
                }
            }, scratchFloatsPerThread: 0)

        case .alias:
            return Step(run: { _ in }, scratchFloatsPerThread: 0)

        case .stridedCopy(let copy):
            try require(inputIDs.count == 1 && copy.outputCount == outputWidth, "strided copy does not match its output")
            let inputWidth = graph.values[inputIDs[0]].elementsPerSample
            return Step(run: { ctx in
                let (x, y) = (ptr(inputIDs[0], ctx), ptr(outputID, ctx))
                for row in 0..<ctx.rows { copy.run(input: x + row * inputWidth, output: y + row * outputWidth) }
            }, scratchFloatsPerThread: 0)

        case .indexGather(let gather):
            let inputWidth = graph.values[inputIDs[0]].elementsPerSample
            try require(inputIDs.count == 1 && gather.outer * gather.axisLength * gather.inner == inputWidth
                        && gather.outer * gather.indices.count * gather.inner == outputWidth
                        && gather.indices.allSatisfy { $0 >= 0 && $0 < gather.axisLength }, "gather does not match its tensors")
            return Step(run: { ctx in
                let (x, y) = (ptr(inputIDs[0], ctx), ptr(outputID, ctx))
                for row in 0..<ctx.rows { gather.run(input: x + row * inputWidth, output: y + row * outputWidth) }
            }, scratchFloatsPerThread: 0)

        case .reduce(let reduce):
            let inputWidth = graph.values[inputIDs[0]].elementsPerSample
            try require(inputIDs.count == 1 && reduce.shape == shape(inputIDs[0])
                        && reduce.shape.enumerated().filter { !reduce.axes.contains($0.offset) }.map(\.element).reduce(1, *) == outputWidth,
                        "reduction does not match its tensors")
            return Step(run: { ctx in
                let (x, y) = (ptr(inputIDs[0], ctx), ptr(outputID, ctx))
                for row in 0..<ctx.rows { reduce.run(input: x + row * inputWidth, output: y + row * outputWidth) }
            }, scratchFloatsPerThread: 0)

        case .unary(let function):
            try require(inputIDs.count == 1 && graph.values[inputIDs[0]].elementsPerSample == outputWidth, "input and output sizes differ")
            return Step(run: { ctx in
                runUnary(function, input: ptr(inputIDs[0], ctx), output: ptr(outputID, ctx), count: ctx.rows * outputWidth)
            }, scratchFloatsPerThread: 0)

        case .layerNorm(let norm):
            try require(inputIDs.count == 1 && graph.values[inputIDs[0]].elementsPerSample == outputWidth && norm.length > 0
                        && outputWidth % norm.length == 0 && (norm.scale?.count ?? norm.length) == norm.length
                        && (norm.bias?.count ?? norm.length) == norm.length, "layer normalisation does not match its tensor")
            let rowsPerSample = outputWidth / norm.length
            return Step(run: { ctx in
                norm.run(input: ptr(inputIDs[0], ctx), output: ptr(outputID, ctx), rows: ctx.rows * rowsPerSample)
            }, scratchFloatsPerThread: 0)

        case .constantFill(let values):
            try require(inputIDs.isEmpty && values.count == outputWidth, "\(values.count) constant values for \(outputWidth)")
            return Step(run: { ctx in
                let y = ptr(outputID, ctx)
                values.withUnsafeBufferPointer { v in
                    for row in 0..<ctx.rows { (y + row * outputWidth).update(from: v.baseAddress!, count: outputWidth) }
                }
            }, scratchFloatsPerThread: 0)

        case .resize2D(let kernel):
            let input = graph.values[inputIDs[0]].shape
            try require(inputIDs.count == 1 && input.count == 3 && input[1] == kernel.inHeight && input[2] == kernel.inWidth
                        && outputWidth == input[0] * kernel.outHeight * kernel.outWidth, "resize does not match its tensors")
            let planes = input[0]
            return Step(run: { ctx in
                kernel.run(input: ptr(inputIDs[0], ctx), output: ptr(outputID, ctx), planes: ctx.rows * planes, pool: ctx.pool)
            }, scratchFloatsPerThread: 0)
        }
    }
}

/// What a compiled step runs on: batch rows `firstRow..<firstRow + rows` of a workspace, with
/// `scratch` (`pool.threadCount` times the step's per-thread scratch) and `pool`'s threads.
struct StepContext {
    let workspace: Workspace
    let firstRow: Int
    let rows: Int
    let scratch: UnsafeMutablePointer<Float>
    let pool: ThreadPool
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

    func pointer(_ ctx: StepContext, _ memory: MemoryPlan) -> UnsafePointer<Float> {
        if let constant { return UnsafePointer(constant) }
        return UnsafePointer(ctx.workspace.arena + memory.offset(of: value ?? 0) * ctx.workspace.capacity + ctx.firstRow * stride)
    }
}
