/// Lowering an ONNX model to the engine's graph IR.
///
/// One pass over the nodes in file order does three jobs at once: it folds every node whose
/// inputs are known at load time (`ConstantFolder`), infers the per-sample shape of every
/// activation, and lowers the rest to `Graph.Operation`s. What cannot run is refused here,
/// naming the operator and the node, so a model never fails half-way through inference.
extension Graph {
    /// Options that shape the import.
    struct ImportOptions {
        /// Per-sample input shape, for models whose file leaves spatial dimensions symbolic.
        var inputShape: [Int]? = nil
    }

    init(model: ONNXModel, options: ImportOptions = ImportOptions()) throws {
        var importer = try GraphImporter(model: model, options: options)
        self = try importer.run()
    }
}

struct GraphImporter {
    enum Symbol {
        case constant(ConstantTensor)
        case activation(Graph.ValueID)
    }

    let model: ONNXModel
    let opset: Int
    var graph = Graph()
    var symbols: [String: Symbol] = [:]
    /// The batch dimension written in the file when it is a fixed number (e.g. an export with
    /// batch 1): a Reshape to that number in dimension 0 then means "the batch".
    var fixedBatch: Int?
    /// What constant folding may still compute in this import.
    var foldBudget = ConstantFolder.Budget()
    /// Logical views of tensors whose batch axis the model moved (Graph+ONNXImportBatchLayout.swift).
    var layouts: [Graph.ValueID: BatchLayout] = [:]
    /// One image a call, no batch axis in the file (`[3, H, W]`, torchvision's detectors): the
    /// batch is 1, shapes fold to numbers, and what the planner cannot run goes to the tail
    /// (Graph+ONNXImportTail.swift).
    var unbatchedModel = false
    /// Activations whose ONNX view has no leading batch axis (ONNX shape = per-sample shape).
    var unbatched: Set<Graph.ValueID> = []
    /// The run-time-shaped tail being built, and the tail register of each tensor it computes or reads.
    var tail: TailProgram?
    var tailRegisters: [String: Int] = [:]

    init(model: ONNXModel, options: Graph.ImportOptions) throws {
        self.model = model
        guard model.graph.nodes.count <= ImportLimits.maxNodes else {
            throw SelfXitError.invalidModel("the graph has \(model.graph.nodes.count) nodes; at most \(ImportLimits.maxNodes) are supported")
        }
        let version = model.opsetImports[""] ?? model.opsetImports["ai.onnx"] ?? 0
        guard (7...23).contains(version) else {
            throw SelfXitError.invalidModel("ONNX opset \(version) is not supported (supported: 7–23)")
        }
        opset = Int(version)
        for tensor in model.graph.initializers { symbols[tensor.name] = .constant(try ConstantTensor(tensor)) }
        let runtimeInputs = model.graph.inputs.filter { symbols[$0.name] == nil }
        guard runtimeInputs.count == 1, let input = runtimeInputs.first else {
            throw SelfXitError.invalidModel("the graph must have exactly one runtime input, found \(runtimeInputs.map(\.name))")
        }
        if let type = input.elementType, type != .float {
            throw SelfXitError.invalidModel("input '\(input.name)' must be float32, found \(type)")
        }
        guard let dims = input.shape, dims.count >= 2 else {
            throw SelfXitError.invalidModel("input '\(input.name)' needs a shape of rank ≥ 2 (batch first)")
        }
        if case .value(let batch) = dims[0] { fixedBatch = batch }
        unbatchedModel = Self.isUnbatchedImage(dims)
        if unbatchedModel { fixedBatch = 1 }
        let sampleDims = unbatchedModel ? Array(dims) : Array(dims.dropFirst())
        var sampleShape: [Int] = []
        for (axis, dim) in sampleDims.enumerated() {
            if let override = options.inputShape {
                guard override.count == sampleDims.count else {
                    throw SelfXitError.shapeMismatch("input shape \(override) has rank \(override.count), the model's sample rank is \(sampleDims.count)")
                }
                if case .value(let fixed) = dim, fixed != override[axis] {
                    throw SelfXitError.shapeMismatch("input shape \(override) contradicts the model's dimension \(unbatchedModel ? axis : axis + 1) = \(fixed)")
                }
                sampleShape.append(override[axis])
            } else if case .value(let fixed) = dim {
                sampleShape.append(fixed)
            } else {
                throw SelfXitError.invalidArgument("input '\(input.name)' dimension \(unbatchedModel ? axis : axis + 1) is symbolic: give the input shape when loading")
            }
        }
        guard sampleShape.count <= 5, sampleShape.allSatisfy({ $0 > 0 && $0 < 1 << 20 }),
              sampleShape.reduce(1.0, { $0 * Double($1) }) < Double(1 << 28) else {
            throw SelfXitError.shapeMismatch("input shape \(sampleShape) is empty or too large")
        }
        graph.input = graph.addValue(input.name, shape: sampleShape)
        symbols[input.name] = .activation(graph.input)
        if unbatchedModel {
            unbatched.insert(graph.input)
            graph.unbatchedInput = true
        }
    }

    mutating func run() throws -> Graph {
        for node in model.graph.nodes { try importNode(node) }
        if unbatchedModel { return try finishWithTail() }
        for output in model.graph.outputs {
            guard case .activation(let id)? = symbols[output.name] else {
                throw SelfXitError.invalidModel("graph output '\(output.name)' is not computed from the input")
            }
            if let l = layouts[id] {
                throw SelfXitError.unsupportedOperator(op: "Output", node: output.name,
                                                       detail: "graph output \(l.dims) has its batch in axis \(l.axis), not first")
            }
            graph.outputs.append(id)
        }
        guard !graph.outputs.isEmpty else { throw SelfXitError.invalidModel("the graph has no outputs") }
        return graph
    }

    // MARK: - Node dispatch

    mutating func importNode(_ node: ONNXNode) throws {
        if unbatchedModel {
            try importNodeWithTail(node)  // Graph+ONNXImportTail.swift
            return
        }
        try importPlannedNode(node)
    }

    /// Lowers `node` into the planned graph, or throws naming why it cannot be.
    mutating func importPlannedNode(_ node: ONNXNode) throws {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw node.unsupported("operator domain '\(node.domain)' is not supported")
        }
        guard let outputName = node.outputs.first, !outputName.isEmpty else { throw node.invalid("no output") }
        let inputs: [Symbol?] = try node.inputs.map { name in
            if name.isEmpty { return nil }
            guard let symbol = symbols[name] else { throw node.invalid("uses undefined tensor '\(name)'") }
            return symbol
        }
        if node.opType == "Constant" {
            symbols[outputName] = .constant(try constantNodeValue(node))
            return
        }
        let constants = inputs.map { symbol -> ConstantTensor? in
            if case .constant(let tensor)? = symbol { return tensor }
            return nil
        }
        let allConstant = zip(inputs, constants).allSatisfy { $0 == nil || $1 != nil }
        if allConstant && ConstantFolder.supportedOps.contains(node.opType) {
            symbols[outputName] = .constant(try ConstantFolder.evaluate(node, constants, opset: opset, budget: &foldBudget))
            return
        }
        if node.opType == "Shape", case .activation(let id)? = inputs.first {
            symbols[outputName] = .constant(try shapeOfActivation(node, id))
            return
        }
        if allConstant { throw node.unsupported("operator on constant inputs cannot be folded") }
        // Operators of transformer and mobile exports (issue 13): Graph+ONNXImportTensorOps.swift.
        if try importWithLayout(node, inputs) { return }
        if try importTensorOp(node, inputs) { return }
        let (operation, inputIDs, shape) = try lower(node, inputs)
        // Kernels take up to 6-D tensors and never see an empty or absurdly large one.
        guard shape.count <= 5, shape.allSatisfy({ $0 > 0 }), shape.reduce(1.0, { $0 * Double($1) }) < Double(1 << 28),
              inputIDs.allSatisfy({ graph.values[$0].shape.count <= 5 }) else {
            throw node.unsupported("output shape \(shape) (per sample) is empty, above rank 6 with the batch, or too large")
        }
        let output = graph.addValue(outputName, shape: shape)
        graph.nodes.append(Graph.Node(name: node.displayName, opType: node.opType, operation: operation, inputs: inputIDs, output: output))
        symbols[outputName] = .activation(output)
    }

    func constantNodeValue(_ node: ONNXNode) throws -> ConstantTensor {
        guard let (key, value) = node.attributes.first else { throw node.invalid("Constant without a value") }
        switch value {
        case .tensor(let tensor): return try ConstantTensor(tensor)
        case .float(let v): return ConstantTensor(shape: [], floats: [v])
        case .floats(let v): return ConstantTensor(shape: [v.count], floats: v)
        case .int(let v): return ConstantTensor(shape: [], ints: [v])
        case .ints(let v): return ConstantTensor(shape: [v.count], ints: v)
        default: throw node.unsupported("Constant attribute '\(key)'")
        }
    }

    /// `Shape` of an activation: known per-sample dims, and the batch size as a symbol.
    func shapeOfActivation(_ node: ONNXNode, _ id: Graph.ValueID) throws -> ConstantTensor {
        let logical = logicalShapeTensor(id)
        let full = ConstantTensor(shape: [logical.values.count], ints: logical.values, batchSymbolic: logical.symbolic)
        let rank = full.count
        func clampIndex(_ value: Int) -> Int { min(max(value < 0 ? value + rank : value, 0), rank) }
        let start = clampIndex(try node.int("start", default: 0)), end = clampIndex(try node.int("end", default: rank))
        return ConstantFolder.pick(full, Array(start..<max(start, end)), shape: [max(end - start, 0)])
    }

    // MARK: - Lowering

    func activation(_ node: ONNXNode, _ inputs: [Symbol?], _ index: Int) throws -> Graph.ValueID {
        guard index < inputs.count, case .activation(let id)? = inputs[index] else {
            throw node.unsupported("input \(index) must be computed from the model input (a constant is not supported here)")
        }
        return id
    }

    func constant(_ node: ONNXNode, _ inputs: [Symbol?], _ index: Int) throws -> ConstantTensor? {
        guard index < inputs.count, let symbol = inputs[index] else { return nil }
        guard case .constant(let tensor) = symbol else {
            throw node.unsupported("input \(index) must be a constant (an initializer)")
        }
        return tensor
    }

    func shape(_ id: Graph.ValueID) -> [Int] { graph.values[id].shape }

    func lower(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        switch node.opType {
        case "Conv": return try lowerConv(node, inputs)
        case "BatchNormalization": return try lowerBatchNorm(node, inputs)
        case "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip", "Tanh":
            let x = try activation(node, inputs, 0)
            return (.activation(try activationKind(node, inputs)), [x], shape(x))
        case "Add", "Sub", "Mul", "Div": return try lowerBinary(node, inputs)
        case "MaxPool", "AveragePool": return try lowerPool(node, inputs)
        case "GlobalAveragePool":
            let x = try activation(node, inputs, 0)
            guard shape(x).count == 3 else { throw node.unsupported("only 2-D (NCHW) inputs") }
            return (.globalAveragePool, [x], [shape(x)[0], 1, 1])
        case "ReduceMean": return try lowerReduceMean(node, inputs)
        case "Gemm": return try lowerGemm(node, inputs)
        case "MatMul": return try lowerMatMul(node, inputs)
        case "Softmax": return try lowerSoftmax(node, inputs)
        case "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Cast":
            return try lowerAlias(node, inputs)
        case "Transpose":
            let x = try activation(node, inputs, 0)
            let rank = shape(x).count + 1
            let perm = try node.ints("perm") ?? Array((0..<rank).reversed())
            guard perm.count == rank, Set(perm) == Set(0..<rank) else { throw node.invalid("bad permutation \(perm)") }
            guard perm[0] == 0 else { throw node.unsupported("a transpose that moves the batch dimension") }
            let full = [1] + shape(x)
            return (.transpose(permutation: perm), [x], Array(perm.dropFirst().map { full[$0] }))
        case "Concat":
            let ids = try (0..<inputs.count).map { try activation(node, inputs, $0) }
            guard let first = ids.first else { throw node.invalid("no inputs") }
            let rank = shape(first).count + 1
            let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: 1), rank: rank, node)
            guard axis >= 1 else { throw node.unsupported("concatenation along the batch dimension") }
            var out = shape(first)
            for id in ids.dropFirst() {
                let s = shape(id)
                guard s.count == out.count, (0..<s.count).allSatisfy({ $0 == axis - 1 || s[$0] == out[$0] }) else {
                    throw SelfXitError.shapeMismatch("node '\(node.displayName)': cannot concatenate \(ids.map { shape($0) })")
                }
                out[axis - 1] += s[axis - 1]
            }
            return (.concat(axis: axis), ids, out)
        case "Pad": return try lowerPad(node, inputs)
        default:
            throw node.unsupported("operator is not implemented")
        }
    }

    func activationKind(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> Activation {
        switch node.opType {
        case "Relu": return .relu
        case "Sigmoid": return .sigmoid
        case "Tanh": return .tanh
        case "HardSwish": return .hardSwish
        case "HardSigmoid":
            return .hardSigmoid(alpha: try node.float("alpha", default: 0.2), beta: try node.float("beta", default: 0.5))
        default: // Clip: bounds are attributes before opset 11, optional constant inputs after.
            var low = -Float.infinity, high = Float.infinity
            if opset < 11 {
                low = try node.float("min", default: low)
                high = try node.float("max", default: high)
            } else {
                if let t = try constant(node, inputs, 1) { low = t.floats.first ?? low }
                if let t = try constant(node, inputs, 2) { high = t.floats.first ?? high }
            }
            guard !low.isNaN, !high.isNaN else { throw node.invalid("Clip bound is NaN (min \(low), max \(high))") }
            if low == 0 && high == .infinity { return .relu }
            return .clip(min: low, max: high)
        }
    }

    /// Output size and leading pad of one spatial axis under ONNX's pads/auto_pad rules.
    func spatialAxis(_ node: ONNXNode, input: Int, kernel: Int, stride: Int, dilation: Int,
                     padBegin: Int, padEnd: Int, autoPad: String, ceilMode: Bool) throws -> (out: Int, padBegin: Int, padEnd: Int) {
        let effectiveKernel = dilation * (kernel - 1) + 1
        switch autoPad {
        case "SAME_UPPER", "SAME_LOWER":
            let out = (input + stride - 1) / stride
            let total = max((out - 1) * stride + effectiveKernel - input, 0)
            let begin = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
            return (out, begin, total - begin)
        case "VALID":
            let out = (input - effectiveKernel) / stride + 1
            guard out > 0 else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': kernel larger than input") }
            return (out, 0, 0)
        case "NOTSET", "":
            let span = input + padBegin + padEnd - effectiveKernel
            guard span >= 0 else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': kernel larger than padded input") }
            var out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
            // With ceil_mode the last window must still start inside the input or its leading pad.
            if ceilMode && (out - 1) * stride >= input + padBegin { out -= 1 }
            return (out, padBegin, padEnd)
        default:
            throw node.unsupported("auto_pad '\(autoPad)'")
        }
    }

    struct Window { var kernel: [Int]; var strides: [Int]; var dilations: [Int]; var pads: [Int]; var autoPad: String }

    func window(_ node: ONNXNode, kernel: [Int]) throws -> Window {
        let strides = try node.ints("strides") ?? [1, 1]
        let dilations = try node.ints("dilations") ?? [1, 1]
        let pads = try node.ints("pads") ?? [0, 0, 0, 0]
        guard kernel.count == 2, strides.count == 2, dilations.count == 2, pads.count == 4 else {
            throw node.unsupported("only 2-D windows (NCHW inputs)")
        }
        guard kernel.allSatisfy({ $0 > 0 && $0 < 1 << 16 }), strides.allSatisfy({ $0 > 0 && $0 < 1 << 16 }),
              dilations.allSatisfy({ $0 > 0 && $0 < 1 << 16 }), pads.allSatisfy({ $0 >= 0 && $0 < 1 << 16 }) else {
            throw node.invalid("kernel/strides/dilations/pads out of range")
        }
        return Window(kernel: kernel, strides: strides, dilations: dilations, pads: pads,
                      autoPad: try node.string("auto_pad", default: "NOTSET"))
    }

    func lowerConv(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        let x = try activation(node, inputs, 0)
        guard let w = try constant(node, inputs, 1), w.isFloat || true else { throw node.unsupported("weights must be constant") }
        let bias = try constant(node, inputs, 2)
        let s = shape(x)
        guard s.count == 3, w.shape.count == 4 else { throw node.unsupported("only 2-D convolutions (NCHW input, OIHW weights)") }
        let groups = try node.int("group", default: 1)
        let outChannels = w.shape[0]
        // `w.shape[1] * groups` may overflow for a hostile group count: compared without multiplying.
        guard groups >= 1, s[0] % groups == 0, outChannels % groups == 0, w.shape[1] == s[0] / groups else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': weights \(w.shape) do not fit input channels \(s[0]) with group \(groups)")
        }
        let kernelShape = try node.ints("kernel_shape") ?? [w.shape[2], w.shape[3]]
        guard kernelShape == [w.shape[2], w.shape[3]] else { throw node.invalid("kernel_shape \(kernelShape) contradicts weights \(w.shape)") }
        if let bias, bias.count != outChannels { throw node.invalid("bias has \(bias.count) values for \(outChannels) channels") }
        let win = try window(node, kernel: kernelShape)
        let h = try spatialAxis(node, input: s[1], kernel: win.kernel[0], stride: win.strides[0], dilation: win.dilations[0],
                                padBegin: win.pads[0], padEnd: win.pads[2], autoPad: win.autoPad, ceilMode: false)
        let wd = try spatialAxis(node, input: s[2], kernel: win.kernel[1], stride: win.strides[1], dilation: win.dilations[1],
                                 padBegin: win.pads[1], padEnd: win.pads[3], autoPad: win.autoPad, ceilMode: false)
        let geometry = Conv2DGeometry(
            inChannels: s[0], inHeight: s[1], inWidth: s[2], outChannels: outChannels, outHeight: h.out, outWidth: wd.out,
            kernelHeight: win.kernel[0], kernelWidth: win.kernel[1], strideH: win.strides[0], strideW: win.strides[1],
            dilationH: win.dilations[0], dilationW: win.dilations[1], padTop: h.padBegin, padLeft: wd.padBegin, groups: groups)
        return (.conv(geometry: geometry, weights: w.floats, bias: bias?.floats, activation: .none), [x], [outChannels, h.out, wd.out])
    }

    func lowerBatchNorm(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        let x = try activation(node, inputs, 0)
        let channels = shape(x).first ?? 0
        let parameters = try (1...4).map { index -> [Float] in
            guard let t = try constant(node, inputs, index), t.count == channels else {
                throw node.invalid("parameter \(index) must be a constant of \(channels) values")
            }
            return t.floats
        }
        let epsilon = try node.float("epsilon", default: 1e-5)
        // y = (x − mean) / sqrt(var + ε) · γ + β  =  x · scale + shift
        let scale = (0..<channels).map { parameters[0][$0] / (parameters[3][$0] + epsilon).squareRoot() }
        let shift = (0..<channels).map { parameters[1][$0] - parameters[2][$0] * scale[$0] }
        return (.channelAffine(scale: scale, shift: shift, activation: .none), [x], shape(x))
    }

    func lowerBinary(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        guard inputs.count == 2, let kind = Graph.BinaryKind(rawValue: node.opType) else { throw node.invalid("needs two inputs") }
        var operands: [Graph.Operand] = []
        var ids: [Graph.ValueID] = []
        var sampleShapes: [[Int]] = []
        let outputRank = inputs.compactMap { symbol -> Int? in
            if case .activation(let id)? = symbol { return shape(id).count } else { return nil }
        }.max() ?? 0
        for symbol in inputs {
            switch symbol {
            case .activation(let id)?:
                guard shape(id).count == outputRank else {
                    throw node.unsupported("broadcasting two activations of different rank")
                }
                operands.append(.value(id))
                ids.append(id)
                sampleShapes.append(shape(id))
            case .constant(let tensor)?:
                guard !tensor.isSymbolic else { throw node.unsupported("arithmetic with the batch size") }
                // Align the constant with the per-sample dims: a leading dim of the full rank
                // faces the batch and must be 1.
                var dims = tensor.shape
                if dims.count == outputRank + 1 {
                    guard dims[0] == 1 else { throw node.unsupported("a constant that varies along the batch dimension") }
                    dims.removeFirst()
                }
                guard dims.count <= outputRank else { throw node.unsupported("a constant of higher rank than the activation") }
                dims = Array(repeating: 1, count: outputRank - dims.count) + dims
                operands.append(.constant(Graph.ConstantOperand(shape: dims, values: tensor.floats)))
                sampleShapes.append(dims)
            case nil:
                throw node.invalid("missing input")
            }
        }
        let out = try ConstantFolder.broadcastShape(sampleShapes[0], sampleShapes[1], node)
        return (.binary(kind, lhs: operands[0], rhs: operands[1], activation: .none), ids, out)
    }

    func lowerPool(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        let x = try activation(node, inputs, 0)
        let s = shape(x)
        guard s.count == 3 else { throw node.unsupported("only 2-D pooling (NCHW input)") }
        if node.outputs.count > 1, !node.outputs[1].isEmpty { throw node.unsupported("MaxPool indices output") }
        guard let kernel = try node.ints("kernel_shape") else { throw node.invalid("missing kernel_shape") }
        let win = try window(node, kernel: kernel)
        let ceilMode = try node.int("ceil_mode", default: 0) != 0
        let h = try spatialAxis(node, input: s[1], kernel: win.kernel[0], stride: win.strides[0], dilation: win.dilations[0],
                                padBegin: win.pads[0], padEnd: win.pads[2], autoPad: win.autoPad, ceilMode: ceilMode)
        let w = try spatialAxis(node, input: s[2], kernel: win.kernel[1], stride: win.strides[1], dilation: win.dilations[1],
                                padBegin: win.pads[1], padEnd: win.pads[3], autoPad: win.autoPad, ceilMode: ceilMode)
        let geometry = Graph.PoolGeometry(
            channels: s[0], inHeight: s[1], inWidth: s[2], outHeight: h.out, outWidth: w.out,
            kernelHeight: win.kernel[0], kernelWidth: win.kernel[1], strideH: win.strides[0], strideW: win.strides[1],
            padTop: h.padBegin, padLeft: w.padBegin, padBottom: h.padEnd, padRight: w.padEnd, dilationH: win.dilations[0], dilationW: win.dilations[1],
            countIncludePad: try node.int("count_include_pad", default: 0) != 0)
        if node.opType == "AveragePool" && geometry.dilationH * geometry.dilationW != 1 {
            throw node.unsupported("dilated average pooling")
        }
        // The kernels assume every window reads at least one input pixel (a window wholly in
        // the padding has no maximum, and its average divides by zero).
        for (axis, size, out, stride, pad, dilation, kernel) in [
            ("height", s[1], h.out, win.strides[0], h.padBegin, win.dilations[0], win.kernel[0]),
            ("width", s[2], w.out, win.strides[1], w.padBegin, win.dilations[1], win.kernel[1]),
        ] {
            for o in 0..<out {
                let start = o * stride - pad
                let firstTap = start >= 0 ? 0 : (-start + dilation - 1) / dilation
                guard firstTap < kernel, start + firstTap * dilation < size else {
                    throw node.invalid("pooling window \(o) along the \(axis) lies wholly in the padding (pads, dilation or strides too large)")
                }
            }
        }
        return (node.opType == "MaxPool" ? .maxPool(geometry) : .averagePool(geometry), [x], [s[0], h.out, w.out])
    }

    func lowerReduceMean(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        let x = try activation(node, inputs, 0)
        let s = shape(x)
        let axesList = opset >= 18 ? (try constant(node, inputs, 1))?.ints.map { Int(clamping: $0) } : try node.ints("axes")
        let axes = try Set((axesList ?? []).map { try ConstantFolder.normalizedAxis($0, rank: s.count + 1, node) })
        guard s.count == 3, axes == [2, 3], try node.int("keepdims", default: 1) != 0 else {
            throw node.unsupported("ReduceMean is supported over the spatial axes [2, 3] with keepdims=1 (global average pooling)")
        }
        return (.globalAveragePool, [x], [s[0], 1, 1])
    }

    func lowerGemm(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        let a = try activation(node, inputs, 0)
        guard try node.int("transA", default: 0) == 0 else { throw node.unsupported("transA=1 (the batch would move)") }
        guard shape(a).count == 1, let b = try constant(node, inputs, 1), b.shape.count == 2 else {
            throw node.unsupported("Gemm needs a [batch, K] activation and a constant 2-D B")
        }
        let transB = try node.int("transB", default: 0) != 0
        let alpha = try node.float("alpha", default: 1), beta = try node.float("beta", default: 1)
        let (n, k) = transB ? (b.shape[0], b.shape[1]) : (b.shape[1], b.shape[0])
        guard k == shape(a)[0] else {
            throw SelfXitError.shapeMismatch("node '\(node.displayName)': input has \(shape(a)[0]) features, B is \(b.shape)")
        }
        let bv = b.floats
        let weights = transB ? bv.map { $0 * alpha } : (0..<(n * k)).map { i in bv[(i % k) * n + i / k] * alpha }
        var bias: [Float]?
        if let c = try constant(node, inputs, 2) {
            switch c.count {
            case 1: bias = Array(repeating: c.floats[0] * beta, count: n)
            case n where c.shape.last == n: bias = c.floats.map { $0 * beta }
            default: throw node.unsupported("bias C of shape \(c.shape) (only [N], [1,N] or scalar)")
            }
        }
        return (.dense(inFeatures: k, outFeatures: n, weights: weights, bias: bias, activation: .none), [a], [n])
    }

    func lowerMatMul(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        let a = try activation(node, inputs, 0)
        let sa = shape(a)
        guard let k = sa.last else { throw node.unsupported("MatMul of a [batch] vector") }
        if inputs.count > 1, case .constant(let b)? = inputs[1] {
            guard b.shape.count == 2, b.shape[0] == k else {
                throw node.unsupported("MatMul with constant B of shape \(b.shape) (only 2-D [K, N])")
            }
            let n = b.shape[1], bv = b.floats
            let weights = (0..<(n * k)).map { i in bv[(i % k) * n + i / k] }
            return (.dense(inFeatures: k, outFeatures: n, weights: weights, bias: nil, activation: .none), [a], Array(sa.dropLast()) + [n])
        }
        let b = try activation(node, inputs, 1)
        let sb = shape(b)
        guard sa.count >= 2, sb.count == sa.count, sb[sb.count - 2] == k else {
            throw node.unsupported("MatMul of activations with shapes \(sa) and \(sb)")
        }
        let lead = try ConstantFolder.broadcastShape(Array(sa.dropLast(2)), Array(sb.dropLast(2)), node)
        return (.matmul, [a, b], lead + [sa[sa.count - 2], sb[sb.count - 1]])
    }

    func lowerSoftmax(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        let x = try activation(node, inputs, 0)
        let full = [1] + shape(x)
        let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: opset < 13 ? 1 : -1), rank: full.count, node)
        guard axis >= 1 else { throw node.unsupported("softmax over the batch dimension") }
        // Before opset 13 softmax flattens from `axis` on; from 13 it is over one axis, which
        // equals the flattened form only when the axes after it have size 1.
        guard opset < 13 || full[(axis + 1)...].allSatisfy({ $0 == 1 }) else {
            throw node.unsupported("softmax over a non-trailing axis")
        }
        return (.softmax(length: full[axis...].reduce(1, *)), [x], shape(x))
    }

    func lowerAlias(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        let x = try activation(node, inputs, 0)
        let s = shape(x)
        let full = [1] + s
        switch node.opType {
        case "Identity", "Dropout":
            return (.alias, [x], s)
        case "Cast":
            guard try node.int("to", default: 1) == 1 else { throw node.unsupported("cast of an activation to a non-float type") }
            return (.alias, [x], s)
        case "Flatten":
            let axis = try ConstantFolder.normalizedAxis(try node.int("axis", default: 1), rank: full.count + 1, node)
            guard axis >= 1, full[1..<axis].reduce(1, *) == 1 else { throw node.unsupported("flatten that merges the batch dimension") }
            return (.alias, [x], [full[axis...].reduce(1, *)])
        case "Squeeze":
            let axesList = opset >= 13 ? (try constant(node, inputs, 1))?.ints.map { Int(clamping: $0) } : try node.ints("axes")
            guard let axesList else { return (.alias, [x], s.filter { $0 != 1 }) }
            let axes = try Set(axesList.map { try ConstantFolder.normalizedAxis($0, rank: full.count, node) })
            guard !axes.contains(0) else { throw node.unsupported("squeezing the batch dimension") }
            guard axes.allSatisfy({ full[$0] == 1 }) else { throw SelfXitError.shapeMismatch("node '\(node.displayName)': squeezing a dimension that is not 1") }
            return (.alias, [x], full.enumerated().filter { $0.offset > 0 && !axes.contains($0.offset) }.map(\.element))
        case "Unsqueeze":
            let axesList = opset >= 13 ? (try constant(node, inputs, 1))?.ints.map { Int(clamping: $0) } : try node.ints("axes")
            guard let axesList else { throw node.invalid("missing axes") }
            let outRank = full.count + axesList.count
            guard outRank <= 6 else { throw node.unsupported("unsqueeze to rank \(outRank) (at most 6 with the batch)") }
            let axes = try Set(axesList.map { try ConstantFolder.normalizedAxis($0, rank: outRank, node) })
            guard axes.count == axesList.count else { throw node.invalid("axes \(axesList) repeat an axis") }
            guard !axes.contains(0) else { throw node.unsupported("unsqueezing before the batch dimension") }
            var remaining = s[...]
            return (.alias, [x], (1..<outRank).map { axes.contains($0) ? 1 : remaining.popFirst() ?? 1 })
        default: // Reshape
            guard let target = try constant(node, inputs, 1) else { throw node.invalid("missing shape") }
            let dims = target.ints
            guard let first = dims.first else { throw node.unsupported("reshape to a scalar") }
            let allowZero = try node.int("allowzero", default: 0) != 0
            let rest = Array(dims.dropFirst())
            if target.batchSymbolic.dropFirst().contains(true) { throw node.unsupported("the batch size in a non-leading dimension") }
            let keepsBatch = target.isBatch(0) || (first == 0 && !allowZero) || (fixedBatch.map { Int64($0) == first } ?? false)
            // A 0 in dimension i ≥ 1 copies the input's dimension i, i.e. per-sample dim i − 1.
            let sampleTarget = rest.enumerated().map { index, dim -> Int64 in
                dim == 0 && !allowZero && index < s.count ? Int64(s[index]) : dim
            }
            if keepsBatch || (first == -1 && !rest.contains(-1)) {
                let sample = try ConstantFolder.resolveReshape(sampleTarget, input: s, allowZero: true, node)
                return (.alias, [x], sample)
            }
            throw node.unsupported("a reshape whose first dimension (\(first)) is not the batch")
        }
    }

    func lowerPad(_ node: ONNXNode, _ inputs: [Symbol?]) throws -> (Graph.Operation, [Graph.ValueID], [Int]) {
        let x = try activation(node, inputs, 0)
        let s = shape(x)
        let rank = s.count + 1
        guard try node.string("mode", default: "constant") == "constant" else { throw node.unsupported("only constant padding") }
        let pads: [Int]
        var value: Float = 0
        if opset < 11 {
            pads = try node.ints("pads") ?? []
            value = try node.float("value", default: 0)
        } else {
            guard let p = try constant(node, inputs, 1) else { throw node.invalid("missing pads") }
            pads = p.ints.map { Int(clamping: $0) }
            if let v = try constant(node, inputs, 2) { value = v.floats.first ?? 0 }
            if try constant(node, inputs, 3) != nil { throw node.unsupported("Pad with an axes input") }
        }
        guard pads.count == 2 * rank else { throw node.invalid("pads has \(pads.count) values for rank \(rank)") }
        guard pads.allSatisfy({ $0 >= 0 && $0 < 1 << 16 }) else { throw node.unsupported("negative (cropping) pads") }
        guard pads[0] == 0, pads[rank] == 0 else { throw node.unsupported("padding the batch dimension") }
        // All-zero pads copy the tensor unchanged: share its buffer instead (torchvision's DenseNet
        // export puts one before each transition's AveragePool).
        if pads.allSatisfy({ $0 == 0 }) { return (.alias, [x], s) }
        let out = (1..<rank).map { s[$0 - 1] + pads[$0] + pads[$0 + rank] }
        return (.pad(pads: pads, value: value), [x], out)
    }
}
