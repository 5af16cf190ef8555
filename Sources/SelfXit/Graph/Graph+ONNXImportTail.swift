/// Models that take one image without a batch axis (torchvision's detectors: `[3, H, W]`) and
/// whose later part has shapes known only at run time (issue 13, point 2).
///
/// Such a model runs one image a call, so its batch is exactly 1: the importer keeps the
/// engine's per-sample view for every tensor, records which ones have no batch axis in the
/// file's view (`unbatched`: the normalised image before `image[None]`, the resized one after
/// `[0]`), and folds shapes to plain numbers. Every node the planner can run is planned as usual
/// (the backbone, FPN, heads — where exits attach); a node it cannot run (a reshape to a
/// number of boxes, TopK, NonZero, NonMaxSuppression, RoiAlign …) and every node reading its
/// result go to the run-time-shaped tail (`TailProgram`), which reads the planned values it
/// needs once the planned graph has run.
extension GraphImporter {
    /// A rank-3 input whose first dimension is a fixed 3: an RGB image without a batch axis.
    static func isUnbatchedImage(_ dims: [ONNXDimension]) -> Bool {
        guard dims.count == 3, case .value(3) = dims[0] else { return false }
        return dims.dropFirst().allSatisfy { if case .value(let d) = $0 { return d >= 8 } else { return true } }
    }

    /// The file's (ONNX) shape of a planned activation at batch 1.
    func onnxShape(_ id: Graph.ValueID) -> [Int] {
        if unbatched.contains(id) { return shape(id) }
        if let l = layouts[id] { return l.dims }
        return [1] + shape(id)
    }

    mutating func importNodeWithTail(_ node: ONNXNode) throws {
        if node.inputs.contains(where: { tailRegisters[$0] != nil }) {
            try deferToTail(node)
            return
        }
        let (nodeCount, valueCount) = (graph.nodes.count, graph.values.count)
        do {
            if try importUnbatchedSpecial(node) { return }
            try importPlannedNode(node)
        } catch let error as SelfXitError {
            switch error {
            case .unsupportedOperator, .shapeMismatch: break
            default: throw error
            }
            // Undo what the failed lowering emitted, then run the node at run time.
            for id in valueCount..<graph.values.count {
                graph.valueIDs[graph.values[id].name] = nil
                layouts[id] = nil
                unbatched.remove(id)
            }
            graph.values.removeLast(graph.values.count - valueCount)
            graph.nodes.removeLast(graph.nodes.count - nodeCount)
            for name in node.outputs { symbols[name] = nil }
            try deferToTail(node)
        }
    }

    /// Nodes of an unbatched model the ordinary lowering would misread (axis 0 is no batch
    /// there), and constant nodes only the tail's evaluators can fold. True when handled.
    mutating func importUnbatchedSpecial(_ node: ONNXNode) throws -> Bool {
        let inputs: [Symbol?] = node.inputs.map { $0.isEmpty ? nil : symbols[$0] }
        let activations = inputs.compactMap { symbol -> Graph.ValueID? in
            if case .activation(let id)? = symbol { return id } else { return nil }
        }
        let constants = inputs.map { symbol -> ConstantTensor? in
            if case .constant(let t)? = symbol { return t } else { return nil }
        }
        // Constant inputs only: fold with the tail's evaluators when the folder cannot (the
        // transform's ReduceMin/ReduceMax of the image size, a Split of anchors …).
        if activations.isEmpty, node.opType != "Constant", !node.inputs.isEmpty,
           !ConstantFolder.supportedOps.contains(node.opType), TailOps.ownOps.contains(node.opType),
           zip(node.inputs, constants).allSatisfy({ $0.isEmpty || $1 != nil }) {
            var budget = foldBudget
            let results = try TailOps.evaluate(node, constants, opset: opset, budget: &budget, dense: nil, pool: ThreadPool.serial())
            foldBudget = budget
            for (name, value) in zip(node.outputs, results) where !name.isEmpty {
                try value.checkConsistent { "node '\(node.displayName)' (\(node.opType)): folded result" }
                symbols[name] = .constant(value)
            }
            return true
        }
        guard let x = activations.first else { return false }
        let output = node.outputs.first ?? ""
        if node.opType == "Shape" {
            let full = onnxShape(x).map(Int64.init)
            let rank = full.count
            func clampIndex(_ value: Int) -> Int { min(max(value < 0 ? value + rank : value, 0), rank) }
            let start = clampIndex(try node.int("start", default: 0)), end = clampIndex(try node.int("end", default: rank))
            symbols[output] = .constant(ConstantTensor(shape: [max(end - start, 0)], ints: Array(full[start..<max(start, end)])))
            return true
        }
        func axesList() throws -> [Int]? {
            if opset >= 13 { return constants.count > 1 ? constants[1]?.ints.map { Int(clamping: $0) } : nil }
            return try node.ints("axes")
        }
        if activations.contains(where: { unbatched.contains($0) }) {
            guard activations.allSatisfy({ unbatched.contains($0) }) else {
                throw node.unsupported("mixes tensors with and without a batch axis")
            }
            switch node.opType {
            case "Unsqueeze":
                // image[None]: the new axis 0 is the batch (of 1).
                guard try axesList() == [0] else { throw node.unsupported("unsqueezing a tensor without batch axis other than at 0") }
                try emit(node, .alias, [x], shape(x), output: output)
                return true
            case "Add", "Sub", "Mul", "Div":
                // Constants align with the per-sample dims, as in the planned lowering, unless
                // their rank exceeds the tensor's (that would broadcast a new leading axis).
                guard constants.compactMap({ $0 }).allSatisfy({ $0.shape.count <= shape(x).count }) else {
                    throw node.unsupported("a constant of higher rank than a tensor without batch axis")
                }
                try importPlannedNode(node)
            case "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip", "Tanh", "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs",
                 "Reciprocal", "Floor", "Ceil", "Identity", "Dropout", "Cast":
                try importPlannedNode(node)
            case "Pad":
                let s = shape(x), rank = s.count
                guard try node.string("mode", default: "constant") == "constant" else { throw node.unsupported("only constant padding") }
                let pads: [Int]
                var value: Float = 0
                if opset < 11 {
                    pads = try node.ints("pads") ?? []
                    value = try node.float("value", default: 0)
                } else {
                    guard constants.count > 1, let p = constants[1] else { throw node.unsupported("pads computed at run time") }
                    pads = p.ints.map { Int(clamping: $0) }
                    if constants.count > 2, let v = constants[2] { value = v.floats.first ?? 0 }
                    if constants.count > 3, constants[3] != nil { throw node.unsupported("Pad with an axes input") }
                }
                guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 && $0 < 1 << 16 }) else { throw node.unsupported("pads \(pads)") }
                let out = (0..<rank).map { s[$0] + pads[$0] + pads[$0 + rank] }
                try emit(node, .pad(pads: [0] + pads[..<rank] + [0] + pads[rank...], value: value), [x], out, output: output)
            default:
                throw node.unsupported("operator on a tensor without batch axis (the planned graph needs one)")
            }
            let produced = graph.values.count - 1
            if graph.valueIDs[output] == produced { unbatched.insert(produced) }
            return true
        }
        guard layouts[x] == nil else { return false }
        switch node.opType {
        case "Squeeze":
            // `[0]` of a batch of one image, written as a squeeze.
            guard try axesList() == [0] else { return false }
            try emit(node, .alias, [x], shape(x), output: output)
            unbatched.insert(graph.values.count - 1)
            return true
        case "Gather":
            // `images[0]`: index 0 of axis 0 (a scalar index drops the axis).
            guard try node.int("axis", default: 0) == 0, constants.count > 1, let index = constants[1], index.shape.isEmpty,
                  index.ints == [0] else { return false }
            try emit(node, .alias, [x], shape(x), output: output)
            unbatched.insert(graph.values.count - 1)
            return true
        case "Concat":
            // torch.stack of one image: a Concat of one tensor along the batch.
            guard node.inputs.count == 1, try node.int("axis", default: 0) == 0 else { return false }
            try emit(node, .alias, [x], shape(x), output: output)
            return true
        case "Resize", "Upsample":
            try importResize(node, inputs, constants, x)
            return true
        default:
            return false
        }
    }

    /// Resize of a planned `[1, C, H, W]` tensor: a two-tap kernel over the last two axes
    /// (`Resize2DKernel`, ONNX Runtime's arithmetic). It was lowered to per-axis dense products
    /// with the interpolation matrices: O(in · out) per row (≈ 300 MFLOPs of SSDLite's transform)
    /// and a different rounding from ONNX Runtime's bilinear sum.
    mutating func importResize(_ node: ONNXNode, _ inputs: [Symbol?], _ constants: [ConstantTensor?], _ x: Graph.ValueID) throws {
        let s = shape(x)
        guard s.count == 3 else { throw node.unsupported("Resize of a \(s.count + 1)-D tensor (only [N, C, H, W] in the planned graph)") }
        for (index, symbol) in inputs.enumerated().dropFirst() where symbol != nil && constants[index] == nil {
            throw node.unsupported("Resize with scales or sizes computed at run time")
        }
        let plan = try ResizePlan(node, inputShape: [1] + s, inputs: constants, opset: opset)
        guard plan.outputShape[0] == 1, plan.outputShape[1] == s[0] else { throw node.unsupported("Resize of the batch or channel axis") }
        let (outH, outW) = (plan.outputShape[2], plan.outputShape[3])
        let output = node.outputs[0]
        if outH == s[1], outW == s[2], plan.axes[2].isIdentity, plan.axes[3].isIdentity {
            try emit(node, .alias, [x], s, output: output)
            return
        }
        let kernel = Resize2DKernel(plan: plan, heightAxis: 2, widthAxis: 3, inHeight: s[1], inWidth: s[2],
                                    nearest: try node.string("mode", default: "nearest") == "nearest")
        try emit(node, .resize2D(kernel), [x], [s[0], outH, outW], output: output)
    }

    /// Appends `node` to the run-time-shaped tail, binding its inputs (tail results, constants,
    /// planned activations). Refuses, naming the node, an operator the tail cannot evaluate.
    mutating func deferToTail(_ node: ONNXNode) throws {
        var program = tail ?? TailProgram(opset: opset)
        var local: [String: Int]? = nil
        let compiled = try compileTailNode(node, &program, local: &local, depth: 0)
        program.nodes.append(compiled)
        tail = program
    }

    /// The register of tensor `name` for a tail node: a branch's own tensor (`local`), a tail
    /// result, or a constant / planned activation bound to a new register.
    mutating func tailRegister(_ name: String, _ program: inout TailProgram, local: [String: Int]?, _ node: ONNXNode) throws -> Int {
        if let r = local?[name] ?? tailRegisters[name] { return r }
        guard let symbol = symbols[name] else { throw node.invalid("uses undefined tensor '\(name)'") }
        let r = program.registers.count
        program.registers.append(nil)
        program.registerNames.append(name)
        switch symbol {
        case .constant(let t): program.registers[r] = t
        case .activation(let id): program.prefixInputs.append(.init(register: r, value: id, shape: onnxShape(id)))
        }
        tailRegisters[name] = r
        return r
    }

    /// One tail node (an If with its branches compiled into the same register file). `local`
    /// is nil at the top level, else the tensors of the branch being compiled.
    mutating func compileTailNode(_ node: ONNXNode, _ program: inout TailProgram, local: inout [String: Int]?, depth: Int) throws -> TailProgram.Node {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw node.unsupported("operator domain '\(node.domain)' is not supported")
        }
        guard TailOps.supportedOps.contains(node.opType) || node.opType == "If" || node.opType == "Loop" else {
            throw node.unsupported("operator is not implemented (neither planned nor in the run-time-shaped tail)")
        }
        let inputRegisters = try node.inputs.map { $0.isEmpty ? -1 : try tailRegister($0, &program, local: local, node) }
        var branches: [TailProgram.Branch] = []
        if node.opType == "If" {
            guard depth < 4 else { throw node.unsupported("If nested more than 4 deep") }
            for key in ["then_branch", "else_branch"] {
                guard let subgraph = node.subgraphs[key] else { throw node.unsupported("If whose \(key) could not be read") }
                var inner: [String: Int]? = local ?? [:]
                for tensor in subgraph.initializers {
                    inner![tensor.name] = program.registers.count
                    program.registers.append(try ConstantTensor(tensor))
                    program.registerNames.append(tensor.name)
                }
                var branch = TailProgram.Branch()
                for child in subgraph.nodes {
                    if child.opType == "Constant" {
                        inner![child.outputs.first ?? ""] = program.registers.count
                        program.registers.append(try constantNodeValue(child))
                        program.registerNames.append(child.outputs.first ?? "")
                        continue
                    }
                    branch.nodes.append(try compileTailNode(child, &program, local: &inner, depth: depth + 1))
                }
                branch.outputs = try subgraph.outputs.map { try tailRegister($0.name, &program, local: inner, node) }
                branches.append(branch)
            }
            guard branches[0].outputs.count == node.outputs.count, branches[1].outputs.count == node.outputs.count else {
                throw node.invalid("If branches have \(branches[0].outputs.count) and \(branches[1].outputs.count) outputs, the node \(node.outputs.count)")
            }
        }
        if node.opType == "Loop" {
            guard depth < 4 else { throw node.unsupported("Loop nested more than 4 deep") }
            guard let body = node.subgraphs["body"] else { throw node.unsupported("Loop whose body could not be read") }
            guard body.inputs.count >= 2, body.inputs.count == node.inputs.count, body.outputs.count >= body.inputs.count - 1 else {
                throw node.invalid("Loop body with \(body.inputs.count) inputs and \(body.outputs.count) outputs for \(node.inputs.count) node inputs")
            }
            var inner: [String: Int]? = local ?? [:]
            var branch = TailProgram.Branch()
            for input in body.inputs {
                inner![input.name] = program.registers.count
                branch.inputs.append(program.registers.count)
                program.registers.append(nil)
                program.registerNames.append(input.name)
            }
            for tensor in body.initializers {
                inner![tensor.name] = program.registers.count
                program.registers.append(try ConstantTensor(tensor))
                program.registerNames.append(tensor.name)
            }
            for child in body.nodes {
                if child.opType == "Constant" {
                    inner![child.outputs.first ?? ""] = program.registers.count
                    program.registers.append(try constantNodeValue(child))
                    program.registerNames.append(child.outputs.first ?? "")
                    continue
                }
                branch.nodes.append(try compileTailNode(child, &program, local: &inner, depth: depth + 1))
            }
            branch.outputs = try body.outputs.map { try tailRegister($0.name, &program, local: inner, node) }
            branches.append(branch)
        }
        var outputRegisters: [Int] = []
        for name in node.outputs {
            if name.isEmpty { outputRegisters.append(-1); continue }
            let r = program.registers.count
            program.registers.append(nil)
            program.registerNames.append(name)
            if local != nil { local![name] = r } else { tailRegisters[name] = r; symbols[name] = nil }
            outputRegisters.append(r)
        }
        // Products with constant weights get the planned graph's kernel, packed once here.
        if local == nil, node.opType == "ConvTranspose", node.inputs.count >= 2, case .constant(let w)? = symbols[node.inputs[1]],
           w.shape.count == 4, w.shape.allSatisfy({ $0 > 0 }) {
            // [C, M, kH, kW] is already the [C, M·kH·kW] matrix the product wants.
            program.denseKernels[program.nodes.count] = DenseKernel(weights: w.floats, k: w.shape[0], n: w.shape[1] * w.shape[2] * w.shape[3], transposed: false)
        }
        if local == nil, node.opType == "Gemm" || node.opType == "MatMul", node.inputs.count >= 2,
           case .constant(let b)? = symbols[node.inputs[1]], b.shape.count == 2, b.shape.allSatisfy({ $0 > 0 }) {
            if node.opType == "MatMul" {
                program.denseKernels[program.nodes.count] = DenseKernel(weights: b.floats, k: b.shape[0], n: b.shape[1], transposed: false)
            } else if try node.int("transA", default: 0) == 0 {
                let transB = try node.int("transB", default: 0) != 0
                let (k, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
                var bias = GemmBias.none
                var biasOK = true
                if node.inputs.count > 2, !node.inputs[2].isEmpty {
                    if case .constant(let c)? = symbols[node.inputs[2]] {
                        if c.count == 1 { bias = .scalar(c.floats[0]) } else if c.count == n && c.shape.last == n { bias = .row(c.floats) } else { biasOK = false }
                    } else {
                        biasOK = false
                    }
                }
                if biasOK {
                    program.denseKernels[program.nodes.count] = DenseKernel(
                        weights: b.floats, k: k, n: n, transposed: transB, alpha: try node.float("alpha", default: 1),
                        bias: bias, beta: try node.float("beta", default: 1))
                }
            }
        }
        var compiled = TailProgram.Node(onnx: node, inputs: inputRegisters, outputs: outputRegisters, branches: branches)
        // A Conv whose weights (and bias) are constants in the register file — initializers,
        // Constant nodes; nothing writes those registers — packs its kernel once per geometry.
        if node.opType == "Conv", inputRegisters.count >= 2, inputRegisters[1] >= 0, program.registers[inputRegisters[1]] != nil,
           inputRegisters.count < 3 || inputRegisters[2] < 0 || program.registers[inputRegisters[2]] != nil {
            compiled.convCache = TailConvCache()
        }
        return compiled
    }

    /// The graph of an unbatched model: the planned part, whose outputs are the activations the
    /// tail reads, and the tail computing the model's outputs.
    mutating func finishWithTail() throws -> Graph {
        var program = tail ?? TailProgram(opset: opset)
        for output in model.graph.outputs {
            program.outputShapes.append(output.shape.map { dims in
                dims.map { if case .value(let d) = $0 { return d } else { return -1 } }
            } ?? [-1])
            if let r = tailRegisters[output.name] {
                program.outputs.append((output.name, r))
                continue
            }
            let r = program.registers.count
            program.registers.append(nil)
            program.registerNames.append(output.name)
            switch symbols[output.name] {
            case .constant(let t)?: program.registers[r] = t
            case .activation(let id)?: program.prefixInputs.append(.init(register: r, value: id, shape: onnxShape(id)))
            case nil: throw SelfXitError.invalidModel("graph output '\(output.name)' is not computed")
            }
            tailRegisters[output.name] = r
            program.outputs.append((output.name, r))
        }
        guard !program.outputs.isEmpty else { throw SelfXitError.invalidModel("the graph has no outputs") }
        program.finish()
        var seen = Set<Graph.ValueID>()
        graph.outputs = program.prefixInputs.map(\.value).filter { seen.insert($0).inserted }
        guard !graph.outputs.isEmpty else { throw SelfXitError.invalidModel("no output of the model depends on its input") }
        graph.tail = program
        return graph
    }
}
